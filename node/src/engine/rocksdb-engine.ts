/**
 * The RocksDB engine (DESIGN §4, ADR 0004). One RocksDB per node, opened by this (main) thread.
 *
 * - Reads (get/scan/getRaw) run on this thread as bounded synchronous calls: a get is one point
 *   lookup (a one-key MultiGet) of the key's latest entry, plus one seek returning at most one
 *   row only when reading below the newest version; a scan reads pages of at most
 *   `SCAN_PAGE_ROWS_MAX` rows / `READ_PAGE_BYTES_MAX` bytes with `querySync`.
 * - Writes, range deletes and GC run on a dedicated writer thread that shares the database by
 *   its native handle (`rocksdb-writer.ts`): with `@nxtedition/rocksdb` a write, and its fsync,
 *   blocks the calling thread, so this thread must never write. The writer group-commits.
 * - Visibility: a write is visible once RocksDB has written it (for a synced write: after the
 *   WAL fsync). A read at `readTs` < MAX_TS waits for the in-flight batches submitted before it
 *   up to the last one with commitTs <= readTs, so a snapshot read never misses a write it
 *   should see. A read at MAX_TS reads the newest written data without waiting.
 * - Errors from RocksDB become `KeyVaError('STORAGE_ERROR')`.
 */
import { mkdir, rm } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { KeyVaError } from '@keyva/proto/errors';
import { encodeBatch } from './batch-wire.ts';
import { type BulkLoad, encodeLoad, validateLoad } from './bulk-load.ts';
import { checkRawKey, checkRawRange, decodeTimestamp, encodeLatestKey, GC_WATERMARK_KEY, hashRangeBounds, LATEST_PREFIX, latestBoundOf } from './key-codec.ts';
import { CachingLatestReader, type LatestCacheStats, LatestRowCache } from './latest-cache.ts';
import { latestSpaceMismatches } from './latest-space.ts';
import { checkReadTs, readVisible, scanVisible } from './mvcc-read.ts';
import { createRocksLevel, type RocksLevelDb } from './rocksdb-binding.ts';
import { RocksDumper } from './rocksdb-dumper.ts';
import { toRocksOpenOptions } from './rocksdb-options.ts';
import { RocksReader, storageCall } from './rocksdb-reader.ts';
import { type SstIngestFile, sstNative } from './rocksdb-sst.ts';
import { fromWireError, type GroupLimits, type WriterAnswer, type WriterEvent, type WriterInit, type WriterRequest } from './rocksdb-writer-protocol.ts';
import { lowerThreadsNamed, ROCKSDB_BACKGROUND_THREAD } from './thread-priority.ts';
import {
  type DumpedChunk,
  type EngineCapabilities,
  type EngineStats,
  MAX_TS,
  type RawSnapshotRange,
  type RocksDbOptions,
  type ScanPage,
  type ScanRange,
  type SstExport,
  type SstKind,
  type SstSnapshots,
  type StorageEngine,
  type Timestamp,
  type VersionedValue,
  type WriteBatch,
  type WriteResult,
} from './types.ts';
import { validateBatch } from './write-planner.ts';
import { type AnswersEvent, type PackedWrite, packWrites, unpackAnswers, WRITER_ID_MAX } from './writer-wire.ts';

/** Defaults for the writer thread's group commit and GC chunking. */
export const DEFAULT_GROUP_LIMITS: GroupLimits = {
  groupBatchesMax: 512,
  groupBytesMax: 32 << 20,
  gcChunkRowsMax: 4096,
};
/** Requests queued to the writer thread at most; beyond, writes fail fast with UNAVAILABLE. */
export const IN_FLIGHT_REQUESTS_MAX = 100_000;

export interface RocksDbEngineTuning {
  readonly groupLimits?: Partial<GroupLimits>;
  readonly inFlightRequestsMax?: number;
  /** Bytes of the main-thread cache of latest rows (`latest-cache.ts`); 0 or unset = no cache. */
  readonly latestCacheBytes?: number;
  /**
   * Start the dump thread at open instead of at the first snapshot sent or received (a node with
   * peers: the ~0.1-0.2 s a thread takes to start is then not inside a partition move).
   */
  readonly startDumpThread?: boolean;
  /**
   * Whether the writer thread writes a group commit in one call with KeyVa's build of the binding
   * (`rocksdb-packed-write.ts`; default true). false takes the chained-batch path the published
   * binding always takes (tests of that path).
   */
  readonly packedWrites?: boolean;
  /**
   * Nice value of the background threads (compactions, the dump thread: `thread-priority.ts`,
   * ADR 0016); 0 = the priority of the threads that serve requests. Default 0 here; nodes pass
   * their `--background-nice`.
   */
  readonly backgroundNice?: number;
}

/** Counters of the writer thread, for tests, benchmarks and metrics. */
export interface WriterCounters {
  /** Write batches answered. */
  readonly batches: number;
  /** Group commits (RocksDB write calls made for write batches). */
  readonly groups: number;
  /** Largest group seen. */
  readonly groupBatchesPeak: number;
}

interface Pending {
  readonly id: number;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
  /** For data writes: commitTs, to let snapshot reads wait for it. */
  readonly commitTs: Timestamp | undefined;
  readonly done: Promise<unknown>;
}

type State = 'new' | 'opening' | 'open' | 'closing' | 'closed' | 'failed';

const PROPERTY = {
  keys: 'rocksdb.estimate-num-keys',
  sstBytes: 'rocksdb.total-sst-files-size',
  memtableBytes: 'rocksdb.cur-size-all-mem-tables',
  compactionPendingBytes: 'rocksdb.estimate-pending-compaction-bytes',
  compactionsRunning: 'rocksdb.num-running-compactions',
  flushesRunning: 'rocksdb.num-running-flushes',
  level0Files: 'rocksdb.num-files-at-level0',
  writeDelayedRate: 'rocksdb.actual-delayed-write-rate',
  writeStopped: 'rocksdb.is-write-stopped',
} as const;

export class RocksDbEngine implements StorageEngine {
  readonly kind = 'rocksdb' as const;
  readonly supports: EngineCapabilities = { durable: true };
  readonly options: RocksDbOptions;
  readonly #limits: GroupLimits;
  readonly #inFlightMax: number;
  readonly #latestCacheBytes: number;
  readonly #tuning: RocksDbEngineTuning;
  /** Point reads of latest rows go through the cache when it is on. */
  #cache: LatestRowCache | undefined;
  #pointReader: CachingLatestReader | undefined;
  #state: State = 'new';
  #db: RocksLevelDb | undefined;
  #reader: RocksReader | undefined;
  #worker: Worker | undefined;
  /** The dump thread (streamed snapshots' reads), started on first use. */
  #dumper: RocksDumper | undefined;
  /** `sst`, made once. */
  #sst: SstSnapshots | undefined;
  #workerExited: Promise<void> = Promise.resolve();
  #nextId = 1;
  /** Requests sent to the writer, in submission order (answers come back in the same order). */
  readonly #pending = new Map<number, Pending>();
  /** Data-write requests in flight, in submission order, for snapshot-read waits. */
  #inFlightWrites: Pending[] = [];
  #gcWatermark: Timestamp = 0n;
  #closing: Promise<void> | undefined;
  #failure: KeyVaError | undefined;
  #counters = { batches: 0, groups: 0, groupBatchesPeak: 0 };
  /** Bytes of SST files range deletes dropped whole since open (ADR 0017). */
  #droppedFileBytes = 0;
  /** Requests not yet handed to the writer thread (sent together at the end of the current run). */
  #outbox: WriterRequest[] = [];

  constructor(options: RocksDbOptions, tuning: RocksDbEngineTuning = {}) {
    toRocksOpenOptions(options); // validate early
    this.options = options;
    this.#limits = { ...DEFAULT_GROUP_LIMITS, ...tuning.groupLimits };
    this.#inFlightMax = tuning.inFlightRequestsMax ?? IN_FLIGHT_REQUESTS_MAX;
    this.#latestCacheBytes = tuning.latestCacheBytes ?? 0;
    this.#tuning = tuning;
    if (!Number.isSafeInteger(this.#latestCacheBytes) || this.#latestCacheBytes < 0)
      throw new KeyVaError('INVALID_ARGUMENT', `latestCacheBytes must be a non-negative integer, got ${this.#latestCacheBytes}`, { field: 'latestCacheBytes' });
  }

  /** Hits and size of the latest-row cache (undefined when it is off). */
  get latestCacheStats(): LatestCacheStats | undefined {
    return this.#cache?.stats();
  }

  get gcWatermark(): Timestamp {
    return this.#gcWatermark;
  }

  get writerCounters(): WriterCounters {
    return { ...this.#counters };
  }

  async open(): Promise<void> {
    if (this.#state !== 'new') throw new KeyVaError('STORAGE_ERROR', `rocksdb engine cannot open from state ${this.#state}`);
    this.#state = 'opening';
    const openOptions = toRocksOpenOptions(this.options);
    try {
      await mkdir(this.options.path, { recursive: true });
      const db = createRocksLevel(this.options.path);
      await db.open(openOptions);
      this.#db = db;
    } catch (e) {
      this.#state = 'failed';
      throw new KeyVaError('STORAGE_ERROR', `rocksdb open of ${this.options.path} failed: ${(e as Error).message}`, {}, { cause: e });
    }
    this.#reader = new RocksReader(this.#db);
    if (this.#latestCacheBytes > 0) {
      this.#cache = new LatestRowCache(this.#latestCacheBytes);
      this.#pointReader = new CachingLatestReader(this.#reader, this.#cache, LATEST_PREFIX);
    }
    const wm = this.#reader.get(GC_WATERMARK_KEY);
    this.#gcWatermark = wm === undefined ? 0n : decodeTimestamp(wm);
    try {
      await this.#startWriter(this.#db);
    } catch (e) {
      this.#state = 'failed';
      await this.#db.close().catch(() => undefined);
      throw e;
    }
    this.#state = 'open';
    // RocksDB's pools are the process's (Env::Default), started by the first open.
    lowerThreadsNamed(ROCKSDB_BACKGROUND_THREAD, this.#tuning.backgroundNice ?? 0);
    if (this.#tuning.startDumpThread === true) this.#dumperThread().start();
  }

  async #startWriter(db: RocksLevelDb): Promise<void> {
    const init: WriterInit = { handle: db.handle, limits: this.#limits, packedWrites: this.#tuning.packedWrites ?? true };
    const worker = new Worker(new URL('./rocksdb-writer-worker.ts', import.meta.url), { workerData: init, name: 'keyva-rocksdb-writer' });
    this.#worker = worker;
    this.#workerExited = new Promise((resolve) => worker.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const onEvent = (ev: WriterEvent): void => {
        if (ev instanceof ArrayBuffer) return; // answers: none before 'ready'
        if (ev.t === 'ready') {
          worker.off('error', onError);
          worker.on('message', (m: WriterEvent) => this.#onEvent(m));
          worker.on('error', (e) => this.#fail(new KeyVaError('STORAGE_ERROR', `rocksdb writer thread crashed: ${e.message}`, {}, { cause: e })));
          worker.on('exit', (code) => {
            if (this.#state !== 'closing' && this.#state !== 'closed') this.#fail(new KeyVaError('STORAGE_ERROR', `rocksdb writer thread exited (${code})`));
          });
          resolve();
        } else if (ev.t === 'fatal') {
          reject(fromWireError(ev.error));
        }
      };
      const onError = (e: Error): void => reject(new KeyVaError('STORAGE_ERROR', `rocksdb writer thread failed to start: ${e.message}`, {}, { cause: e }));
      worker.once('message', onEvent);
      worker.once('error', onError);
    });
  }

  #onEvent(ev: WriterEvent): void {
    if (ev instanceof ArrayBuffer) {
      this.#onAnswers(unpackAnswers(ev));
      return;
    }
    switch (ev.t) {
      case 'answers':
        this.#onAnswers(ev);
        break;
      case 'fatal':
        this.#fail(fromWireError(ev.error));
        break;
      case 'ready':
        break;
    }
  }

  #onAnswers(ev: AnswersEvent): void {
    if (ev.groupBatches > 0) {
      this.#counters.batches += ev.groupBatches;
      if (ev.wrote) this.#counters.groups++;
      this.#counters.groupBatchesPeak = Math.max(this.#counters.groupBatchesPeak, ev.groupBatches);
    }
    for (const a of ev.answers) this.#settle(a);
    this.#trimInFlight();
  }

  #settle(a: WriterAnswer): void {
    const p = this.#pending.get(a.id);
    if (p === undefined) return;
    this.#pending.delete(a.id);
    if (a.ok) p.resolve(a.result);
    else p.reject(fromWireError(a.error));
  }

  #trimInFlight(): void {
    let i = 0;
    while (i < this.#inFlightWrites.length && !this.#pending.has(this.#inFlightWrites[i]!.id)) i++;
    if (i > 0) this.#inFlightWrites = this.#inFlightWrites.slice(i);
  }

  /** The writer thread died: fail everything in flight and refuse further work. */
  #fail(e: KeyVaError): void {
    if (this.#failure !== undefined) return;
    this.#failure = e;
    if (this.#state === 'open') this.#state = 'failed';
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    this.#inFlightWrites = [];
  }

  #checkOpen(): RocksReader {
    if (this.#state !== 'open' || this.#reader === undefined) {
      throw this.#failure ?? new KeyVaError('STORAGE_ERROR', `rocksdb engine is ${this.#state === 'new' ? 'not open' : this.#state}`);
    }
    return this.#reader;
  }

  /** A request id: 1..WRITER_ID_MAX, wrapping (ids of requests in flight are far apart). */
  #newId(): number {
    const id = this.#nextId;
    this.#nextId = id >= WRITER_ID_MAX ? 1 : id + 1;
    return id;
  }

  #request<T>(req: WriterRequest, commitTs: Timestamp | undefined): Promise<T> {
    if (this.#pending.size >= this.#inFlightMax) {
      return Promise.reject(
        new KeyVaError('UNAVAILABLE', `storage writer queue is full (${this.#inFlightMax} requests)`, { limit: String(this.#inFlightMax) }),
      );
    }
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const pending: Pending = { id: req.id, resolve, reject, commitTs, done: promise.then(noop, noop) };
    this.#pending.set(req.id, pending);
    if (commitTs !== undefined) this.#inFlightWrites.push(pending);
    // Requests made in one synchronous run (a Raft turn's log write and applies) cross to the
    // writer thread in ONE message at the end of it: one hand-off instead of one per request.
    this.#outbox.push(req);
    if (this.#outbox.length === 1) queueMicrotask(() => this.#flushOutbox());
    return promise as Promise<T>;
  }

  #flushOutbox(): void {
    const out = this.#outbox;
    this.#outbox = [];
    const worker = this.#worker as Worker;
    // Runs of writes cross packed (writer-wire.ts); other requests (rare) as objects, in order.
    let sent = 0;
    try {
      for (let i = 0; i < out.length; ) {
        const req = out[i] as WriterRequest;
        if (req.t !== 'write') {
          worker.postMessage(req, req.t === 'load' ? [req.load] : []);
          sent = ++i;
          continue;
        }
        const writes: PackedWrite[] = [];
        for (let r = out[i]; r?.t === 'write'; r = out[++i]) writes.push(r);
        const packed = packWrites(writes);
        worker.postMessage(packed, [packed]);
        sent = i;
      }
    } catch (e) {
      const error = new KeyVaError('STORAGE_ERROR', `cannot send to the rocksdb writer thread: ${(e as Error).message}`, {}, { cause: e });
      for (const req of out.slice(sent)) {
        const p = this.#pending.get(req.id);
        if (p === undefined) continue;
        this.#pending.delete(req.id);
        p.reject(error);
      }
      this.#inFlightWrites = this.#inFlightWrites.filter((w) => this.#pending.has(w.id));
    }
  }

  async write(batch: WriteBatch): Promise<WriteResult> {
    this.#checkOpen();
    validateBatch(batch);
    const hasData = batch.mutations.some((m) => m.type === 'put' || m.type === 'delete');
    const id = this.#newId();
    const encoded = new Uint8Array(encodeBatch(batch));
    const cache = this.#cache;
    if (cache === undefined || !hasData) return this.#request<WriteResult>({ t: 'write', id, batch: encoded }, hasData ? batch.commitTs : undefined);
    // Announced before it is sent, so no read stores a row this write is changing (latest-cache.ts).
    const keys: string[] = [];
    for (const m of batch.mutations) if (m.type === 'put' || m.type === 'delete') keys.push(LatestRowCache.keyOf(encodeLatestKey(m.hash, m.key)));
    cache.beginWrite(keys);
    const answer = this.#request<WriteResult>({ t: 'write', id, batch: encoded }, batch.commitTs);
    const end = (): void => cache.endWrite(keys);
    answer.then(end, end);
    return answer;
  }

  async load(load: BulkLoad): Promise<void> {
    this.#checkOpen();
    validateLoad(load);
    const encoded = encodeLoad(load);
    let oldest: Timestamp | undefined;
    for (const r of load.rows) if (oldest === undefined || r.version < oldest) oldest = r.version;
    const send = (): Promise<void> => this.#request<undefined>({ t: 'load', id: this.#newId(), load: encoded }, oldest).then(noop);
    const cache = this.#cache;
    if (cache === undefined || load.rows.length === 0) return send();
    // Like a write: the keys are announced before the load is sent (latest-cache.ts).
    const keys = load.rows.map((r) => LatestRowCache.keyOf(encodeLatestKey(r.hash, r.key)));
    cache.beginWrite(keys);
    const answer = send();
    const end = (): void => cache.endWrite(keys);
    answer.then(end, end);
    return answer;
  }

  /** Runs a range delete or GC request as a barrier of the latest-row cache. */
  #barrier<T>(send: () => Promise<T>): Promise<T> {
    const cache = this.#cache;
    if (cache === undefined) return send();
    cache.beginBarrier();
    const answer = send();
    const end = (): void => cache.endBarrier();
    answer.then(end, end);
    return answer;
  }

  /** Waits until no batch submitted so far with commitTs <= readTs is in flight. */
  async #awaitVisible(readTs: Timestamp): Promise<void> {
    if (readTs === MAX_TS || this.#inFlightWrites.length === 0) return;
    // Answers arrive in submission order, so waiting for the last such batch waits for all before it.
    for (let i = this.#inFlightWrites.length - 1; i >= 0; i--) {
      const p = this.#inFlightWrites[i]!;
      if (p.commitTs !== undefined && p.commitTs <= readTs) {
        await p.done;
        return;
      }
    }
  }

  async get(hash: bigint, key: Buffer, readTs: Timestamp, nowMs: number): Promise<VersionedValue | undefined> {
    let reader = this.#checkOpen();
    checkReadTs(readTs, this.#gcWatermark);
    if (readTs !== MAX_TS && this.#inFlightWrites.length > 0) {
      await this.#awaitVisible(readTs);
      reader = this.#checkOpen();
      checkReadTs(readTs, this.#gcWatermark);
    }
    // RocksDB hands out fresh buffers: the value may be a view, no copy needed; cached rows are shared: copied.
    const cached = this.#pointReader;
    return cached === undefined ? readVisible(reader, hash, key, readTs, nowMs, false) : readVisible(cached, hash, key, readTs, nowMs, true);
  }

  async scan(range: ScanRange, readTs: Timestamp, nowMs: number, limit: number, keysOnly = false): Promise<ScanPage> {
    this.#checkOpen();
    checkReadTs(readTs, this.#gcWatermark);
    await this.#awaitVisible(readTs);
    const reader = this.#checkOpen();
    checkReadTs(readTs, this.#gcWatermark);
    return scanVisible(reader, range, readTs, nowMs, limit, keysOnly);
  }

  /**
   * The live rows of hash range `[startHash, endHash)` at `readTs` (newest version per key,
   * TTL-expired ones included), in storage order, as encoded chunks (`row-codec.ts`) of at most
   * `chunkBytes` row bytes with their row counts, read on the dump thread (`rocksdb-dump-worker.ts`), not this one. Same
   * visibility as `scan` (waits for in-flight writes at or below `readTs` first); every chunk is
   * checked against the GC watermark when it arrives here (SNAPSHOT_TOO_OLD once GC may have
   * passed `readTs`: a GC past it is only sent to the writer after the watermark is raised).
   */
  async *dumpRows(startHash: bigint, endHash: bigint, readTs: Timestamp, chunkBytes: number): AsyncGenerator<DumpedChunk> {
    this.#checkOpen();
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0)
      throw new KeyVaError('INVALID_ARGUMENT', `chunkBytes must be a positive integer, got ${chunkBytes}`, { field: 'chunkBytes' });
    if (endHash <= startHash) return;
    const { lo, hi } = hashRangeBounds(startHash, endHash);
    const dumper = await this.#dumperAt(readTs);
    for await (const chunk of dumper.dump(lo, hi, readTs, chunkBytes)) {
      this.#checkOpen();
      checkReadTs(readTs, this.#gcWatermark);
      yield chunk;
    }
  }

  /**
   * The dump thread, once every write at or below `readTs` is visible; SNAPSHOT_TOO_OLD (before
   * and after the wait) when GC may have passed `readTs`.
   */
  async #dumperAt(readTs: Timestamp): Promise<RocksDumper> {
    checkReadTs(readTs, this.#gcWatermark);
    await this.#awaitVisible(readTs);
    this.#checkOpen();
    checkReadTs(readTs, this.#gcWatermark);
    return this.#dumperThread();
  }

  #dumperThread(): RocksDumper {
    this.#dumper ??= new RocksDumper((this.#db as RocksLevelDb).handle, this.#tuning.backgroundNice ?? 0);
    return this.#dumper;
  }

  /** Snapshots as SST files (ADR 0013), when the loaded binding has KeyVa's native calls. */
  get sst(): SstSnapshots | undefined {
    if (sstNative() === undefined) return undefined;
    this.#sst ??= {
      export: (startHash, endHash, readTs, raw, pathBase) => this.#exportSst(startHash, endHash, readTs, raw, pathBase),
      ingest: (startHash, endHash, files, raw) => this.#ingestSst(startHash, endHash, files, raw),
    };
    return this.#sst;
  }

  async #exportSst(startHash: bigint, endHash: bigint, readTs: Timestamp, raw: RawSnapshotRange | undefined, pathBase: string): Promise<SstExport> {
    this.#checkOpen();
    const { lo, hi } = hashRangeBounds(startHash, endHash);
    const dumper = await this.#dumperAt(readTs);
    const paths = { data: `${pathBase}.d.sst`, raw: `${pathBase}.r.sst` };
    const counts = await dumper.exportSst({
      latestGte: latestBoundOf(lo),
      latestLt: latestBoundOf(hi),
      readTs,
      dataPath: paths.data,
      raw,
      rawPath: paths.raw,
    });
    const files: { kind: SstKind; path: string }[] = [];
    if (counts.rows > 0) files.push({ kind: 'data', path: paths.data });
    if (counts.rawRows > 0) files.push({ kind: 'raw', path: paths.raw });
    // The export read a view of the database taken after this check passed: GC past readTs is
    // sent to the writer only after the watermark is raised, so it still being at or below
    // readTs means no version the export needed was gone.
    try {
      this.#checkOpen();
      checkReadTs(readTs, this.#gcWatermark);
    } catch (e) {
      await Promise.all(files.map((f) => rm(f.path, { force: true })));
      throw e;
    }
    return { files, rows: counts.rows, rawRows: counts.rawRows, keyValueBytes: counts.keyValueBytes, fileBytes: counts.fileBytes };
  }

  async #ingestSst(
    startHash: bigint,
    endHash: bigint,
    files: readonly { readonly kind: SstKind; readonly path: string }[],
    raw: { readonly gte: Buffer; readonly lt: Buffer } | undefined,
  ): Promise<void> {
    const reader = this.#checkOpen();
    const { lo, hi } = hashRangeBounds(startHash, endHash);
    const bounded: SstIngestFile[] = files.map((f) => {
      if (f.kind === 'data') return { path: f.path, gte: lo, lt: hi };
      if (raw === undefined) throw new KeyVaError('INVALID_ARGUMENT', 'a raw SST file needs the raw range it may cover', { field: 'raw' });
      checkRawRange(raw.gte, raw.lt);
      return { path: f.path, gte: raw.gte, lt: raw.lt };
    });
    const refused = (e: unknown): unknown => {
      const message = (e as Error).message;
      return /range it was sent for|no rows|Corruption|Not an SST|not an exported data file|two versions/i.test(message)
        ? new KeyVaError('INVALID_ARGUMENT', `SST snapshot refused: ${message}`)
        : e;
    };
    // Checked before anything changes: a file refused leaves the range as it was. Then the
    // latest rows, derived from the data file next to it.
    const dumper = this.#dumperThread();
    const data = files.find((f) => f.kind === 'data');
    const latest = data === undefined ? undefined : { path: `${data.path}.latest`, gte: latestBoundOf(lo), lt: latestBoundOf(hi) };
    try {
      await dumper.ingestSst(bounded, true);
      if (data !== undefined && latest !== undefined) {
        await rm(latest.path, { force: true });
        await dumper.deriveLatest(data.path, latest.path);
        bounded.push(latest);
      }
    } catch (e) {
      if (latest !== undefined) await rm(latest.path, { force: true });
      throw refused(e);
    }
    await this.#barrier(async () => {
      // A range that already holds rows is deleted first. An empty one (a new replica) is not:
      // a range tombstone in the memtable would make the ingestion flush it, with writes stopped.
      const empty = reader.range(lo, hi, 1).length === 0 && reader.range(latestBoundOf(lo), latestBoundOf(hi), 1).length === 0;
      if (!empty) await this.#deleteHashRange(startHash, endHash);
      this.#checkOpen();
      await dumper.ingestSst(bounded, false).catch(async (e: unknown) => {
        if (latest !== undefined) await rm(latest.path, { force: true });
        throw refused(e);
      });
    });
  }

  async deleteRange(startHash: bigint, endHash: bigint): Promise<void> {
    this.#checkOpen();
    if (endHash <= startHash) return;
    hashRangeBounds(startHash, endHash); // validates
    await this.#barrier(() => this.#deleteHashRange(startHash, endHash));
  }

  /** The writer's range delete (see `rocksdb-writer.ts`); counts the bytes of SST files it dropped whole. */
  async #deleteHashRange(startHash: bigint, endHash: bigint): Promise<void> {
    this.#droppedFileBytes += await this.#request<number>({ t: 'deleteRange', id: this.#newId(), startHash, endHash }, undefined);
  }

  async gc(watermarkTs: Timestamp, nowMs: number): Promise<number> {
    this.#checkOpen();
    if (typeof watermarkTs !== 'bigint' || watermarkTs < 0n || watermarkTs > MAX_TS) {
      throw new KeyVaError('INVALID_ARGUMENT', `watermark out of range: ${watermarkTs}`, { field: 'watermarkTs' });
    }
    // Raise the watermark first: from now on reads below it fail, whatever GC has removed yet.
    if (watermarkTs > this.#gcWatermark) this.#gcWatermark = watermarkTs;
    return this.#barrier(() => this.#request<number>({ t: 'gc', id: this.#newId(), watermark: this.#gcWatermark, nowMs }, undefined));
  }

  async getRaw(key: Buffer): Promise<Buffer | undefined> {
    const reader = this.#checkOpen();
    checkRawKey(key, false);
    return reader.get(key);
  }

  async scanRaw(gte: Buffer, lt: Buffer, limit: number): Promise<{ key: Buffer; value: Buffer }[]> {
    const reader = this.#checkOpen();
    checkRawRange(gte, lt);
    return reader.range(gte, lt, limit);
  }

  stats(): EngineStats {
    const db = this.#db;
    if (db === undefined || this.#state !== 'open') {
      return { sizeBytes: 0, keysEstimate: 0, blockCacheHitRate: Number.NaN, blockCacheHits: Number.NaN, blockCacheMisses: Number.NaN };
    }
    const prop = (name: string): number => {
      const v = Number(storageCall('getProperty', () => db.getProperty(name)));
      return Number.isFinite(v) ? v : 0;
    };
    return {
      sizeBytes: prop(PROPERTY.sstBytes) + prop(PROPERTY.memtableBytes),
      keysEstimate: prop(PROPERTY.keys),
      // The binding opens RocksDB without a Statistics object, so block-cache hit/miss tickers
      // are not available (ADR 0004); usage/capacity are, via blockCacheUsage().
      blockCacheHitRate: Number.NaN,
      blockCacheHits: Number.NaN,
      blockCacheMisses: Number.NaN,
      ...this.#readCacheStats(),
      compactionPendingBytes: prop(PROPERTY.compactionPendingBytes),
      compactionsRunning: prop(PROPERTY.compactionsRunning),
      flushesRunning: prop(PROPERTY.flushesRunning),
      level0Files: prop(PROPERTY.level0Files),
      writeDelayedRate: prop(PROPERTY.writeDelayedRate),
      writeStopped: prop(PROPERTY.writeStopped),
      rangeDroppedFileBytes: this.#droppedFileBytes,
    };
  }

  #readCacheStats(): Pick<EngineStats, 'readCacheHits' | 'readCacheMisses' | 'readCacheBytes'> {
    const s = this.#cache?.stats();
    return s === undefined ? {} : { readCacheHits: s.hits, readCacheMisses: s.misses, readCacheBytes: s.bytes };
  }

  /**
   * Diagnostics and tests: where the latest space disagrees with the version history (empty when
   * consistent); `compareReads`: also reads served from either (see `latest-space.ts`). Reads
   * both key spaces whole on this thread, so not for a serving node.
   */
  latestSpaceMismatches(compareReads = false): string[] {
    return latestSpaceMismatches(this.#checkOpen(), compareReads);
  }

  /** Block cache bytes in use and capacity (RocksDB properties). */
  blockCacheUsage(): { usageBytes: number; capacityBytes: number } {
    const db = this.#db;
    if (db === undefined || this.#state !== 'open') return { usageBytes: 0, capacityBytes: 0 };
    return {
      usageBytes: Number(db.getProperty('rocksdb.block-cache-usage')) || 0,
      capacityBytes: Number(db.getProperty('rocksdb.block-cache-capacity')) || 0,
    };
  }

  /** Drains in-flight writes, stops the writer thread, closes the database. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'closed';
      return;
    }
    const wasUsable = this.#state === 'open';
    this.#state = 'closing';
    // The dump thread reads the database: it stops before the database closes.
    await this.#dumper?.close();
    const worker = this.#worker;
    if (worker !== undefined) {
      if (wasUsable && this.#failure === undefined) {
        // 'stop' is queued behind every request already sent, so its answer means all are done.
        await this.#request<undefined>({ t: 'stop', id: this.#newId() }, undefined).catch(noop);
      }
      await Promise.all([...this.#pending.values()].map((p) => p.done));
      await worker.terminate().catch(noop);
      await this.#workerExited;
    }
    try {
      await this.#db?.close();
    } catch (e) {
      throw new KeyVaError('STORAGE_ERROR', `rocksdb close failed: ${(e as Error).message}`, {}, { cause: e });
    } finally {
      this.#state = 'closed';
      this.#reader = undefined;
      this.#pointReader = undefined;
      this.#cache?.clear();
    }
  }
}

function noop(): void {}
