/**
 * The on-disk layout of KeyVa's storage (DESIGN §4). Pure functions, no I/O.
 *
 * Key spaces, by leading byte:
 * - `0x64 'd'` data: `d | hash64 (8 bytes BE) | escape(userKey) | ~commitTs (8 bytes BE)`.
 *   The user key is escaped order-preservingly (`0x00` → `0x00 0xFF`) and terminated by
 *   `0x00 0x01`, so the escaped keys of one hash sort in the byte order of the user keys and no
 *   escaped key is a prefix of another. The commit timestamp is stored bitwise-NOT, so the
 *   versions of one key sort newest first. A hash range is one contiguous storage range.
 * - `0x6c 'l'` latest: `l | hash64 | escape(userKey)` (the versions prefix with `'l'` in front),
 *   one entry per user key that has any version, holding its NEWEST version:
 *   `commitTs (8 bytes BE) | data value`. Written in the same atomic write as the `d` history, so
 *   a read at or above the newest version is one bloom-filtered point lookup (ADR 0004,
 *   amendment "latest space").
 * - everything else is raw: callers of `rawPut`/`rawDelete` pass keys already prefixed with their
 *   own key-space byte (`0x6d 'm'` node metadata, `0x72 'r'` Raft log/state). A raw key must not
 *   start with `'d'` or `'l'`, and `m\0` is reserved for the engine's own metadata (see
 *   `ENGINE_META_PREFIX`).
 *
 * Value encoding (data key space): `flags (1 byte: 0 = value, 1 = tombstone) |
 * expiresAtMs (8 bytes BE, 0 = never) | value bytes`.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { HASH_SPACE_END, MAX_TS, type Timestamp } from './types.ts';

/** Leading byte of the data key space. */
export const DATA_PREFIX = 0x64; // 'd'
/** Leading byte of the latest-version key space (newest version per user key). */
export const LATEST_PREFIX = 0x6c; // 'l'
/** Leading byte of the node metadata key space (raw keys). */
export const META_PREFIX = 0x6d; // 'm'
/** Raw keys under this prefix belong to the engine itself (GC watermark); callers may not write them. */
export const ENGINE_META_PREFIX: Buffer = Buffer.from([META_PREFIX, 0x00]);
/** Where the engine persists its GC watermark (8 bytes BE). */
export const GC_WATERMARK_KEY: Buffer = Buffer.concat([ENGINE_META_PREFIX, Buffer.from('gc-watermark')]);
/**
 * Where the engine records its on-disk layout version (u32 BE). Absent: a data directory written
 * before the latest space existed (layout 1, `d` only); `LAYOUT_VERSION`: `d` + `l`.
 */
export const LAYOUT_KEY: Buffer = Buffer.concat([ENGINE_META_PREFIX, Buffer.from('layout')]);
/** The current layout: data history `d` plus the latest space `l` kept consistent with it. */
export const LAYOUT_VERSION = 2;
/**
 * A range delete in progress (`encodeHashRange`): written before the `l` and `d` range deletes
 * and removed after them; found at open, the range delete is finished (the binding offers range
 * deletes only as separate writes, not inside one atomic batch).
 */
export const PENDING_DELETE_RANGE_KEY: Buffer = Buffer.concat([ENGINE_META_PREFIX, Buffer.from('pending-delete-range')]);

const ESCAPE_BYTE = 0x00;
const ESCAPED_ZERO = 0xff;
const TERMINATOR_BYTE = 0x01;
/** Bytes of the hash and of the timestamp suffix. */
const U64_BYTES = 8;
const HEADER_BYTES = 1 + U64_BYTES;
/** Bytes before the value bytes in an encoded value. */
export const VALUE_HEADER_BYTES = 1 + U64_BYTES;

const U64_MASK = MAX_TS;

export const ValueFlag = {
  value: 0,
  tombstone: 1,
} as const;
export type ValueFlag = (typeof ValueFlag)[keyof typeof ValueFlag];

/** A decoded data key. */
export interface DataKey {
  readonly hash: bigint;
  readonly key: Buffer;
  readonly commitTs: Timestamp;
}

/** A decoded data value. */
export interface DataValue {
  readonly tombstone: boolean;
  readonly expiresAtMs: number;
  readonly value: Buffer;
}

function checkU64(n: bigint, what: string): void {
  if (n < 0n || n > U64_MASK) {
    throw new KeyVaError('INVALID_ARGUMENT', `${what} out of the 64-bit range: ${n}`, { field: what });
  }
}

/** Number of bytes of `escapeKey(key)` including the terminator. */
export function escapedLength(key: Buffer): number {
  let zeros = 0;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) zeros++;
  return key.length + zeros + 2;
}

/** Writes escape(key) + terminator into `out` at `offset`; returns the offset after it. */
function writeEscaped(key: Buffer, out: Buffer, offset: number, terminate: boolean): number {
  let o = offset;
  for (let i = 0; i < key.length; i++) {
    const b = key[i]!;
    if (b === ESCAPE_BYTE) {
      out[o++] = ESCAPE_BYTE;
      out[o++] = ESCAPED_ZERO;
    } else {
      out[o++] = b;
    }
  }
  if (terminate) {
    out[o++] = ESCAPE_BYTE;
    out[o++] = TERMINATOR_BYTE;
  }
  return o;
}

/** Order-preserving escape of a user key, terminated by `0x00 0x01`. */
export function escapeKey(key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(escapedLength(key));
  writeEscaped(key, out, 0, true);
  return out;
}

/**
 * Decodes an escaped, terminated key starting at `offset`.
 * Returns the key and the offset just after the terminator.
 */
export function unescapeKey(buf: Buffer, offset = 0): { key: Buffer; end: number } {
  const bytes: number[] = [];
  let i = offset;
  for (;;) {
    if (i >= buf.length) throw new KeyVaError('STORAGE_ERROR', 'corrupt data key: missing key terminator');
    const b = buf[i]!;
    if (b !== ESCAPE_BYTE) {
      bytes.push(b);
      i++;
      continue;
    }
    const next = buf[i + 1];
    if (next === ESCAPED_ZERO) {
      bytes.push(0);
      i += 2;
    } else if (next === TERMINATOR_BYTE) {
      return { key: Buffer.from(bytes), end: i + 2 };
    } else {
      throw new KeyVaError('STORAGE_ERROR', 'corrupt data key: bad escape sequence');
    }
  }
}

function writeHeader(out: Buffer, hash: bigint): void {
  out[0] = DATA_PREFIX;
  out.writeBigUInt64BE(hash, 1);
}

/** Storage key of one version: `d | hash | escape(key) | ~commitTs`. */
export function encodeDataKey(hash: bigint, key: Buffer, commitTs: Timestamp): Buffer {
  checkU64(hash, 'hash');
  checkU64(commitTs, 'commitTs');
  const out = Buffer.allocUnsafe(HEADER_BYTES + escapedLength(key) + U64_BYTES);
  writeHeader(out, hash);
  const o = writeEscaped(key, out, HEADER_BYTES, true);
  out.writeBigUInt64BE(~commitTs & U64_MASK, o);
  return out;
}

/** Storage key of the latest entry of a user key: `l | hash | escape(key) | terminator`. */
export function encodeLatestKey(hash: bigint, key: Buffer): Buffer {
  const out = versionsPrefix(hash, key);
  out[0] = LATEST_PREFIX;
  return out;
}

/** The latest-space key for a `versionsPrefix` (or any data key's prefix part): a copy with `'l'` in front. */
export function latestKeyOfPrefix(prefix: Buffer): Buffer {
  const out = Buffer.from(prefix);
  out[0] = LATEST_PREFIX;
  return out;
}

/** The `versionsPrefix` of a latest-space key (a copy with `'d'` in front). */
export function prefixOfLatestKey(latestKey: Buffer): Buffer {
  const out = Buffer.from(latestKey);
  out[0] = DATA_PREFIX;
  return out;
}

/** Bytes before the data value in an encoded latest value (the commit timestamp). */
export const LATEST_HEADER_BYTES = U64_BYTES;

/**
 * Encodes the latest entry of a version: `commitTs | encodeDataValue(value, expiresAtMs)`.
 * `dataValue` is a view into the result: the `d` row and the `l` row share one allocation.
 */
export function encodeLatestValue(commitTs: Timestamp, value: Buffer | undefined, expiresAtMs: number): { latest: Buffer; dataValue: Buffer } {
  checkU64(commitTs, 'commitTs');
  if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) {
    throw new KeyVaError('INVALID_ARGUMENT', `expiresAtMs must be a non-negative integer: ${expiresAtMs}`, { field: 'expiresAtMs' });
  }
  const out = Buffer.allocUnsafe(LATEST_HEADER_BYTES + VALUE_HEADER_BYTES + (value?.length ?? 0));
  out.writeBigUInt64BE(commitTs, 0);
  out[LATEST_HEADER_BYTES] = value === undefined ? ValueFlag.tombstone : ValueFlag.value;
  writeU64Number(out, LATEST_HEADER_BYTES + 1, expiresAtMs);
  value?.copy(out, LATEST_HEADER_BYTES + VALUE_HEADER_BYTES);
  return { latest: out, dataValue: out.subarray(LATEST_HEADER_BYTES) };
}

/** The latest entry for an existing `d` row (its commit timestamp and encoded value). */
export function latestValueOfRow(commitTs: Timestamp, dataValue: Buffer): Buffer {
  const out = Buffer.allocUnsafe(LATEST_HEADER_BYTES + dataValue.length);
  out.writeBigUInt64BE(commitTs, 0);
  dataValue.copy(out, LATEST_HEADER_BYTES);
  return out;
}

/** A decoded latest entry; `value` is a view into the encoded buffer (no copy). */
export interface LatestValue {
  readonly version: Timestamp;
  readonly tombstone: boolean;
  readonly expiresAtMs: number;
  readonly value: Buffer;
}

export function decodeLatestValue(buf: Buffer): LatestValue {
  if (buf.length < LATEST_HEADER_BYTES + VALUE_HEADER_BYTES) throw new KeyVaError('STORAGE_ERROR', 'corrupt latest entry: too short');
  const flag = buf[LATEST_HEADER_BYTES];
  if (flag !== ValueFlag.value && flag !== ValueFlag.tombstone) throw new KeyVaError('STORAGE_ERROR', `corrupt latest entry: flag ${flag}`);
  return {
    version: buf.readBigUInt64BE(0),
    tombstone: flag === ValueFlag.tombstone,
    expiresAtMs: readU64Number(buf, LATEST_HEADER_BYTES + 1),
    value: buf.subarray(LATEST_HEADER_BYTES + VALUE_HEADER_BYTES),
  };
}

/** Reads a u64 BE that is known to be a safe integer (expiry ms) without a BigInt. */
function readU64Number(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * 0x1_0000_0000 + buf.readUInt32BE(offset + 4);
}

function writeU64Number(buf: Buffer, offset: number, n: number): void {
  buf.writeUInt32BE(Math.floor(n / 0x1_0000_0000), offset);
  buf.writeUInt32BE(n >>> 0, offset + 4);
}

/** Decodes a storage key of the data key space. */
export function decodeDataKey(storageKey: Buffer): DataKey {
  if (storageKey[0] !== DATA_PREFIX || storageKey.length < HEADER_BYTES + 2 + U64_BYTES) {
    throw new KeyVaError('STORAGE_ERROR', 'corrupt data key: bad prefix or length');
  }
  const hash = storageKey.readBigUInt64BE(1);
  const { key, end } = unescapeKey(storageKey, HEADER_BYTES);
  if (end + U64_BYTES !== storageKey.length) throw new KeyVaError('STORAGE_ERROR', 'corrupt data key: bad timestamp suffix');
  const commitTs = ~storageKey.readBigUInt64BE(end) & U64_MASK;
  return { hash, key, commitTs };
}

/** The commit timestamp of a data storage key (cheap: reads only the suffix). */
export function commitTsOf(storageKey: Buffer): Timestamp {
  return ~storageKey.readBigUInt64BE(storageKey.length - U64_BYTES) & U64_MASK;
}

/**
 * The part of a data storage key shared by all versions of one user key:
 * `d | hash | escape(key) | terminator` (the storage key without its timestamp suffix).
 */
export function versionsPrefix(hash: bigint, key: Buffer): Buffer {
  checkU64(hash, 'hash');
  const out = Buffer.allocUnsafe(HEADER_BYTES + escapedLength(key));
  writeHeader(out, hash);
  writeEscaped(key, out, HEADER_BYTES, true);
  return out;
}

/** `versionsPrefix` of a storage key, as a view (no copy). */
export function versionsPrefixOf(storageKey: Buffer): Buffer {
  return storageKey.subarray(0, storageKey.length - U64_BYTES);
}

/**
 * Storage range `[lo, hi)` holding the versions of `key` visible at `readTs`, newest first
 * (versions with commitTs <= readTs).
 */
export function visibleVersionsRange(hash: bigint, key: Buffer, readTs: Timestamp): { lo: Buffer; hi: Buffer } {
  checkU64(readTs, 'readTs');
  const prefix = versionsPrefix(hash, key);
  const lo = Buffer.allocUnsafe(prefix.length + U64_BYTES);
  prefix.copy(lo, 0);
  lo.writeBigUInt64BE(~readTs & U64_MASK, prefix.length);
  return { lo, hi: keyUpperBound(hash, key) };
}

/**
 * The smallest storage key after every version of `key`: the terminator `0x00 0x01` becomes
 * `0x00 0x02`. Used as exclusive end of one key's versions and to resume a scan after a key.
 */
export function keyUpperBound(hash: bigint, key: Buffer): Buffer {
  const out = versionsPrefix(hash, key);
  out[out.length - 1] = TERMINATOR_BYTE + 1;
  return out;
}

/**
 * Storage position of the first version of the first user key >= `key` in hash `hash`
 * (the escaped key without terminator: every smaller user key sorts before it).
 */
export function keyLowerBound(hash: bigint, key: Buffer): Buffer {
  checkU64(hash, 'hash');
  const out = Buffer.allocUnsafe(HEADER_BYTES + escapedLength(key) - 2);
  writeHeader(out, hash);
  writeEscaped(key, out, HEADER_BYTES, false);
  return out;
}

/**
 * Storage range `[lo, hi)` of all user keys of hash `hash` that start with `prefix`
 * (`hi` is the smallest byte string greater than every string starting with `lo`).
 */
export function keyPrefixRange(hash: bigint, prefix: Buffer): { lo: Buffer; hi: Buffer } {
  const lo = keyLowerBound(hash, prefix);
  return { lo, hi: prefixUpperBound(lo) };
}

/** Storage range `[lo, hi)` of hashes `[startHash, endHash)`; `endHash` may be HASH_SPACE_END. */
export function hashRangeBounds(startHash: bigint, endHash: bigint): { lo: Buffer; hi: Buffer } {
  checkU64(startHash, 'startHash');
  if (endHash < 0n || endHash > HASH_SPACE_END) {
    throw new KeyVaError('INVALID_ARGUMENT', `endHash out of range: ${endHash}`, { field: 'endHash' });
  }
  const lo = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(lo, startHash);
  if (endHash === HASH_SPACE_END) return { lo, hi: Buffer.from([DATA_PREFIX + 1]) };
  const hi = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(hi, endHash);
  return { lo, hi };
}

/** Latest-space range `[lo, hi)` of hashes `[startHash, endHash)`; `endHash` may be HASH_SPACE_END. */
export function latestHashRangeBounds(startHash: bigint, endHash: bigint): { lo: Buffer; hi: Buffer } {
  const { lo, hi } = hashRangeBounds(startHash, endHash);
  lo[0] = LATEST_PREFIX;
  hi[0] = hi.length === 1 ? LATEST_PREFIX + 1 : LATEST_PREFIX;
  return { lo, hi };
}

/**
 * The latest-space counterpart of a data-space scan bound: `d` bounds fall between user keys
 * (never inside a timestamp suffix), so the same bytes behind an `l` bound the same user keys.
 */
export function latestBoundOf(dataBound: Buffer): Buffer {
  if (dataBound.length === 1 && dataBound[0] === DATA_PREFIX + 1) return Buffer.from([LATEST_PREFIX + 1]);
  if (dataBound[0] !== DATA_PREFIX) throw new KeyVaError('INTERNAL', 'not a data-space bound');
  const out = Buffer.from(dataBound);
  out[0] = LATEST_PREFIX;
  return out;
}

/** Decodes a latest-space key into its hash and user key. */
export function decodeLatestKey(latestKey: Buffer): { hash: bigint; key: Buffer } {
  if (latestKey[0] !== LATEST_PREFIX || latestKey.length < HEADER_BYTES + 2) throw new KeyVaError('STORAGE_ERROR', 'corrupt latest key: bad prefix or length');
  const { key, end } = unescapeKey(latestKey, HEADER_BYTES);
  if (end !== latestKey.length) throw new KeyVaError('STORAGE_ERROR', 'corrupt latest key: bytes after the key');
  return { hash: latestKey.readBigUInt64BE(1), key };
}

/** The whole latest key space as `[lo, hi)`. */
export function latestSpaceBounds(): { lo: Buffer; hi: Buffer } {
  return { lo: Buffer.from([LATEST_PREFIX]), hi: Buffer.from([LATEST_PREFIX + 1]) };
}

/** Encodes a hash range for `PENDING_DELETE_RANGE_KEY`: `startHash | endFlag u8 | endHash` (endFlag 1 = HASH_SPACE_END). */
export function encodeHashRange(startHash: bigint, endHash: bigint): Buffer {
  checkU64(startHash, 'startHash');
  const out = Buffer.alloc(2 * U64_BYTES + 1);
  out.writeBigUInt64BE(startHash, 0);
  if (endHash === HASH_SPACE_END) out[U64_BYTES] = 1;
  else {
    checkU64(endHash, 'endHash');
    out.writeBigUInt64BE(endHash, U64_BYTES + 1);
  }
  return out;
}

export function decodeHashRange(buf: Buffer): { startHash: bigint; endHash: bigint } {
  if (buf.length !== 2 * U64_BYTES + 1 || buf[U64_BYTES]! > 1) throw new KeyVaError('STORAGE_ERROR', 'corrupt pending range delete marker');
  return { startHash: buf.readBigUInt64BE(0), endHash: buf[U64_BYTES] === 1 ? HASH_SPACE_END : buf.readBigUInt64BE(U64_BYTES + 1) };
}

/** The whole data key space as `[lo, hi)`. */
export function dataSpaceBounds(): { lo: Buffer; hi: Buffer } {
  return { lo: Buffer.from([DATA_PREFIX]), hi: Buffer.from([DATA_PREFIX + 1]) };
}

/**
 * Smallest byte string greater than every string starting with `prefix`. Throws when there is
 * none (the prefix is empty or all 0xFF; never the case for data keys, which start with 'd').
 */
export function prefixUpperBound(prefix: Buffer): Buffer {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) throw new KeyVaError('INTERNAL', 'prefix has no upper bound');
  const out = Buffer.from(prefix.subarray(0, end));
  out[end - 1] = out[end - 1]! + 1;
  return out;
}

/** Encodes a data value (or a tombstone when `value` is undefined). */
export function encodeDataValue(value: Buffer | undefined, expiresAtMs: number): Buffer {
  if (!Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) {
    throw new KeyVaError('INVALID_ARGUMENT', `expiresAtMs must be a non-negative integer: ${expiresAtMs}`, { field: 'expiresAtMs' });
  }
  const out = Buffer.allocUnsafe(VALUE_HEADER_BYTES + (value?.length ?? 0));
  out[0] = value === undefined ? ValueFlag.tombstone : ValueFlag.value;
  out.writeBigUInt64BE(BigInt(expiresAtMs), 1);
  value?.copy(out, VALUE_HEADER_BYTES);
  return out;
}

/** Decodes a data value; `value` is a view into `buf` (no copy). */
export function decodeDataValue(buf: Buffer): DataValue {
  if (buf.length < VALUE_HEADER_BYTES) throw new KeyVaError('STORAGE_ERROR', 'corrupt data value: too short');
  const flag = buf[0];
  if (flag !== ValueFlag.value && flag !== ValueFlag.tombstone) throw new KeyVaError('STORAGE_ERROR', `corrupt data value: flag ${flag}`);
  return { tombstone: flag === ValueFlag.tombstone, expiresAtMs: readU64Number(buf, 1), value: buf.subarray(VALUE_HEADER_BYTES) };
}

/** true when an encoded value is a tombstone or has expired at `nowMs`. */
export function isDeadValue(buf: Buffer, nowMs: number): boolean {
  if (buf[0] === ValueFlag.tombstone) return true;
  const expiresAtMs = readU64Number(buf, 1);
  return expiresAtMs !== 0 && expiresAtMs <= nowMs;
}

/** Encodes a timestamp as 8 bytes BE (used for the persisted GC watermark). */
export function encodeTimestamp(ts: Timestamp): Buffer {
  checkU64(ts, 'timestamp');
  const out = Buffer.allocUnsafe(U64_BYTES);
  out.writeBigUInt64BE(ts, 0);
  return out;
}

export function decodeTimestamp(buf: Buffer): Timestamp {
  if (buf.length !== U64_BYTES) throw new KeyVaError('STORAGE_ERROR', 'corrupt timestamp');
  return buf.readBigUInt64BE(0);
}

/** Throws INVALID_ARGUMENT unless `key` may be used with rawPut/rawDelete/getRaw. */
export function checkRawKey(key: Buffer, forWrite: boolean): void {
  if (key.length === 0) throw new KeyVaError('INVALID_ARGUMENT', 'raw key is empty', { field: 'key' });
  if (key[0] === DATA_PREFIX || key[0] === LATEST_PREFIX) {
    throw new KeyVaError('INVALID_ARGUMENT', "raw keys must not start with 'd' or 'l' (the data and latest key spaces)", { field: 'key' });
  }
  if (forWrite && key.length >= ENGINE_META_PREFIX.length && key.subarray(0, ENGINE_META_PREFIX.length).equals(ENGINE_META_PREFIX)) {
    throw new KeyVaError('INVALID_ARGUMENT', 'raw keys under m\\0 are reserved for the engine', { field: 'key' });
  }
}

/** Throws INVALID_ARGUMENT unless [gte, lt) is a non-empty raw range inside one non-data prefix. */
export function checkRawRange(gte: Buffer, lt: Buffer): void {
  if (gte.length === 0 || lt.length === 0 || gte[0] !== lt[0] || gte[0] === DATA_PREFIX || gte[0] === LATEST_PREFIX) {
    throw new KeyVaError('INVALID_ARGUMENT', "a raw range must lie inside one key space other than 'd' and 'l'", { field: 'range' });
  }
}

/** A meta key-space key: `m | name`. Names must not start with 0x00 (reserved for the engine). */
export function metaKey(name: string | Buffer): Buffer {
  const body = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  if (body.length === 0 || body[0] === 0x00) throw new KeyVaError('INVALID_ARGUMENT', 'meta key name is empty or reserved', { field: 'key' });
  return Buffer.concat([Buffer.from([META_PREFIX]), body]);
}
