/**
 * The memory engine: the `StorageEngine` semantics over an in-memory sorted map, same key layout
 * and MVCC logic as RocksDB (`mvcc-read`, `write-planner`, `gc-planner`). Not durable. Serves
 * ephemeral clusters and fast unit tests.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { type BulkLoad, planLoad, validateLoad } from './bulk-load.ts';
import { GcPlanner } from './gc-planner.ts';
import { checkRawKey, checkRawRange, dataSpaceBounds, encodeTimestamp, GC_WATERMARK_KEY, hashRangeBounds, latestHashRangeBounds } from './key-codec.ts';
import { latestRepairOp, latestSpaceMismatches } from './latest-space.ts';
import { checkReadTs, readVisible, scanVisible } from './mvcc-read.ts';
import { SortedKv } from './sorted-kv.ts';
import type { EngineCapabilities, EngineStats, ScanPage, ScanRange, StorageEngine, Timestamp, VersionedValue, WriteBatch, WriteResult } from './types.ts';
import { planBatch, validateBatch } from './write-planner.ts';

type State = 'new' | 'open' | 'closed';

export class MemoryEngine implements StorageEngine {
  readonly kind = 'memory' as const;
  readonly supports: EngineCapabilities = { durable: false };
  readonly #kv = new SortedKv();
  #state: State = 'new';
  #gcWatermark: Timestamp = 0n;

  get gcWatermark(): Timestamp {
    return this.#gcWatermark;
  }

  async open(): Promise<void> {
    if (this.#state === 'closed') throw new KeyVaError('STORAGE_ERROR', 'memory engine is closed');
    this.#state = 'open';
  }

  async close(): Promise<void> {
    this.#state = 'closed';
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new KeyVaError('STORAGE_ERROR', `memory engine is ${this.#state === 'new' ? 'not open' : 'closed'}`);
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    this.#checkOpen();
    validateBatch(batch);
    const plan = planBatch(this.#kv, batch);
    if (!plan.ok) return { ok: false, failedIndex: plan.failedIndex, currentVersion: plan.currentVersion };
    this.#kv.apply(plan.ops);
    return { ok: true, existed: plan.existed };
  }

  async load(load: BulkLoad): Promise<void> {
    this.#checkOpen();
    validateLoad(load);
    this.#kv.apply(planLoad(load));
  }

  async get(hash: bigint, key: Buffer, readTs: Timestamp, nowMs: number): Promise<VersionedValue | undefined> {
    this.#checkOpen();
    checkReadTs(readTs, this.#gcWatermark);
    return readVisible(this.#kv, hash, key, readTs, nowMs);
  }

  async scan(range: ScanRange, readTs: Timestamp, nowMs: number, limit: number, keysOnly = false): Promise<ScanPage> {
    this.#checkOpen();
    checkReadTs(readTs, this.#gcWatermark);
    return scanVisible(this.#kv, range, readTs, nowMs, limit, keysOnly);
  }

  async deleteRange(startHash: bigint, endHash: bigint): Promise<void> {
    this.#checkOpen();
    if (endHash <= startHash) return;
    const { lo, hi } = hashRangeBounds(startHash, endHash);
    this.#kv.deleteRange(lo, hi);
    const l = latestHashRangeBounds(startHash, endHash);
    this.#kv.deleteRange(l.lo, l.hi);
  }

  async gc(watermarkTs: Timestamp, nowMs: number): Promise<number> {
    this.#checkOpen();
    if (watermarkTs > this.#gcWatermark) {
      this.#gcWatermark = watermarkTs;
      this.#kv.put(GC_WATERMARK_KEY, encodeTimestamp(watermarkTs));
    }
    const planner = new GcPlanner(this.#gcWatermark, nowMs);
    const { lo, hi } = dataSpaceBounds();
    const deletes: Buffer[] = [];
    for (const row of this.#kv.range(lo, hi, Number.MAX_SAFE_INTEGER)) deletes.push(...planner.feed(row.key, row.value));
    deletes.push(...planner.finish());
    for (const key of deletes) this.#kv.del(key);
    for (const prefix of planner.takeLatestRechecks()) {
      const op = latestRepairOp(this.#kv, prefix);
      if (op !== undefined) this.#kv.apply([op]);
    }
    return deletes.length;
  }

  async getRaw(key: Buffer): Promise<Buffer | undefined> {
    this.#checkOpen();
    checkRawKey(key, false);
    const v = this.#kv.get(key);
    return v === undefined ? undefined : Buffer.from(v);
  }

  async scanRaw(gte: Buffer, lt: Buffer, limit: number): Promise<{ key: Buffer; value: Buffer }[]> {
    this.#checkOpen();
    checkRawRange(gte, lt);
    return this.#kv.range(gte, lt, limit).map((r) => ({ key: Buffer.from(r.key), value: Buffer.from(r.value) }));
  }

  /** Tests: where the latest space disagrees with the version history (empty when consistent). */
  latestSpaceMismatches(compareReads = false): string[] {
    this.#checkOpen();
    return latestSpaceMismatches(this.#kv, compareReads);
  }

  stats(): EngineStats {
    const { lo, hi } = dataSpaceBounds();
    return {
      sizeBytes: this.#kv.bytes,
      keysEstimate: this.#kv.count(lo, hi),
      blockCacheHitRate: Number.NaN,
      blockCacheHits: 0,
      blockCacheMisses: 0,
    };
  }
}
