/**
 * The state-machine data of a data group's Raft snapshot: the partition's live rows (newest
 * version of every key that is not deleted, TTL-expired ones included) and the highest commit
 * timestamp the state machine had applied, as one byte blob.
 *
 * This is the simple first form (ADR 0008 "What exists now"): the whole partition is dumped into
 * memory, sent in one Raft message and installed with one engine write per distinct version.
 * Fine for small partitions and tests, bounded by `SNAPSHOT_BYTES_MAX`; streaming the key range
 * in chunks (ADR 0008 §9) is future work. A snapshot keeps only the newest live version of each
 * key: reads at the newest timestamp and condition outcomes are the same as on a replica that
 * applied the log, but snapshot reads at older timestamps see less history on a replica that
 * was caught up by snapshot (as after a GC).
 *
 * Layout, big-endian: `version u8 (=1) | maxCommitTs u64 | count u32 | rows`, a row being
 * `hash u64 | key (len u32 | bytes) | value (len u32 | bytes) | version u64 | expiresAtMs f64`.
 * Empty bytes are the empty partition (the bootstrap snapshot's data).
 */
import { KeyVaError } from '@keyva/proto/errors';
import { MAX_TS, type ScanItem, type StorageEngine, type Timestamp } from '../engine/types.ts';

/** A partition's slice of the hash space: [start, end), `end` up to HASH_SPACE_END. */
export interface HashRange {
  readonly start: bigint;
  readonly end: bigint;
}

export interface PartitionSnapshot {
  /** Highest commit timestamp applied (deleted keys included): replicas observe it on install. */
  readonly maxCommitTs: Timestamp;
  readonly rows: readonly ScanItem[];
}

/** Encoded snapshot bytes, at most; a larger partition is not snapshotted (its log is kept). */
export const SNAPSHOT_BYTES_MAX = 3 << 20;
/** Rows read per engine scan call while dumping. */
export const DUMP_PAGE_ROWS_MAX = 1024;

const FORMAT_VERSION = 1;
const HEADER_BYTES = 1 + 8 + 4;
const ROW_FIXED_BYTES = 8 + 4 + 4 + 8 + 8;

function corrupt(what: string): KeyVaError {
  return new KeyVaError('STORAGE_ERROR', `corrupt partition snapshot: ${what}`);
}

export function encodePartitionSnapshot(s: PartitionSnapshot): Uint8Array {
  let size = HEADER_BYTES;
  for (const r of s.rows) size += ROW_FIXED_BYTES + r.key.length + r.value.length;
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt8(FORMAT_VERSION, 0);
  o = out.writeBigUInt64BE(s.maxCommitTs, o);
  o = out.writeUInt32BE(s.rows.length, o);
  for (const r of s.rows) {
    o = out.writeBigUInt64BE(r.hash, o);
    o = out.writeUInt32BE(r.key.length, o);
    o += r.key.copy(out, o);
    o = out.writeUInt32BE(r.value.length, o);
    o += r.value.copy(out, o);
    o = out.writeBigUInt64BE(r.version, o);
    o = out.writeDoubleBE(r.expiresAtMs, o);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

export function decodePartitionSnapshot(data: Uint8Array): PartitionSnapshot {
  if (data.byteLength === 0) return { maxCommitTs: 0n, rows: [] };
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let o = 0;
  const need = (n: number): void => {
    if (o + n > b.length) throw corrupt('truncated');
  };
  need(HEADER_BYTES);
  if (b.readUInt8(0) !== FORMAT_VERSION) throw corrupt(`unknown format version ${b.readUInt8(0)}`);
  const maxCommitTs = b.readBigUInt64BE(1);
  const count = b.readUInt32BE(9);
  o = HEADER_BYTES;
  const rows: ScanItem[] = [];
  const bytes = (): Buffer => {
    need(4);
    const n = b.readUInt32BE(o);
    o += 4;
    need(n);
    const v = Buffer.from(b.subarray(o, o + n));
    o += n;
    return v;
  };
  for (let i = 0; i < count; i++) {
    need(8);
    const hash = b.readBigUInt64BE(o);
    o += 8;
    const key = bytes();
    const value = bytes();
    need(16);
    const version = b.readBigUInt64BE(o);
    const expiresAtMs = b.readDoubleBE(o + 8);
    o += 16;
    if (version < 1n || !Number.isSafeInteger(expiresAtMs) || expiresAtMs < 0) throw corrupt('bad row');
    rows.push({ hash, key, value, version, expiresAtMs });
  }
  if (o !== b.length) throw corrupt('trailing bytes');
  return { maxCommitTs, rows };
}

/**
 * Every live row of `range` (newest version per key, TTL-expired ones included: expiry is a
 * function of the reader's clock, not of the state), in storage order; undefined when the
 * encoded snapshot would exceed `bytesMax`. The caller makes sure no write to the range is in
 * flight, so the rows are the state at the applied index.
 */
export async function dumpPartition(engine: StorageEngine, range: HashRange, bytesMax: number = SNAPSHOT_BYTES_MAX): Promise<ScanItem[] | undefined> {
  const rows: ScanItem[] = [];
  let bytes = HEADER_BYTES;
  let after: { hash: bigint; key: Buffer } | undefined;
  for (;;) {
    // nowMs 0: nothing counts as expired.
    const page = await engine.scan({ startHash: range.start, endHash: range.end, after }, MAX_TS, 0, DUMP_PAGE_ROWS_MAX);
    for (const it of page.items) {
      bytes += ROW_FIXED_BYTES + it.key.length + it.value.length;
      if (bytes > bytesMax) return undefined;
      rows.push(it);
    }
    const last = page.items[page.items.length - 1];
    if (!page.more || last === undefined) return rows;
    after = { hash: last.hash, key: last.key };
  }
}
