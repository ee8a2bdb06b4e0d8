/**
 * The row encoding of streamed snapshot chunks (`replication/partition-snapshot.ts`), here so
 * the engine's dump thread (`rocksdb-dump-worker.ts`) can produce chunks without importing the
 * replication layer. Big-endian, a row is `hash u64 | key (len u32 | bytes) | value (len u32 |
 * bytes) | version u64 | expiresAtMs f64`; a chunk is rows back to back.
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { ScanItem } from './types.ts';

export const ROW_FIXED_BYTES = 8 + 4 + 4 + 8 + 8;

export function corruptSnapshot(what: string): KeyVaError {
  return new KeyVaError('STORAGE_ERROR', `corrupt partition snapshot: ${what}`);
}

/** Encoded size of one row. */
export function rowBytes(r: { readonly key: Buffer; readonly value: Buffer }): number {
  return ROW_FIXED_BYTES + r.key.length + r.value.length;
}

/** A row as the engine stores its parts: hash and version as their 8 big-endian bytes. */
export interface RowParts {
  readonly hashBytes: Buffer;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly versionBytes: Buffer;
  readonly expiresAtMs: number;
}

/** `writeRow` from stored bytes (no BigInt per row; the dump thread's form). */
export function writeRowParts(out: Buffer, o: number, p: RowParts): number {
  o += p.hashBytes.copy(out, o);
  o = out.writeUInt32BE(p.key.length, o);
  o += p.key.copy(out, o);
  o = out.writeUInt32BE(p.value.length, o);
  o += p.value.copy(out, o);
  o += p.versionBytes.copy(out, o);
  return out.writeDoubleBE(p.expiresAtMs, o);
}

/** Writes `r` at `o` of `out`; returns the offset after it. */
export function writeRow(out: Buffer, o: number, r: ScanItem): number {
  o = out.writeBigUInt64BE(r.hash, o);
  o = out.writeUInt32BE(r.key.length, o);
  o += r.key.copy(out, o);
  o = out.writeUInt32BE(r.value.length, o);
  o += r.value.copy(out, o);
  o = out.writeBigUInt64BE(r.version, o);
  return out.writeDoubleBE(r.expiresAtMs, o);
}

/**
 * Rows back to back (one streamed chunk), in a buffer that owns its whole `ArrayBuffer` (never a
 * slice of Node's shared pool), so it can be transferred to another thread.
 */
export function encodeRows(rows: readonly ScanItem[]): Buffer {
  let size = 0;
  for (const r of rows) size += rowBytes(r);
  const out = Buffer.from(new ArrayBuffer(size));
  let o = 0;
  for (const r of rows) o = writeRow(out, o, r);
  return out;
}

/**
 * Reads rows from `b[o..end)` (`count` of them, or up to `end`); throws STORAGE_ERROR on
 * anything malformed. Keys and values are copies, or views into `b` with `copy` false.
 */
export function readRows(b: Buffer, o: number, end: number, count: number | undefined, copy = true): ScanItem[] {
  const rows: ScanItem[] = [];
  const need = (n: number): void => {
    if (o + n > end) throw corruptSnapshot('truncated');
  };
  const bytes = (): Buffer => {
    need(4);
    const n = b.readUInt32BE(o);
    o += 4;
    need(n);
    const v = copy ? Buffer.from(b.subarray(o, o + n)) : b.subarray(o, o + n);
    o += n;
    return v;
  };
  while (count === undefined ? o < end : rows.length < count) {
    need(8);
    const hash = b.readBigUInt64BE(o);
    o += 8;
    const key = bytes();
    const value = bytes();
    need(16);
    const version = b.readBigUInt64BE(o);
    const expiresAtMs = b.readDoubleBE(o + 8);
    o += 16;
    if (version < 1n || !Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) throw corruptSnapshot('bad row');
    rows.push({ hash, key, value, version, expiresAtMs });
  }
  if (o !== end) throw corruptSnapshot('trailing bytes');
  return rows;
}

/**
 * The rows of one streamed chunk. With `copy` false their keys and values are views into `data`
 * (no allocation per row; valid as long as `data` is not changed).
 */
export function decodeRows(data: Uint8Array, copy = true): ScanItem[] {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return readRows(b, 0, b.length, undefined, copy);
}

/**
 * Walks a chunk's rows without decoding them (no allocation per row): how many it holds, and
 * whether any has a hash outside `range` (when given). Throws STORAGE_ERROR on anything
 * `decodeRows` would refuse.
 */
export function checkRows(data: Uint8Array, range?: { readonly start: bigint; readonly end: bigint }): { rows: number; outside: boolean } {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const end = b.length;
  let o = 0;
  let rows = 0;
  let outside = false;
  while (o < end) {
    if (o + 12 > end) throw corruptSnapshot('truncated');
    if (range !== undefined && !outside) {
      const hash = b.readBigUInt64BE(o);
      outside = hash < range.start || hash >= range.end;
    }
    o += 12 + b.readUInt32BE(o + 8);
    if (o + 4 > end) throw corruptSnapshot('truncated');
    o += 4 + b.readUInt32BE(o);
    if (o + 16 > end) throw corruptSnapshot('truncated');
    const version = b.readBigUInt64BE(o);
    const expiresAtMs = b.readDoubleBE(o + 8);
    if (version < 1n || !Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) throw corruptSnapshot('bad row');
    o += 16;
    rows++;
  }
  return { rows, outside };
}
