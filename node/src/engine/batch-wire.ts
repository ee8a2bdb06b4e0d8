/**
 * A compact binary encoding of a `WriteBatch` for the hop to the writer thread. Measured (ADR
 * 0004): structured-cloning a batch costs ~35-50 µs even for a 100-byte value, because a small
 * Buffer is a view into Node's shared 8 KiB pool and the clone copies the whole pool. A batch is
 * encoded into ONE exactly-sized buffer; the batches of one run of the main thread are then
 * packed side by side into one transferred ArrayBuffer (`writer-wire.ts`: one more copy of each
 * byte, one hand-off for all of them). The decoder returns views into that buffer.
 *
 * Layout (big-endian): commitTs u64 | nowMs f64 | sync u8 | count u32 | mutations, each
 * `type u8` then — put: hash u64, key, value, expiresAtMs f64, condition;
 * delete: hash u64, key, condition; rawPut: key, value; rawDelete: key —
 * where bytes are `len u32 | bytes` and a condition is `kind u8` (0 none, 1 absent, 2 exists,
 * 3 versionEquals + u64, 4 valueEquals + bytes).
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { Condition, Mutation, WriteBatch } from './types.ts';
import { WireReader } from './wire-reader.ts';

const MutationCode = { put: 1, delete: 2, rawPut: 3, rawDelete: 4 } as const;
const ConditionCode = { none: 0, absent: 1, exists: 2, versionEquals: 3, valueEquals: 4 } as const;

function conditionBytes(c: Condition | undefined): number {
  if (c === undefined || c.kind === 'absent' || c.kind === 'exists') return 1;
  return c.kind === 'versionEquals' ? 9 : 5 + c.value.length;
}

/** Exact encoded size of a batch. */
export function encodedBatchBytes(b: WriteBatch): number {
  let n = 8 + 8 + 1 + 4;
  for (const m of b.mutations) {
    n += 1 + 4 + m.key.length;
    switch (m.type) {
      case 'put':
        n += 8 + 4 + m.value.length + 8 + conditionBytes(m.condition);
        break;
      case 'delete':
        n += 8 + conditionBytes(m.condition);
        break;
      case 'rawPut':
        n += 4 + m.value.length;
        break;
      case 'rawDelete':
        break;
    }
  }
  return n;
}

/** Encodes a (validated) batch into a fresh, exactly-sized ArrayBuffer that can be transferred. */
export function encodeBatch(b: WriteBatch): ArrayBuffer {
  const ab = new ArrayBuffer(encodedBatchBytes(b));
  const buf = Buffer.from(ab);
  let o = 0;
  const bytes = (x: Buffer): void => {
    o = buf.writeUInt32BE(x.length, o);
    o += x.copy(buf, o);
  };
  const condition = (c: Condition | undefined): void => {
    if (c === undefined) {
      o = buf.writeUInt8(ConditionCode.none, o);
    } else {
      o = buf.writeUInt8(ConditionCode[c.kind], o);
      if (c.kind === 'versionEquals') o = buf.writeBigUInt64BE(c.version, o);
      else if (c.kind === 'valueEquals') bytes(c.value);
    }
  };
  o = buf.writeBigUInt64BE(b.commitTs, o);
  o = buf.writeDoubleBE(b.nowMs, o);
  o = buf.writeUInt8(b.sync ? 1 : 0, o);
  o = buf.writeUInt32BE(b.mutations.length, o);
  for (const m of b.mutations) {
    o = buf.writeUInt8(MutationCode[m.type], o);
    if (m.type === 'put' || m.type === 'delete') o = buf.writeBigUInt64BE(m.hash, o);
    bytes(m.key);
    if (m.type === 'put' || m.type === 'rawPut') bytes(m.value);
    if (m.type === 'put') o = buf.writeDoubleBE(m.expiresAtMs, o);
    if (m.type === 'put' || m.type === 'delete') condition(m.condition);
  }
  if (o !== ab.byteLength) throw new KeyVaError('INTERNAL', `batch encoding size mismatch: ${o} != ${ab.byteLength}`);
  return ab;
}

/** Decodes `encodeBatch` output; Buffers are views into `ab` (no copy). */
export function decodeBatch(ab: ArrayBuffer | Uint8Array): WriteBatch {
  const r = new WireReader(ab, 'batch');
  const condition = (): Condition | undefined => {
    const c = r.u8();
    switch (c) {
      case ConditionCode.none:
        return undefined;
      case ConditionCode.absent:
        return { kind: 'absent' };
      case ConditionCode.exists:
        return { kind: 'exists' };
      case ConditionCode.versionEquals:
        return { kind: 'versionEquals', version: r.u64() };
      case ConditionCode.valueEquals:
        return { kind: 'valueEquals', value: r.bytes() };
      default:
        throw new KeyVaError('INTERNAL', `bad condition code ${c} in batch encoding`);
    }
  };
  const commitTs = r.u64();
  const nowMs = r.f64();
  const sync = r.u8() === 1;
  const count = r.u32();
  const mutations: Mutation[] = [];
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    switch (type) {
      case MutationCode.put: {
        const hash = r.u64();
        const key = r.bytes();
        const value = r.bytes();
        const expiresAtMs = r.f64();
        mutations.push({ type: 'put', hash, key, value, expiresAtMs, condition: condition() });
        break;
      }
      case MutationCode.delete: {
        const hash = r.u64();
        const key = r.bytes();
        mutations.push({ type: 'delete', hash, key, condition: condition() });
        break;
      }
      case MutationCode.rawPut: {
        const key = r.bytes();
        mutations.push({ type: 'rawPut', key, value: r.bytes() });
        break;
      }
      case MutationCode.rawDelete:
        mutations.push({ type: 'rawDelete', key: r.bytes() });
        break;
      default:
        throw new KeyVaError('INTERNAL', `bad mutation code ${type} in batch encoding`);
    }
  }
  return { commitTs, nowMs, sync, mutations };
}
