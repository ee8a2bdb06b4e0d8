/**
 * Conversions between the protobuf wire objects (64-bit integers as decimal strings, enums by
 * name, oneofs named by a virtual field) and the KV layer's domain types. Every malformed
 * field becomes a specific KeyVaError.
 */

import type { Long } from '@grpc/proto-loader';
import type {
  ConditionOut,
  DeleteRequestOut,
  GetRequestOut,
  GetResponse,
  KeyValue,
  MutationOut,
  PutRequestOut,
  ReadOptionsOut,
  ScanRequestOut,
  WriteOptionsOut,
} from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import type { Condition, Timestamp } from '../engine/types.ts';
import type { Concern, DeleteInput, GetInput, GetOutput, KeyValueOut, MutationInput, PutInput, ReadSpec, ScanInput } from '../kv/types.ts';

const U64 = /^\d{1,20}$/;
const I64 = /^-?\d{1,19}$/;

export function u64(s: string | undefined | null, field: string): bigint {
  if (s === undefined || s === null || s === '') return 0n;
  if (!U64.test(s)) throw new KeyVaError('INVALID_ARGUMENT', `${field} must be an unsigned 64-bit integer`, { field });
  const v = BigInt(s);
  if (v >= 1n << 64n) throw new KeyVaError('INVALID_ARGUMENT', `${field} is out of range`, { field });
  return v;
}

function i64AsNumber(s: string | undefined | null, field: string, code: 'INVALID_TTL' | 'INVALID_ARGUMENT'): number {
  if (s === undefined || s === null || s === '') return 0;
  if (!I64.test(s)) throw new KeyVaError(code, `${field} must be an integer`, { field });
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new KeyVaError(code, `${field} is out of range`, { field });
  return n;
}

export function readSpec(r: ReadOptionsOut | null | undefined): ReadSpec {
  const c = r?.consistency ?? 'READ_CONSISTENCY_UNSPECIFIED';
  switch (c) {
    case 'READ_CONSISTENCY_UNSPECIFIED':
    case 'LINEARIZABLE':
      return { consistency: 'linearizable' };
    case 'FOLLOWER':
      return { consistency: 'follower' };
    case 'SNAPSHOT':
      return { consistency: 'snapshot', snapshotTs: u64(r?.snapshotTs, 'read.snapshot_ts') };
    default:
      throw new KeyVaError('INVALID_ARGUMENT', `unknown read consistency ${String(c)}`, { field: 'read.consistency' });
  }
}

export function condition(c: ConditionOut | null | undefined): Condition | undefined {
  if (!c?.kind) return undefined;
  switch (c.kind) {
    case 'absent':
      return c.absent ? { kind: 'absent' } : undefined;
    case 'exists':
      return c.exists ? { kind: 'exists' } : undefined;
    case 'versionEquals':
      return { kind: 'versionEquals', version: u64(c.versionEquals, 'condition.version_equals') };
    case 'valueEquals':
      return { kind: 'valueEquals', value: c.valueEquals ?? Buffer.alloc(0) };
    default:
      throw new KeyVaError('INVALID_ARGUMENT', 'unknown condition', { field: 'condition' });
  }
}

export function getInput(r: GetRequestOut): GetInput {
  return { key: r.key, read: readSpec(r.read) };
}

export function putInput(r: PutRequestOut): PutInput {
  return { key: r.key, value: r.value, ttlMs: i64AsNumber(r.ttlMs, 'ttl_ms', 'INVALID_TTL'), condition: condition(r.condition) };
}

export function deleteInput(r: DeleteRequestOut): DeleteInput {
  return { key: r.key, condition: condition(r.condition) };
}

export function mutationInput(m: MutationOut, i: number): MutationInput {
  if (m.op === 'put' && m.put) return { type: 'put', ...putInput(m.put) };
  if (m.op === 'delete' && m.delete) return { type: 'delete', ...deleteInput(m.delete) };
  throw new KeyVaError('INVALID_ARGUMENT', `mutation ${i} has neither put nor delete`, { field: `mutations[${i}]` });
}

export function scanInput(r: ScanRequestOut): ScanInput {
  return {
    tag: r.tag,
    start: r.start,
    end: r.end,
    prefix: r.prefix,
    limit: r.limit,
    cursor: r.cursor,
    read: readSpec(r.read),
    keysOnly: r.keysOnly,
  };
}

/**
 * The 64 bits of an unsigned field of an outgoing message in the `{ low, high, unsigned }` shape
 * that long.js' `Long.fromValue` takes as is (protobufjs' `fromObject` calls it when grpc-js
 * serialises): no decimal string is formatted here only to be parsed again there, which cost
 * ~2 µs per field, several per answered get. `toString()` is the decimal (the REST gateway's
 * `String(version)`), `toJSON()` too.
 */
class U64Bits {
  readonly low: number;
  readonly high: number;
  readonly unsigned = true;
  readonly #value: bigint;
  constructor(v: bigint) {
    this.low = Number(v & 0xffff_ffffn) | 0;
    this.high = Number(v >> 32n) | 0;
    this.#value = v;
  }
  toString(): string {
    return this.#value.toString();
  }
  toJSON(): string {
    return this.#value.toString();
  }
}

/** An unsigned 64-bit value (0 <= v < 2^64) for an outgoing message field, see `U64Bits`. */
export function u64Out(v: bigint): Long {
  return new U64Bits(v) as unknown as Long;
}

/** Expiry times are safe integers: passed as numbers (`Long.fromNumber`, no string round trip). */
export function getResponse(o: GetOutput): GetResponse {
  return { found: o.found, value: o.value, version: u64Out(o.version), expiresAtMs: o.expiresAtMs, readTs: u64Out(o.readTs) };
}

export function keyValue(kv: KeyValueOut): KeyValue {
  return { key: kv.key, value: kv.value, version: u64Out(kv.version), expiresAtMs: kv.expiresAtMs };
}

export function tsString(ts: Timestamp): string {
  return ts.toString();
}

/** The write concern of a request (unset = MAJORITY). */
export function concern(w: WriteOptionsOut | null | undefined): Concern {
  const c = w?.concern ?? 'WRITE_CONCERN_UNSPECIFIED';
  switch (c) {
    case 'WRITE_CONCERN_UNSPECIFIED':
    case 'MAJORITY':
      return 'majority';
    case 'ALL':
      return 'all';
    case 'LEADER':
      return 'leader';
    default:
      throw new KeyVaError('INVALID_ARGUMENT', `unknown write concern ${String(c)}`, { field: 'write.concern' });
  }
}
