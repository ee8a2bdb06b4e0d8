/**
 * The data of a data group's Raft snapshot, and the row encoding its streamed chunks use.
 *
 * Since snapshots are streamed (ADR 0008 §9, `snapshot-sender.ts` / `snapshot-receiver.ts`), the
 * `data` of a data group's Raft snapshot is only a small **descriptor** (format 2): the highest
 * commit timestamp applied at the snapshot's index and the partition's hash range. The rows
 * travel beside the Raft message, over their own gRPC stream, read from the engine at
 * `snapshotReadTs` (an MVCC read at the snapshot's applied state, so the leader keeps writing
 * while it streams), in chunks of rows encoded by `encodeRows`. A snapshot keeps only the newest
 * live version of each key (TTL-expired ones included): reads at the newest timestamp and
 * condition outcomes are the same as on a replica that applied the log; snapshot reads at older
 * timestamps see less history on a replica caught up by snapshot (as after a GC).
 *
 * Also decoded: the first, inline form (format 1, the whole partition in the message) that a
 * data directory may still hold in its log, and empty bytes (the empty partition of the
 * bootstrap snapshot).
 *
 * Layouts, big-endian:
 * - descriptor: `version u8 (=2) | maxCommitTs u64 | rangeStart u64 | rangeLast u64` (rangeLast =
 *   end - 1, so the end of the hash space fits);
 * - inline (legacy): `version u8 (=1) | maxCommitTs u64 | count u32 | rows`;
 * - rows: a row is `hash u64 | key (len u32 | bytes) | value (len u32 | bytes) | version u64 |
 *   expiresAtMs f64`; a chunk is rows back to back.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { corruptSnapshot, decodeRows, encodeRows, ROW_FIXED_BYTES, readRows, rowBytes, writeRow } from '../engine/row-codec.ts';
import type { ScanItem, StorageEngine, Timestamp } from '../engine/types.ts';

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

/** What a streamed snapshot's Raft message carries instead of the rows. */
export interface SnapshotDescriptor {
  /** Highest commit timestamp applied at the snapshot's index: the rows are the state at it. */
  readonly maxCommitTs: Timestamp;
  readonly range: HashRange;
}

/**
 * Rows read per engine scan call while streaming. A scan call runs on the leader's event loop,
 * which also serves clients: 1024 rows of 1 KiB held it 20-55 ms on a busy machine; 256 rows
 * hold it a quarter of that, and the stream yields to other work between pages.
 */
export const DUMP_PAGE_ROWS_MAX = 256;

const INLINE_VERSION = 1;
const DESCRIPTOR_VERSION = 2;
const DESCRIPTOR_BYTES = 1 + 8 + 8 + 8;
const HEADER_BYTES = 1 + 8 + 4;

export { decodeRows, encodeRows, ROW_FIXED_BYTES, rowBytes };

const corrupt = corruptSnapshot;

export function encodeSnapshotDescriptor(d: SnapshotDescriptor): Uint8Array {
  if (d.range.end <= d.range.start) throw new KeyVaError('INVALID_ARGUMENT', 'a streamed snapshot needs a non-empty hash range');
  const out = Buffer.allocUnsafe(DESCRIPTOR_BYTES);
  out.writeUInt8(DESCRIPTOR_VERSION, 0);
  out.writeBigUInt64BE(d.maxCommitTs, 1);
  out.writeBigUInt64BE(d.range.start, 9);
  out.writeBigUInt64BE(d.range.end - 1n, 17);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** True when `data` is a streamed snapshot's descriptor (its rows travel separately). */
export function isStreamedSnapshot(data: Uint8Array): boolean {
  return data.byteLength === DESCRIPTOR_BYTES && data[0] === DESCRIPTOR_VERSION;
}

export function decodeSnapshotDescriptor(data: Uint8Array): SnapshotDescriptor {
  if (!isStreamedSnapshot(data)) throw corrupt('not a streamed snapshot descriptor');
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const start = b.readBigUInt64BE(9);
  const last = b.readBigUInt64BE(17);
  if (last < start) throw corrupt('empty range');
  return { maxCommitTs: b.readBigUInt64BE(1), range: { start, end: last + 1n } };
}

/** The legacy inline form (format 1); only tests and old logs still carry it. */
export function encodePartitionSnapshot(s: PartitionSnapshot): Uint8Array {
  let size = HEADER_BYTES;
  for (const r of s.rows) size += rowBytes(r);
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt8(INLINE_VERSION, 0);
  o = out.writeBigUInt64BE(s.maxCommitTs, o);
  o = out.writeUInt32BE(s.rows.length, o);
  for (const r of s.rows) o = writeRow(out, o, r);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** Decodes the inline form (format 1) or empty bytes (the empty partition). */
export function decodePartitionSnapshot(data: Uint8Array): PartitionSnapshot {
  if (data.byteLength === 0) return { maxCommitTs: 0n, rows: [] };
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < HEADER_BYTES) throw corrupt('truncated');
  if (b.readUInt8(0) !== INLINE_VERSION) throw corrupt(`unknown format version ${b.readUInt8(0)}`);
  return { maxCommitTs: b.readBigUInt64BE(1), rows: readRows(b, HEADER_BYTES, b.length, b.readUInt32BE(9)) };
}

/**
 * The MVCC timestamp the rows of a snapshot are read at: its applied `maxCommitTs` (commit
 * timestamps grow along a group's log, so a read at it sees exactly the state at the snapshot's
 * index, while later entries keep applying). If GC has moved the watermark past it (a partition
 * idle for longer than the retention), the read happens at the watermark: every entry after the
 * snapshot was stamped by a leader's clock above it (ADR 0008, "Streamed snapshots").
 */
export function snapshotReadTs(engine: StorageEngine, maxCommitTs: Timestamp): Timestamp {
  return maxCommitTs >= engine.gcWatermark ? maxCommitTs : engine.gcWatermark;
}

/**
 * The live rows of `range` at `readTs` (newest version per key, TTL-expired ones included:
 * expiry is a function of the reader's clock, not of the state), in storage order, page by page.
 */
export async function* scanPartition(engine: StorageEngine, range: HashRange, readTs: Timestamp): AsyncGenerator<ScanItem[]> {
  let after: { hash: bigint; key: Buffer } | undefined;
  for (;;) {
    // nowMs 0: nothing counts as expired.
    const page = await engine.scan({ startHash: range.start, endHash: range.end, after }, readTs, 0, DUMP_PAGE_ROWS_MAX);
    if (page.items.length > 0) yield page.items;
    const last = page.items[page.items.length - 1];
    if (!page.more || last === undefined) return;
    after = { hash: last.hash, key: last.key };
    // Let requests that arrived meanwhile run before the next synchronous page read.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
