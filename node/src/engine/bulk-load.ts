/**
 * Bulk loads (`StorageEngine.load`): rows that each carry their own version, written blind — no
 * conditions, no lookups — as their key's version (`d`) AND its latest entry (`l`), plus raw
 * puts, in ONE atomic storage write. This is what a snapshot install needs after it deleted the
 * partition's range: one engine write per chunk of rows instead of one per row version through
 * the planner (which looks up every key's latest entry first). The caller guarantees that the
 * keys have no other version (their range was just deleted) and that each key appears once.
 *
 * Pure: validation, planning into storage ops (shared by both engines) and the binary form the
 * RocksDB engine transfers to its writer thread (one exactly-sized ArrayBuffer, like
 * `batch-wire.ts`). Layout, big-endian: `rows u32 | raw u32 | rows, each hash u64 | version u64 |
 * expiresAtMs f64 | key | value | raw puts, each key | value`, bytes as `len u32 | bytes`.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { checkRawKey, encodeDataKey, encodeLatestValue, latestKeyOfPrefix, versionsPrefixOf } from './key-codec.ts';
import type { KvOp } from './ordered-kv.ts';
import { MAX_TS, type ScanItem } from './types.ts';
import { WireReader } from './wire-reader.ts';

export interface RawPut {
  readonly key: Buffer;
  readonly value: Buffer;
}

export interface BulkLoad {
  /** Live rows, each its key's only version (value, version >= 1, expiresAtMs as stored). */
  readonly rows: readonly ScanItem[];
  /** Raw puts written in the same atomic write (keys outside the data spaces, as `rawPut`). */
  readonly raw: readonly RawPut[];
}

/** Throws INVALID_ARGUMENT when a load is malformed (nothing is written then). */
export function validateLoad(l: BulkLoad): void {
  const bad = (msg: string, field: string): never => {
    throw new KeyVaError('INVALID_ARGUMENT', `bulk load: ${msg}`, { field });
  };
  let prev: ScanItem | undefined;
  for (const r of l.rows) {
    if (typeof r.hash !== 'bigint' || r.hash < 0n || r.hash > MAX_TS) bad(`hash out of the 64-bit range: ${r.hash}`, 'hash');
    if (!Buffer.isBuffer(r.key)) bad('row key must be a Buffer', 'key');
    if (!Buffer.isBuffer(r.value)) bad('row value must be a Buffer', 'value');
    if (typeof r.version !== 'bigint' || r.version < 1n || r.version > MAX_TS) bad(`version must be a bigint in [1, 2^64): ${r.version}`, 'version');
    if (!Number.isSafeInteger(r.expiresAtMs) || r.expiresAtMs < 0) bad(`expiresAtMs must be a non-negative integer: ${r.expiresAtMs}`, 'expiresAtMs');
    // Rows come in storage order; the same key twice would leave its latest entry undefined.
    if (prev !== undefined && prev.hash === r.hash && prev.key.equals(r.key)) bad('the same key appears twice', 'key');
    prev = r;
  }
  for (const p of l.raw) {
    if (!Buffer.isBuffer(p.key)) bad('raw key must be a Buffer', 'key');
    if (!Buffer.isBuffer(p.value)) bad('raw value must be a Buffer', 'value');
    checkRawKey(p.key, true);
  }
}

/** The storage ops of a (validated) load: per row its `d` version and its `l` entry, then the raw puts. */
export function planLoad(l: BulkLoad): KvOp[] {
  const ops: KvOp[] = [];
  for (const r of l.rows) {
    const key = encodeDataKey(r.hash, r.key, r.version);
    const { latest, dataValue } = encodeLatestValue(r.version, r.value, r.expiresAtMs);
    ops.push({ type: 'put', key, value: dataValue }, { type: 'put', key: latestKeyOfPrefix(versionsPrefixOf(key)), value: latest });
  }
  for (const p of l.raw) ops.push({ type: 'put', key: p.key, value: p.value });
  return ops;
}

/** Encoded size of a load. */
export function encodedLoadBytes(l: BulkLoad): number {
  let n = 8;
  for (const r of l.rows) n += 24 + 8 + r.key.length + r.value.length;
  for (const p of l.raw) n += 8 + p.key.length + p.value.length;
  return n;
}

/** Encodes a (validated) load into a fresh, exactly-sized ArrayBuffer that can be transferred. */
export function encodeLoad(l: BulkLoad): ArrayBuffer {
  const ab = new ArrayBuffer(encodedLoadBytes(l));
  const buf = Buffer.from(ab);
  let o = buf.writeUInt32BE(l.rows.length, 0);
  o = buf.writeUInt32BE(l.raw.length, o);
  const bytes = (x: Buffer): void => {
    o = buf.writeUInt32BE(x.length, o);
    o += x.copy(buf, o);
  };
  for (const r of l.rows) {
    o = buf.writeBigUInt64BE(r.hash, o);
    o = buf.writeBigUInt64BE(r.version, o);
    o = buf.writeDoubleBE(r.expiresAtMs, o);
    bytes(r.key);
    bytes(r.value);
  }
  for (const p of l.raw) {
    bytes(p.key);
    bytes(p.value);
  }
  if (o !== ab.byteLength) throw new KeyVaError('INTERNAL', `bulk load encoding size mismatch: ${o} != ${ab.byteLength}`);
  return ab;
}

/** Decodes `encodeLoad` output; Buffers are views into `ab` (no copy). */
export function decodeLoad(ab: ArrayBuffer): BulkLoad {
  const r = new WireReader(ab, 'bulk load');
  const rowCount = r.u32();
  const rawCount = r.u32();
  const rows: ScanItem[] = [];
  for (let i = 0; i < rowCount; i++) {
    const hash = r.u64();
    const version = r.u64();
    const expiresAtMs = r.f64();
    const key = r.bytes();
    rows.push({ hash, key, value: r.bytes(), version, expiresAtMs });
  }
  const raw: RawPut[] = [];
  for (let i = 0; i < rawCount; i++) {
    const key = r.bytes();
    raw.push({ key, value: r.bytes() });
  }
  r.end();
  return { rows, raw };
}
