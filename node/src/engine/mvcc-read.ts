/**
 * MVCC reads over an `OrderedKvReader` (shared by every engine): the newest version of a key at
 * a timestamp, and scans of live keys in storage order. Pure logic; the reader does the I/O.
 *
 * A point read first looks up the key's latest entry (`l` space, one point lookup): no entry
 * means the key has no version at all; an entry with version <= readTs is the answer. Only a
 * read below the newest version seeks the `d` history (an iterator). Scans walk the latest
 * space the same way (one row per key, old versions never read), seeking the history only for
 * keys written after the scan's timestamp.
 */
import { KeyVaError } from '@keyva/proto/errors';
import {
  commitTsOf,
  decodeDataKey,
  decodeDataValue,
  decodeLatestKey,
  decodeLatestValue,
  encodeLatestKey,
  hashRangeBounds,
  keyLowerBound,
  keyPrefixRange,
  keyUpperBound,
  latestBoundOf,
  prefixUpperBound,
  versionsPrefixOf,
  visibleVersionsRange,
} from './key-codec.ts';
import type { OrderedKvReader } from './ordered-kv.ts';
import type { ScanItem, ScanPage, ScanRange, Timestamp, VersionedValue } from './types.ts';

/** Rows fetched per reader call while scanning (bounds each synchronous storage call). */
export const SCAN_PAGE_ROWS_MAX = 256;

/** One version of a key as stored (may be dead: a tombstone or expired); `value` may be a view. */
export interface StoredVersion {
  readonly version: Timestamp;
  readonly tombstone: boolean;
  readonly expiresAtMs: number;
  readonly value: Buffer;
}

/**
 * Newest version of `key` with commitTs <= readTs, or undefined if none. Raw (may be dead).
 * Uses the latest space (a point lookup) and seeks the history only below the newest version.
 */
export function newestVersion(reader: OrderedKvReader, hash: bigint, key: Buffer, readTs: Timestamp): StoredVersion | undefined {
  const latest = reader.get(encodeLatestKey(hash, key));
  if (latest === undefined) return undefined; // no version at all
  const v = decodeLatestValue(latest);
  if (v.version <= readTs) return v;
  return newestVersionInHistory(reader, hash, key, readTs);
}

/** `newestVersion` from the `d` history alone (an iterator seek); the reference for the latest space. */
export function newestVersionInHistory(reader: OrderedKvReader, hash: bigint, key: Buffer, readTs: Timestamp): StoredVersion | undefined {
  const { lo, hi } = visibleVersionsRange(hash, key, readTs);
  const row = reader.range(lo, hi, 1)[0];
  if (row === undefined) return undefined;
  const v = decodeDataValue(row.value);
  return { version: commitTsOf(row.key), tombstone: v.tombstone, expiresAtMs: v.expiresAtMs, value: v.value };
}

function isLive(v: { tombstone: boolean; expiresAtMs: number }, nowMs: number): boolean {
  return !v.tombstone && (v.expiresAtMs === 0 || v.expiresAtMs > nowMs);
}

/**
 * The live value of `key` at `readTs` (tombstones and expired values read as absent).
 * `copy: false` when the reader returns fresh buffers (RocksDB) and the value may be a view.
 */
export function readVisible(reader: OrderedKvReader, hash: bigint, key: Buffer, readTs: Timestamp, nowMs: number, copy = true): VersionedValue | undefined {
  const v = newestVersion(reader, hash, key, readTs);
  if (v === undefined || !isLive(v, nowMs)) return undefined;
  return { value: copy ? Buffer.from(v.value) : v.value, version: v.version, expiresAtMs: v.expiresAtMs };
}

function maxBuf(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) >= 0 ? a : b;
}

function minBuf(a: Buffer, b: Buffer): Buffer {
  return Buffer.compare(a, b) <= 0 ? a : b;
}

/** Storage bounds `[lo, hi)` of a scan range plus a per-key filter for what bounds cannot express. */
export function scanBounds(range: ScanRange): { lo: Buffer; hi: Buffer; filter: ((key: Buffer) => boolean) | undefined } {
  if (range.endHash <= range.startHash) {
    throw new KeyVaError('INVALID_ARGUMENT', 'scan endHash must be greater than startHash', { field: 'endHash' });
  }
  let { lo, hi } = hashRangeBounds(range.startHash, range.endHash);
  let filter: ((key: Buffer) => boolean) | undefined;
  const oneHash = range.endHash - range.startHash === 1n;
  if (oneHash) {
    const h = range.startHash;
    if (range.startKey !== undefined) lo = maxBuf(lo, keyLowerBound(h, range.startKey));
    if (range.endKey !== undefined) hi = minBuf(hi, keyLowerBound(h, range.endKey));
    if (range.prefix !== undefined && range.prefix.length > 0) {
      const p = keyPrefixRange(h, range.prefix);
      lo = maxBuf(lo, p.lo);
      hi = minBuf(hi, p.hi);
    }
  } else if (range.startKey !== undefined || range.endKey !== undefined || (range.prefix !== undefined && range.prefix.length > 0)) {
    // Across several hashes the keys are not in key order, so key bounds are filters.
    const { startKey, endKey, prefix } = range;
    filter = (key) =>
      (startKey === undefined || Buffer.compare(key, startKey) >= 0) &&
      (endKey === undefined || Buffer.compare(key, endKey) < 0) &&
      (prefix === undefined || (key.length >= prefix.length && key.subarray(0, prefix.length).equals(prefix)));
  }
  if (range.after !== undefined) lo = maxBuf(lo, keyUpperBound(range.after.hash, range.after.key));
  return { lo, hi, filter };
}

/** Successor of a byte string in byte order (`x` + 0x00). */
function successor(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.alloc(1)]);
}

/**
 * Live keys visible at `readTs` in `[lo, hi)`, in storage order, read page by page (each page at
 * most `pageRowsMax` rows, so each storage call is bounded), from the `d` history alone: the
 * reference for `visibleItemsFromLatest`, which scans use.
 */
export function* visibleItems(
  reader: OrderedKvReader,
  lo: Buffer,
  hi: Buffer,
  readTs: Timestamp,
  nowMs: number,
  keysOnly: boolean,
  filter: ((key: Buffer) => boolean) | undefined,
  pageRowsMax: number = SCAN_PAGE_ROWS_MAX,
): Generator<ScanItem> {
  let cursor = lo;
  /** versionsPrefix of the key whose visible version has been decided (skip its older versions). */
  let decided: Buffer | undefined;
  for (;;) {
    if (Buffer.compare(cursor, hi) >= 0) return;
    const rows = reader.range(cursor, hi, pageRowsMax);
    if (rows.length === 0) return;
    for (const row of rows) {
      const prefix = versionsPrefixOf(row.key);
      if (decided !== undefined && prefix.equals(decided)) continue;
      const ts = commitTsOf(row.key);
      if (ts > readTs) continue; // newer than the snapshot; an older version of this key may follow
      decided = Buffer.from(prefix);
      const v = decodeDataValue(row.value);
      if (!isLive(v, nowMs)) continue;
      const dk = decodeDataKey(row.key);
      if (filter !== undefined && !filter(dk.key)) continue;
      yield {
        hash: dk.hash,
        key: dk.key,
        value: keysOnly ? Buffer.alloc(0) : Buffer.from(v.value),
        version: ts,
        expiresAtMs: v.expiresAtMs,
      };
    }
    const last = rows[rows.length - 1]!.key;
    // Resume after the decided key's versions (skipping its old versions) or right after the last row.
    cursor = decided !== undefined && versionsPrefixOf(last).equals(decided) ? prefixUpperBound(decided) : successor(last);
  }
}

/**
 * `visibleItems` over the latest space: one row per key; a key whose newest version is above
 * `readTs` is looked up in the history. Same bounds (mapped by `latestBoundOf`), same items.
 */
export function* visibleItemsFromLatest(
  reader: OrderedKvReader,
  lo: Buffer,
  hi: Buffer,
  readTs: Timestamp,
  nowMs: number,
  keysOnly: boolean,
  filter: ((key: Buffer) => boolean) | undefined,
  pageRowsMax: number = SCAN_PAGE_ROWS_MAX,
): Generator<ScanItem> {
  let cursor = latestBoundOf(lo);
  const end = latestBoundOf(hi);
  for (;;) {
    if (Buffer.compare(cursor, end) >= 0) return;
    const rows = reader.range(cursor, end, pageRowsMax);
    if (rows.length === 0) return;
    for (const row of rows) {
      const { hash, key } = decodeLatestKey(row.key);
      if (filter !== undefined && !filter(key)) continue;
      const latest = decodeLatestValue(row.value);
      const v = latest.version <= readTs ? latest : newestVersionInHistory(reader, hash, key, readTs);
      if (v === undefined || !isLive(v, nowMs)) continue;
      yield { hash, key, value: keysOnly ? Buffer.alloc(0) : Buffer.from(v.value), version: v.version, expiresAtMs: v.expiresAtMs };
    }
    cursor = successor(rows[rows.length - 1]!.key);
  }
}

/** One page of a scan: at most `limit` live items; `more` when another live item follows. */
export function scanVisible(
  reader: OrderedKvReader,
  range: ScanRange,
  readTs: Timestamp,
  nowMs: number,
  limit: number,
  keysOnly: boolean,
  pageRowsMax: number = SCAN_PAGE_ROWS_MAX,
): ScanPage {
  if (!Number.isSafeInteger(limit) || limit <= 0)
    throw new KeyVaError('INVALID_ARGUMENT', `scan limit must be a positive integer: ${limit}`, { field: 'limit' });
  const { lo, hi, filter } = scanBounds(range);
  const items: ScanItem[] = [];
  const pageRows = Math.min(pageRowsMax, limit + 1);
  for (const item of visibleItemsFromLatest(reader, lo, hi, readTs, nowMs, keysOnly, filter, Math.max(pageRows, 16))) {
    if (items.length === limit) return { items, more: true };
    items.push(item);
  }
  return { items, more: false };
}

/** Throws SNAPSHOT_TOO_OLD when `readTs` is below the GC watermark (those versions may be gone). */
export function checkReadTs(readTs: Timestamp, gcWatermark: Timestamp): void {
  if (typeof readTs !== 'bigint' || readTs < 0n)
    throw new KeyVaError('INVALID_ARGUMENT', `readTs must be a non-negative bigint: ${readTs}`, { field: 'readTs' });
  if (readTs < gcWatermark) {
    throw new KeyVaError('SNAPSHOT_TOO_OLD', `read at ${readTs} is below the GC watermark ${gcWatermark}`, { gcWatermark: String(gcWatermark) });
  }
}
