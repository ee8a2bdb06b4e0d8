/**
 * How big a partition is, for the placement planner's size splits (issue: placement; ADR 0009).
 *
 * The binding offers no approximate-size call, so the estimate reads the partition's live keys
 * in hash order (the engine's latest-version scan, the same read a snapshot does) up to a row
 * budget: a partition within the budget is measured exactly (key + value bytes of the newest
 * version of every live key, MVCC history and exactly-once request records not counted); a larger one is extrapolated from the
 * share of its hash range the budget covered (keys are spread uniformly over hashes, which the
 * hash function guarantees except inside one hash tag). Where the whole range was read, the hash
 * at which half the bytes lie is the split hint. Estimates are cached for `ttlMs` per group so
 * controllers polling every second do not rescan.
 */
import type { StorageEngine } from '../engine/types.ts';
import { MAX_TS } from '../engine/types.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import { isRequestRecord } from '../replication/request-record.ts';

export const SIZE_ROWS_MAX = 5_000;
export const SIZE_TTL_MS = 10_000;
const PAGE_ROWS = 1_000;

export interface PartitionSize {
  readonly bytes: number;
  readonly keys: number;
  /** True when every live key was read (no extrapolation). */
  readonly exact: boolean;
  /** The hash at which half the bytes lie (only when exact and the range holds 2 or more keys). */
  readonly splitHint?: bigint | undefined;
}

/** Estimates the live data of `range` reading at most `rowsMax` keys. */
export async function estimatePartitionSize(engine: StorageEngine, range: HashRange, rowsMax = SIZE_ROWS_MAX): Promise<PartitionSize> {
  const sizes: { hash: bigint; bytes: number }[] = [];
  let bytes = 0;
  let after: { hash: bigint; key: Buffer } | undefined;
  let more = true;
  let scanned = 0;
  let lastHash = range.start;
  while (more && scanned < rowsMax) {
    // nowMs 0: expiry is not evaluated (expired keys still take space until GC).
    const page = await engine.scan({ startHash: range.start, endHash: range.end, after }, MAX_TS, 0, Math.min(PAGE_ROWS, rowsMax - scanned));
    scanned += page.items.length;
    for (const it of page.items) {
      lastHash = it.hash;
      // Exactly-once request records are bookkeeping (10 min), not data.
      if (isRequestRecord(it.hash, it.key)) continue;
      const b = it.key.length + it.value.length;
      sizes.push({ hash: it.hash, bytes: b });
      bytes += b;
    }
    const last = page.items[page.items.length - 1];
    more = page.more && last !== undefined;
    if (last !== undefined) after = { hash: last.hash, key: last.key };
  }
  if (!more) {
    let half = 0;
    let splitHint: bigint | undefined;
    for (const s of sizes) {
      half += s.bytes;
      // The first hash past half the bytes, kept strictly inside the range (a split point must be).
      if (half * 2 >= bytes && s.hash > range.start) {
        splitHint = s.hash;
        break;
      }
    }
    return { bytes, keys: sizes.length, exact: true, splitHint: sizes.length >= 2 ? splitHint : undefined };
  }
  const covered = Number(lastHash - range.start + 1n) / Number(range.end - range.start);
  const factor = covered > 0 ? 1 / covered : 1;
  return { bytes: Math.round(bytes * factor), keys: Math.round(sizes.length * factor), exact: false };
}

/** Cached estimates per group and range (one scan per group per `ttlMs` at most; a split changes the range). */
export class PartitionSizer {
  private readonly cache = new Map<string, { at: number; size: Promise<PartitionSize> }>();
  private readonly engine: StorageEngine;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(engine: StorageEngine, ttlMs = SIZE_TTL_MS, now: () => number = Date.now) {
    this.engine = engine;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  sizeOf(group: number, range: HashRange): Promise<PartitionSize> {
    const key = `${group}:${range.start}:${range.end}`;
    const hit = this.cache.get(key);
    if (hit !== undefined && this.now() - hit.at < this.ttlMs) return hit.size;
    const size = estimatePartitionSize(this.engine, range);
    if (this.cache.size > 4096) this.cache.clear();
    this.cache.set(key, { at: this.now(), size });
    size.catch(() => this.cache.delete(key));
    return size;
  }
}
