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

export async function digestPartition(engine: StorageEngine, range: HashRange, readTs: Timestamp, rowsMax = DIGEST_ROWS_MAX): Promise<PartitionDigest> {
  const h = createHash('sha256');
  const head = Buffer.allocUnsafe(32);
  let keyCount = 0;
  let bytes = 0;
  let after: { hash: bigint; key: Buffer } | undefined;
  for (;;) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    // nowMs 0: expiry is not evaluated (replicas compute at different times).
    const page = await engine.scan({ startHash: range.start, endHash: range.end, after }, readTs, 0, Math.min(DIGEST_PAGE_ROWS, rowsMax - keyCount + 1));
    for (const it of page.items) {
      head.writeBigUInt64BE(it.hash, 0);
      head.writeBigUInt64BE(it.version, 8);
      head.writeDoubleBE(it.expiresAtMs, 16);
      head.writeUInt32BE(it.key.length, 24);
      head.writeUInt32BE(it.value.length, 28);
      h.update(head);
      h.update(it.key);
      h.update(it.value);
      bytes += it.key.length + it.value.length;
    }
    keyCount += page.items.length;
    if (keyCount > rowsMax) return { keyCount, checksum: '', bytes, complete: false };
    const last = page.items[page.items.length - 1];
    if (!page.more || last === undefined) break;
    after = { hash: last.hash, key: last.key };
  }
  return { keyCount, checksum: h.digest('hex'), bytes, complete: true };
}
