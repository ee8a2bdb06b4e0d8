/**
 * The payload of a data group's Raft entry (ADR 0008 §3): one write batch stamped by the leader.
 * Every replica applies the same bytes, so every replica reaches the same MVCC versions
 * (`commitTs`), TTL expiries and condition outcomes (`nowMs`).
 *
 * Binary, big-endian, versioned by the leading byte:
 *
 * ```
 * version 1: 1 u8 | id u64 | commitTs u64 | nowMs f64 | count u32 | mutations
 * version 2: 2 u8 | id u64 | commitTs u64 | nowMs f64 | requestId 16 bytes | count u32 | mutations
 * put:    1 u8 | hash u64 | key bytes | value bytes | expiresAtMs f64 | condition
 * delete: 2 u8 | hash u64 | key bytes | condition
 * bytes = len u32 | bytes; condition = kind u8 (0 none, 1 absent, 2 exists,
 *         3 versionEquals + version u64, 4 valueEquals + value bytes)
 * ```
 *
 * Version 2 carries the client's request id (exactly-once writes, docs/adr/0011-exactly-once-writes.md);
 * a command without one is still encoded as version 1, and both versions are decoded.
 *
 * This is a durable, cross-node format (it lives in Raft logs and travels between versions of
 * the node), so it is defined here and not shared with the engine's thread-hop encoding
 * (`engine/batch-wire.ts`). Raw mutations are never replicated commands: encoding refuses them.
 *
 * Decoding checks everything the engine's `validateBatch` checks, so a decoded command never
 * makes `engine.write` throw INVALID_ARGUMENT on apply: a malformed entry is rejected the same
 * way on every replica, before anything is submitted to the engine.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { type Condition, MAX_TS, type Mutation, type Timestamp } from '../engine/types.ts';

/** A data mutation (`put` or `delete`): the only kinds a command carries. */
export type DataMutation = Extract<Mutation, { type: 'put' } | { type: 'delete' }>;

export interface ReplicatedCommand {
  /** Proposal id chosen by the proposer; lets it recognise its own entry when it applies. */
  readonly id: bigint;
  readonly mutations: readonly DataMutation[];
  /** The version every data mutation of the batch gets (hybrid-clock timestamp, >= 1). */
  readonly commitTs: Timestamp;
  /** The leader's wall clock at proposal: conditions are evaluated against TTL expiry with it. */
  readonly nowMs: number;
  /**
   * The client's id of the logical write (`REQUEST_ID_BYTES` bytes), the same in every resend:
   * the partition applies it at most once (docs/adr/0011-exactly-once-writes.md). Absent = no deduplication.
   */
  readonly requestId?: Buffer | undefined;
}

/** Bytes of a request id. */
export const REQUEST_ID_BYTES = 16;

/** Mutations per command, at most (a sanity bound far above the API's batch limit). */
export const COMMAND_MUTATIONS_MAX = 1 << 20;

const FORMAT_V1 = 1;
/** With a request id. */
const FORMAT_V2 = 2;
const MutationCode = { put: 1, delete: 2 } as const;
const ConditionCode = { none: 0, absent: 1, exists: 2, versionEquals: 3, valueEquals: 4 } as const;
const CONDITION_KINDS: readonly string[] = ['absent', 'exists', 'versionEquals', 'valueEquals'] satisfies Condition['kind'][];
const U64_MAX = MAX_TS;

function invalid(msg: string): KeyVaError {
  return new KeyVaError('INVALID_ARGUMENT', `replicated command: ${msg}`, { field: 'command' });
}

function checkU64(v: bigint, what: string): void {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw invalid(`${what} out of the 64-bit range: ${String(v)}`);
}

function checkStamp(commitTs: bigint, nowMs: number): void {
  checkU64(commitTs, 'commitTs');
  if (commitTs < 1n) throw invalid('commitTs must be >= 1');
  if (!Number.isFinite(nowMs)) throw invalid('nowMs must be finite');
}

function checkExpiry(expiresAtMs: number): void {
  if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) throw invalid(`expiresAtMs must be a non-negative integer: ${expiresAtMs}`);
}

function conditionBytes(c: Condition | undefined): number {
  if (c === undefined || c.kind === 'absent' || c.kind === 'exists') return 1;
  return c.kind === 'versionEquals' ? 9 : 5 + c.value.length;
}

/** Encodes a command; throws INVALID_ARGUMENT for anything the engine would refuse on apply. */
export function encodeCommand(c: ReplicatedCommand): Buffer {
  checkU64(c.id, 'id');
  checkStamp(c.commitTs, c.nowMs);
  const rid = c.requestId;
  if (rid !== undefined && (!Buffer.isBuffer(rid) || rid.length !== REQUEST_ID_BYTES)) throw invalid(`requestId must be ${REQUEST_ID_BYTES} bytes`);
  if (c.mutations.length > COMMAND_MUTATIONS_MAX) throw invalid(`more than ${COMMAND_MUTATIONS_MAX} mutations`);
  let size = 1 + 8 + 8 + 8 + 4 + (rid === undefined ? 0 : REQUEST_ID_BYTES);
  for (const m of c.mutations) {
    if (m.type !== 'put' && m.type !== 'delete') throw invalid(`mutation type ${(m as { type: string }).type} cannot be replicated`);
    if (!Buffer.isBuffer(m.key)) throw invalid('key must be a Buffer');
    checkU64(m.hash, 'hash');
    size += 1 + 8 + 4 + m.key.length + conditionBytes(m.condition);
    if (m.type === 'put') {
      if (!Buffer.isBuffer(m.value)) throw invalid('value must be a Buffer');
      checkExpiry(m.expiresAtMs);
      size += 4 + m.value.length + 8;
    }
    const cond = m.condition;
    if (cond !== undefined) {
      if (!CONDITION_KINDS.includes(cond.kind)) throw invalid(`unknown condition ${String(cond.kind)}`);
      if (cond.kind === 'versionEquals') checkU64(cond.version, 'condition version');
      if (cond.kind === 'valueEquals' && !Buffer.isBuffer(cond.value)) throw invalid('condition value must be a Buffer');
    }
  }
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  const bytes = (x: Buffer): void => {
    o = out.writeUInt32BE(x.length, o);
    o += x.copy(out, o);
  };
  o = out.writeUInt8(rid === undefined ? FORMAT_V1 : FORMAT_V2, o);
  o = out.writeBigUInt64BE(c.id, o);
  o = out.writeBigUInt64BE(c.commitTs, o);
  o = out.writeDoubleBE(c.nowMs, o);
  if (rid !== undefined) o += rid.copy(out, o);
  o = out.writeUInt32BE(c.mutations.length, o);
  for (const m of c.mutations) {
    o = out.writeUInt8(MutationCode[m.type], o);
    o = out.writeBigUInt64BE(m.hash, o);
    bytes(m.key);
    if (m.type === 'put') {
      bytes(m.value);
      o = out.writeDoubleBE(m.expiresAtMs, o);
    }
    const cond = m.condition;
    if (cond === undefined) {
      o = out.writeUInt8(ConditionCode.none, o);
    } else {
      o = out.writeUInt8(ConditionCode[cond.kind], o);
      if (cond.kind === 'versionEquals') o = out.writeBigUInt64BE(cond.version, o);
      else if (cond.kind === 'valueEquals') bytes(cond.value);
    }
  }
  if (o !== size) throw new KeyVaError('INTERNAL', `replicated command size mismatch: ${o} != ${size}`);
  return out;
}

/** Decodes a command; throws INVALID_ARGUMENT if the bytes are not a valid command. Copies nothing it can share. */
export function decodeCommand(data: Uint8Array): ReplicatedCommand {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let o = 0;
  const need = (n: number): void => {
    if (o + n > b.length) throw invalid('truncated');
  };
  const u8 = (): number => {
    need(1);
    return b.readUInt8(o++);
  };
  const u32 = (): number => {
    need(4);
    const v = b.readUInt32BE(o);
    o += 4;
    return v;
  };
  const u64 = (): bigint => {
    need(8);
    const v = b.readBigUInt64BE(o);
    o += 8;
    return v;
  };
  const f64 = (): number => {
    need(8);
    const v = b.readDoubleBE(o);
    o += 8;
    return v;
  };
  const bytes = (): Buffer => {
    const n = u32();
    need(n);
    const v = b.subarray(o, o + n);
    o += n;
    return v;
  };
  const version = u8();
  if (version !== FORMAT_V1 && version !== FORMAT_V2) throw invalid(`unknown format version ${version}`);
  const id = u64();
  const commitTs = u64();
  const nowMs = f64();
  checkStamp(commitTs, nowMs);
  let requestId: Buffer | undefined;
  if (version === FORMAT_V2) {
    need(REQUEST_ID_BYTES);
    requestId = b.subarray(o, o + REQUEST_ID_BYTES);
    o += REQUEST_ID_BYTES;
  }
  const count = u32();
  if (count > COMMAND_MUTATIONS_MAX) throw invalid(`more than ${COMMAND_MUTATIONS_MAX} mutations`);
  const mutations: DataMutation[] = [];
  for (let i = 0; i < count; i++) {
    const type = u8();
    if (type !== MutationCode.put && type !== MutationCode.delete) throw invalid(`unknown mutation code ${type}`);
    const hash = u64();
    const key = bytes();
    let value: Buffer | undefined;
    let expiresAtMs = 0;
    if (type === MutationCode.put) {
      value = bytes();
      expiresAtMs = f64();
      checkExpiry(expiresAtMs);
    }
    let condition: Condition | undefined;
    const kind = u8();
    switch (kind) {
      case ConditionCode.none:
        break;
      case ConditionCode.absent:
        condition = { kind: 'absent' };
        break;
      case ConditionCode.exists:
        condition = { kind: 'exists' };
        break;
      case ConditionCode.versionEquals:
        condition = { kind: 'versionEquals', version: u64() };
        break;
      case ConditionCode.valueEquals:
        condition = { kind: 'valueEquals', value: bytes() };
        break;
      default:
        throw invalid(`unknown condition code ${kind}`);
    }
    mutations.push(value === undefined ? { type: 'delete', hash, key, condition } : { type: 'put', hash, key, value, expiresAtMs, condition });
  }
  if (o !== b.length) throw invalid('trailing bytes');
  return requestId === undefined ? { id, mutations, commitTs, nowMs } : { id, mutations, commitTs, nowMs, requestId };
}
