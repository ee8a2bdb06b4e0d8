/**
 * A replica's content digest of one partition at a timestamp (LESSONS #10; the placement
 * invariant "replicas of a partition agree", ADR 0009): the key count and a SHA-256 over the
 * newest version at or below `readTs` of every live key in the partition's hash range, in
 * storage order — hash, key, value, version and expiry of each (TTLs are not evaluated, so the
 * answer does not depend on when it is computed). Exactly-once request records are included:
 * they are replicated state like any row.
 *
 * Two replicas that applied past `readTs` hold the same digest at `readTs` whatever they applied
 * since (commit timestamps grow along the log; ADR 0008 §5), so the check works under load. A
 * partition larger than `rowsMax` rows is not digested completely (`complete: false`: a count,
 * no comparable checksum).
 */
import { createHash } from 'node:crypto';
import { corruptSnapshot, encodeRows, ROW_FIXED_BYTES } from '../engine/row-codec.ts';
import type { StorageEngine, Timestamp } from '../engine/types.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';

export const DIGEST_ROWS_MAX = 2_000_000;
/**
 * Rows per engine read. A scan is synchronous on the node's event loop, which also serves clients
 * and drives Raft: each page is read in a later turn of the loop (`setImmediate`), so a digest of
 * a large partition never holds it for long (whole partitions read between two turns stalled
 * clients for hundreds of ms during moves, issue #4).
 */
export const DIGEST_PAGE_ROWS = 256;

export interface PartitionDigest {
  readonly keyCount: number;
  /** Hex SHA-256; empty when not complete. */
  readonly checksum: string;
  readonly bytes: number;
  readonly complete: boolean;
}

/** Bytes of encoded rows per chunk when the engine reads the partition on its dump thread. */
export const DIGEST_CHUNK_BYTES = 1 << 20;

/**
 * The digest of the rows newest at or below `readTs` in `range`. An engine with a dump thread
 * (RocksDB) reads them there, in chunks, as snapshots do: the node's event loop only hashes
 * (one SHA-256 update per chunk). Otherwise (the memory engine) `scan` pages on the event loop.
 * Both hash the same bytes (`hashedRows`).
 */
export async function digestPartition(engine: StorageEngine, range: HashRange, readTs: Timestamp, rowsMax = DIGEST_ROWS_MAX): Promise<PartitionDigest> {
  const h = createHash('sha256');
  let keyCount = 0;
  let bytes = 0;
  const add = (encoded: Uint8Array): void => {
    const r = hashedRows(encoded);
    h.update(r.data);
    keyCount += r.rows;
    bytes += r.keyValueBytes;
  };
  if (engine.dumpRows !== undefined) {
    // Leaving the loop early cancels the dump.
    for await (const chunk of engine.dumpRows(range.start, range.end, readTs, DIGEST_CHUNK_BYTES)) {
      add(chunk.data);
      if (keyCount > rowsMax) return { keyCount, checksum: '', bytes, complete: false };
    }
    return { keyCount, checksum: h.digest('hex'), bytes, complete: true };
  }
  let after: { hash: bigint; key: Buffer } | undefined;
  for (;;) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    // nowMs 0: expiry is not evaluated (replicas compute at different times).
    const page = await engine.scan({ startHash: range.start, endHash: range.end, after }, readTs, 0, Math.min(DIGEST_PAGE_ROWS, rowsMax - keyCount + 1));
    add(encodeRows(page.items));
    if (keyCount > rowsMax) return { keyCount, checksum: '', bytes, complete: false };
    const last = page.items[page.items.length - 1];
    if (!page.more || last === undefined) break;
    after = { hash: last.hash, key: last.key };
  }
  return { keyCount, checksum: h.digest('hex'), bytes, complete: true };
}

/**
 * The bytes a digest hashes for encoded rows (`row-codec.ts`: hash, key, value, version, expiry),
 * each row as `hash u64 | version u64 | expiresAtMs f64 | key length u32 | value length u32 |
 * key | value` (the layout digests have always hashed, so nodes of different versions agree).
 * The same size as the rows; `rows` and the key and value bytes counted.
 */
export function hashedRows(encoded: Uint8Array): { data: Buffer; rows: number; keyValueBytes: number } {
  const b = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const out = Buffer.allocUnsafe(b.length);
  let i = 0;
  let o = 0;
  let rows = 0;
  let keyValueBytes = 0;
  while (i < b.length) {
    if (i + ROW_FIXED_BYTES > b.length) throw corruptSnapshot('truncated');
    const keyLen = b.readUInt32BE(i + 8);
    const keyAt = i + 12;
    if (keyAt + keyLen + 4 > b.length) throw corruptSnapshot('truncated');
    const valueLen = b.readUInt32BE(keyAt + keyLen);
    const valueAt = keyAt + keyLen + 4;
    const tail = valueAt + valueLen;
    if (tail + 16 > b.length) throw corruptSnapshot('truncated');
    o += b.copy(out, o, i, i + 8); // hash
    o += b.copy(out, o, tail, tail + 16); // version, expiresAtMs
    o = out.writeUInt32BE(keyLen, o);
    o = out.writeUInt32BE(valueLen, o);
    o += b.copy(out, o, keyAt, keyAt + keyLen);
    o += b.copy(out, o, valueAt, tail);
    i = tail + 16;
    rows++;
    keyValueBytes += keyLen + valueLen;
  }
  return { data: out, rows, keyValueBytes };
}
