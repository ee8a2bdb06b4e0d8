/**
 * The one import of `@nxtedition/rocksdb` (the package ships no types), typed down to the calls
 * KeyVa uses. Facts measured here (see ADR 0004): `ChainedBatch.write()` runs synchronously on
 * the calling thread; only a chained batch written with `{sync: true}` fsyncs the WAL
 * (`db.put(k, v, {sync: true})` does not pass `sync` down); `querySync` is a one-shot
 * synchronous bounded iterator returning `{rows: [k0, v0, k1, v1, ...], finished}` with each
 * row a copied Buffer (with `keyEncoding/valueEncoding: 'buffer'`); `_getManySync` is a
 * synchronous MultiGet, ~3x cheaper than a one-row `querySync` (no iterator). abstract-level encodes keys
 * as 'utf8' unless told otherwise, so `createRocksLevel` sets Buffer encodings.
 */
import { createRequire } from 'node:module';

export interface RocksOpenOptions {
  readonly createIfMissing?: boolean;
  /** true = ZSTD block compression (the binding's only codec), false = none. */
  readonly compression?: boolean;
  /**
   * With `compression`: no compression in L0 and the base level, ZSTD below (KeyVa's build of the
   * binding, ADR 0015; the published binding ignores it and compresses every level).
   */
  readonly keyvaTieredCompression?: boolean;
  /** Block cache bytes (uint32); 0 = no block cache. */
  readonly cacheSize?: number;
  /** A RocksDB filter policy string (`bloomfilter:10:false`, `nullptr` = none). */
  readonly filterPolicy?: string;
  /** ZSTD compression of the WAL records (`wal_compression`); the binding's default is ON. */
  readonly walCompression?: boolean;
  /**
   * Compaction output files of at least `keyvaSstPartitionMinBytes` are cut where the first
   * this-many key bytes change (an `SstPartitioner` of KeyVa's build of the binding, ADR 0017;
   * the published one ignores both).
   */
  readonly keyvaSstPartitionPrefix?: number;
  readonly keyvaSstPartitionMinBytes?: number;
  /** The binding's level-style preset sized to `memtableMemoryBudget` (KeyVa passes neither; tests use a tiny budget to compact quickly). */
  readonly compaction?: 'level';
  readonly memtableMemoryBudget?: number;
}

export interface RocksQueryOptions {
  readonly gte?: Buffer;
  readonly lt?: Buffer;
  readonly limit?: number;
  readonly keys?: boolean;
  readonly values?: boolean;
  readonly keyEncoding: 'buffer';
  readonly valueEncoding: 'buffer';
  /** Stops after the row that makes the bytes read exceed this (at least one row). */
  readonly highWaterMarkBytes?: number;
  readonly fillCache?: boolean;
}

export interface RocksChainedBatch {
  put(key: Buffer, value: Buffer): this;
  del(key: Buffer): this;
  readonly length: number;
  /** Synchronous write on the calling thread. */
  _writeSync(options: { sync: boolean }): void;
  /** Frees the native batch now (otherwise its finalizer does, later). */
  _closeSync(): void;
}

export interface RocksLevelDb {
  readonly status: 'opening' | 'open' | 'closing' | 'closed';
  /** Native handle; `new RocksLevel(handle)` in another thread shares the same rocksdb::DB. */
  readonly handle: bigint;
  open(options?: RocksOpenOptions): Promise<void>;
  close(): Promise<void>;
  batch(): RocksChainedBatch;
  querySync(options: RocksQueryOptions): { rows: (Buffer | undefined)[]; finished: boolean };
  /**
   * Synchronous `rocksdb::DB::MultiGet` (bloom filters apply): per key a copied Buffer, undefined
   * when absent (null only when a `timeout` we never set expires). Does not check that the
   * database is open: callers must. Never pass `unsafe: true` (its buffers pin blocks of the
   * block cache and abort the process if the database closes before they are collected).
   */
  _getManySync(keys: readonly Buffer[], options: { readonly fillCache?: boolean }): (Buffer | undefined | null)[];
  getProperty(name: string): string;
  /** Range delete (rocksdb::DeleteRange) of `[gte, lt)`; not synced. */
  clear(options: { gte: Buffer; lt: Buffer }): Promise<void>;
}

interface RocksLevelConstructor {
  new (locationOrHandle: string | bigint, options?: object): RocksLevelDb;
}

const require = createRequire(import.meta.url);
const mod = require('@nxtedition/rocksdb') as { RocksLevel: RocksLevelConstructor };

/**
 * The binding's native module, with KeyVa's additions (`node/native/rocksdb/binding.patch`, built
 * by `scripts/rocksdb-native.sh`). Each `keyva_` call is absent from the published binding: its
 * users check and fall back. `db_init(handle)` wraps a database opened elsewhere (any thread).
 */
export interface NativeBinding {
  db_init(handle: bigint): object;
  keyva_export_partition?(
    db: object,
    latestGte: Buffer,
    latestLt: Buffer,
    readTs: bigint,
    dataPath: string,
    rawGte: Buffer,
    rawLt: Buffer,
    rawU64Offset: number,
    rawPath: string,
  ): number[];
  keyva_derive_latest?(db: object, dataPath: string, latestPath: string): number;
  keyva_check_sst?(db: object, paths: string[], gtes: Buffer[], lts: Buffer[]): void;
  keyva_ingest_sst?(db: object, paths: string[], gtes: Buffer[], lts: Buffer[]): void;
  keyva_write_packed?(db: object, ops: Buffer, sync: boolean): void;
  /** `[files dropped, their bytes, files of levels >= 1 still overlapping a range]` (ADR 0017). */
  keyva_delete_files_in_ranges?(db: object, gtes: Buffer[], lts: Buffer[]): number[];
}

export function nativeBinding(): NativeBinding {
  return require('@nxtedition/rocksdb/binding.js') as NativeBinding;
}

/**
 * A RocksLevel with Buffer key and value encodings. abstract-level's default is 'utf8', which
 * turns Buffer keys of a chained batch or a `clear` range into strings and mangles every byte
 * that is not valid UTF-8 (0xFF becomes EF BF BD). Always create handles through here.
 */
export function createRocksLevel(locationOrHandle: string | bigint): RocksLevelDb {
  return new mod.RocksLevel(locationOrHandle, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
}
