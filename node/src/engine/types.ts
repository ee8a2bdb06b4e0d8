/**
 * The storage engine contract. Every engine (RocksDB, memory) implements `StorageEngine` and
 * passes the shared compliance suite (`compliance.ts`). Only `node/src/engine` imports RocksDB.
 *
 * Data model (DESIGN §4): MVCC. Each write of a key creates a version stamped with its commit
 * timestamp (`Timestamp`, a hybrid logical clock value: `(unixMs << 16) | logical`). Deletes
 * write a tombstone version. A read at `readTs` sees, per key, the newest version with
 * `commitTs <= readTs`; tombstones and versions whose TTL expired (`expiresAtMs <= nowMs`) read
 * as absent. Data is laid out by partition hash, so a partition is one contiguous range.
 */
import type { BulkLoad } from './bulk-load.ts';

/** Hybrid-logical-clock timestamp; also the version of a value. */
export type Timestamp = bigint;

/** The largest timestamp: a read at MAX_TS sees the newest committed version. */
export const MAX_TS: Timestamp = (1n << 64n) - 1n;

/** End of the 64-bit hash space (exclusive upper bound of the last partition). */
export const HASH_SPACE_END = 1n << 64n;

export interface VersionedValue {
  readonly value: Buffer;
  readonly version: Timestamp;
  /** 0 = never expires; otherwise unix ms at which the key reads as absent. */
  readonly expiresAtMs: number;
}

/**
 * A precondition on the live value of the mutation's key, evaluated when the batch is applied
 * (after the earlier mutations of the same batch). Expired values count as absent;
 * `versionEquals` with version 0n holds exactly when the key is absent.
 */
export type Condition =
  | { readonly kind: 'absent' }
  | { readonly kind: 'exists' }
  | { readonly kind: 'versionEquals'; readonly version: Timestamp }
  | { readonly kind: 'valueEquals'; readonly value: Buffer };

export type Mutation =
  | {
      readonly type: 'put';
      readonly hash: bigint;
      readonly key: Buffer;
      readonly value: Buffer;
      readonly expiresAtMs: number;
      readonly condition?: Condition | undefined;
    }
  | {
      readonly type: 'delete';
      readonly hash: bigint;
      readonly key: Buffer;
      readonly condition?: Condition | undefined;
    }
  /**
   * Raw writes outside the data key space (node metadata, later Raft log/state). The caller
   * prefixes the key with its own key-space byte (`'m'` node metadata, see `metaKey`); keys
   * starting with `'d'` (data) or `m\0` (engine-reserved) are rejected with INVALID_ARGUMENT.
   */
  | { readonly type: 'rawPut'; readonly key: Buffer; readonly value: Buffer }
  | { readonly type: 'rawDelete'; readonly key: Buffer };

export interface WriteBatch {
  readonly mutations: readonly Mutation[];
  /**
   * Commit timestamp (>= 1) stamped on every data mutation of the batch. Should increase across
   * the batches touching one key; engines apply batches in submission order and do not enforce a
   * global order (a node applies partitions whose leaders run different clocks).
   */
  readonly commitTs: Timestamp;
  /** Wall clock used to evaluate conditions against TTL expiry. */
  readonly nowMs: number;
  /** true = acknowledged only after fsync of the WAL (group-committed with concurrent batches). */
  readonly sync: boolean;
}

export type WriteResult =
  | {
      readonly ok: true;
      /**
       * Per mutation: whether a live value existed before (for deletes: whether it deleted
       * something). Raw mutations are blind writes: always false (nothing reads the raw key).
       */
      readonly existed: readonly boolean[];
    }
  | {
      readonly ok: false;
      /** Index of the first mutation whose condition failed; nothing of the batch was written. */
      readonly failedIndex: number;
      /** Version of the live value found, 0n when absent. */
      readonly currentVersion: Timestamp;
    };

/**
 * A range of the data key space, in storage order (hash, then key). With one hash, startKey,
 * endKey and prefix bound the storage range; across several hashes keys are not in key order,
 * so they act as per-key filters.
 */
export interface ScanRange {
  /** Inclusive start hash. */
  readonly startHash: bigint;
  /** Exclusive end hash; HASH_SPACE_END for the end of the space. */
  readonly endHash: bigint;
  /** With startHash === endHash - 1n (one hash): inclusive start key. */
  readonly startKey?: Buffer | undefined;
  /** With one hash: exclusive end key. */
  readonly endKey?: Buffer | undefined;
  /** With one hash: only keys starting with these bytes. */
  readonly prefix?: Buffer | undefined;
  /** Resume strictly after this position (from a previous page). */
  readonly after?: { readonly hash: bigint; readonly key: Buffer } | undefined;
}

export interface ScanItem {
  readonly hash: bigint;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly version: Timestamp;
  readonly expiresAtMs: number;
}

export interface ScanPage {
  readonly items: ScanItem[];
  /** true when the range holds another live key after the last item (resume with `after`). */
  readonly more: boolean;
}

export interface EngineStats {
  /** Estimated bytes on disk / in memory of live and old versions. */
  readonly sizeBytes: number;
  /** Estimated stored entries (MVCC versions, plus on RocksDB one latest entry per key; not distinct user keys). */
  readonly keysEstimate: number;
  /** Block cache hit rate 0..1 (NaN when unknown or not applicable). */
  readonly blockCacheHitRate: number;
  /** NaN when the engine cannot count them (RocksDB: see ADR 0004); 0 for the memory engine. */
  readonly blockCacheHits: number;
  readonly blockCacheMisses: number;
  /** The latest-row cache of point reads (RocksDB `--read-cache-bytes`; absent when off). */
  readonly readCacheHits?: number;
  readonly readCacheMisses?: number;
  readonly readCacheBytes?: number;
  /** RocksDB's background work (absent on other engines): bytes compactions still have to rewrite (estimate). */
  readonly compactionPendingBytes?: number;
  readonly compactionsRunning?: number;
  readonly flushesRunning?: number;
  /** L0 files: RocksDB slows writes at 20 and stops them at 36 (its defaults). */
  readonly level0Files?: number;
  /** Bytes per second RocksDB lets writes through while it delays them (0 = not delaying). */
  readonly writeDelayedRate?: number;
  /** 1 while RocksDB stops writes (too many L0 files or memtables, or too much pending compaction). */
  readonly writeStopped?: number;
  /**
   * Bytes of SST files that range deletes (replicas dropped, snapshots installed over old rows)
   * removed whole since open, without a compaction (ADR 0017; 0 on the published binding).
   */
  readonly rangeDroppedFileBytes?: number;
}

export interface EngineCapabilities {
  /** Survives process crash (kill -9) for synced writes. */
  readonly durable: boolean;
}

/** What an SST file of a snapshot holds: data rows (`d`; the latest rows are derived from them where they are ingested) or raw rows. */
export type SstKind = 'data' | 'raw';

/** Raw rows a snapshot carries besides the data: `[gte, lt)`, each row's version a u64 (big-endian) at `u64Offset` of its key. */
export interface RawSnapshotRange {
  readonly gte: Buffer;
  readonly lt: Buffer;
  readonly u64Offset: number;
}

export interface SstExport {
  /** The files written (only kinds with rows), at `<pathBase>.<d|r>.sst`. */
  readonly files: readonly { readonly kind: SstKind; readonly path: string }[];
  /** Keys exported (a data row each). */
  readonly rows: number;
  readonly rawRows: number;
  /** Key and value bytes of the data rows. */
  readonly keyValueBytes: number;
  readonly fileBytes: number;
}

export interface SstSnapshots {
  /**
   * Writes the live rows of `[startHash, endHash)` at `readTs` (newest version per key, TTL-expired
   * ones included: what `dumpRows` yields), and the rows of `raw` whose version is at most
   * `readTs`, into SST files. Same visibility and SNAPSHOT_TOO_OLD rule as `scan`.
   */
  export(startHash: bigint, endHash: bigint, readTs: Timestamp, raw: RawSnapshotRange | undefined, pathBase: string): Promise<SstExport>;
  /**
   * Replaces the rows of `[startHash, endHash)` by the files' (exported by `export`): the latest
   * rows derived from the data file, the range deleted unless already empty, then ONE atomic
   * ingestion (unsynced like `deleteRange`: the caller's applied state, written synced after, is
   * what makes it durable). Every key of a file must lie in its kind's bounds (data: the range;
   * raw: `raw`), else INVALID_ARGUMENT and nothing changes. The files are moved into the database
   * (gone on success).
   */
  ingest(
    startHash: bigint,
    endHash: bigint,
    files: readonly { readonly kind: SstKind; readonly path: string }[],
    raw: { readonly gte: Buffer; readonly lt: Buffer } | undefined,
  ): Promise<void>;
}

/** One chunk of `StorageEngine.dumpRows`: encoded rows (`row-codec.ts`) and how many. */
export interface DumpedChunk {
  readonly data: Buffer;
  readonly rows: number;
}

export interface StorageEngine {
  readonly kind: 'rocksdb' | 'memory';
  readonly supports: EngineCapabilities;

  open(): Promise<void>;
  /** Waits for in-flight writes, then releases the files. Idempotent. */
  close(): Promise<void>;

  /**
   * Applies a batch atomically: all conditions hold and everything is written, or nothing is.
   * Batches are applied and answered in submission order. With `sync`, the answer comes after
   * the write is durable; a write is visible to reads once written (durable first, if synced).
   * A delete of a key without any version writes nothing. Throws INVALID_ARGUMENT for malformed
   * batches, STORAGE_ERROR when the store fails, UNAVAILABLE when the write queue is full.
   */
  write(batch: WriteBatch): Promise<WriteResult>;

  /**
   * Newest live version of `key` at `readTs`, or undefined. A read at `readTs` < MAX_TS sees every
   * batch with commitTs <= readTs submitted before it (it waits for them if in flight); a read at
   * MAX_TS sees what is written now. Throws SNAPSHOT_TOO_OLD when readTs < gcWatermark.
   */
  get(hash: bigint, key: Buffer, readTs: Timestamp, nowMs: number): Promise<VersionedValue | undefined>;

  /** Live keys of `range` visible at `readTs`, in storage order, at most `limit` (> 0). Same read rules as `get`. */
  scan(range: ScanRange, readTs: Timestamp, nowMs: number, limit: number, keysOnly?: boolean): Promise<ScanPage>;

  /**
   * Bulk load (a snapshot install, right after `deleteRange` of the rows' range; see
   * `bulk-load.ts`): every row becomes a version of its key with its own version, value and
   * expiry, and the key's newest one; the raw puts go into the same write. ONE atomic, unsynced
   * storage write, no conditions, no lookups: the caller guarantees the keys have no other
   * version and each appears once. Ordered with `write` (submission order). Throws
   * INVALID_ARGUMENT for a malformed load (nothing written), like `write` otherwise.
   */
  load(load: BulkLoad): Promise<void>;

  /**
   * Optional (RocksDB): the live rows of `[startHash, endHash)` at `readTs` (newest version per
   * key, TTL-expired ones included) as encoded chunks (`row-codec.ts`) of at most `chunkBytes`
   * row bytes (one larger row goes alone) with their row counts, read off the caller's thread.
   * Same visibility and SNAPSHOT_TOO_OLD rule as `scan`. Streamed snapshots use it when present.
   */
  dumpRows?(startHash: bigint, endHash: bigint, readTs: Timestamp, chunkBytes: number): AsyncIterable<DumpedChunk>;

  /**
   * Optional (RocksDB with KeyVa's native calls, `scripts/rocksdb-native.sh`): partitions as SST
   * files (ADR 0013), what streamed snapshots send instead of rows when both nodes have it.
   */
  readonly sst?: SstSnapshots;

  /** Removes every version of every key with hash in [startHash, endHash). Raw keys are kept. */
  deleteRange(startHash: bigint, endHash: bigint): Promise<void>;

  /**
   * Garbage-collects versions no read at or above `watermarkTs` (with a clock >= `nowMs`) can
   * see: older versions shadowed by a version <= watermark, tombstones and values expired at
   * `nowMs` that are <= watermark, and such dead versions above it with nothing left beneath.
   * The watermark only moves up, is persisted, and is raised before GC starts: from then on
   * reads below it fail with SNAPSHOT_TOO_OLD. Returns versions removed.
   */
  gc(watermarkTs: Timestamp, nowMs: number): Promise<number>;

  /** The current GC watermark (0n before any GC). */
  readonly gcWatermark: Timestamp;

  /** Raw read outside the data key space (see Mutation rawPut); INVALID_ARGUMENT for 'd' keys. */
  getRaw(key: Buffer): Promise<Buffer | undefined>;

  /**
   * Raw rows with `gte <= key < lt` in key order, at most `limit`, outside the data key space
   * (both bounds must start with the same non-data prefix byte). Fewer than `limit` rows do not
   * by themselves mean the range is exhausted: continue after the last key until a call is empty.
   */
  scanRaw(gte: Buffer, lt: Buffer, limit: number): Promise<{ key: Buffer; value: Buffer }[]>;

  stats(): EngineStats;
}

export interface RocksDbOptions {
  readonly path: string;
  /**
   * Block compression. The RocksDB binding supports only ZSTD (ADR 0004): 'zstd' in every level,
   * 'none', or 'tiered' (ADR 0015): none in L0 and the level L0 is compacted into, ZSTD below;
   * 'tiered' needs KeyVa's build of the binding (ADR 0013) and is 'zstd' on the published one.
   */
  readonly compression: 'tiered' | 'zstd' | 'lz4' | 'snappy' | 'none';
  /** Bloom filter bits per key; 0 disables the filter. */
  readonly bloomBitsPerKey: number;
  /** Block cache size in bytes (RocksDB: at most 2^32 - 1). */
  readonly blockCacheBytes: number;
  /**
   * ZSTD compression of the write-ahead log (absent: off). It runs on the writer thread inside
   * every write, so it adds to every write's latency; it only saves WAL bytes (ADR 0004).
   */
  readonly walCompression?: boolean;
}
