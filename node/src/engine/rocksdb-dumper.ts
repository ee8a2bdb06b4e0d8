/**
 * The main thread's side of the RocksDB dump thread (`rocksdb-dump-worker.ts`): starts it on
 * first use, runs dumps over it as async iterables of encoded chunks, and stops it (before the
 * engine closes the database). A dump keeps `DUMP_CHUNKS_AHEAD` chunks requested ahead of the
 * one being consumed, so the thread reads while the consumer sends; memory per dump is bounded
 * by that many chunks. Breaking off a dump (return/throw of its iterator) cancels it in the
 * thread. If the thread dies, dumps in progress fail with STORAGE_ERROR and the next dump starts
 * a new thread. The native SST calls (ADR 0013) go to the same thread, one request each.
 */
import { Worker } from 'node:worker_threads';
import { KeyVaError } from '@keyva/proto/errors';
import type { DumpEvent, DumpInit, DumpRequest } from './rocksdb-dump-protocol.ts';
import type { SstExportArgs, SstExportCounts, SstIngestFile } from './rocksdb-sst.ts';
import { fromWireError } from './rocksdb-writer-protocol.ts';
import type { DumpedChunk, Timestamp } from './types.ts';

/** Chunks a dump may have read ahead of its consumer. */
export const DUMP_CHUNKS_AHEAD = 2;

interface DumpState {
  readonly chunks: DumpedChunk[];
  ended: boolean;
  error: Error | undefined;
  wake: (() => void) | undefined;
}

interface Thread {
  readonly worker: Worker;
  readonly ready: Promise<void>;
}

export class RocksDumper {
  readonly #handle: bigint;
  readonly #nice: number;
  #thread: Thread | undefined;
  #nextId = 1;
  readonly #dumps = new Map<number, DumpState>();
  /** SST calls waiting for their answer. */
  readonly #calls = new Map<number, { resolve: (ev: DumpEvent) => void; reject: (e: Error) => void }>();
  #closed = false;

  constructor(handle: bigint, nice = 0) {
    this.#handle = handle;
    this.#nice = nice;
  }

  /** Starts the thread now, if not running (it otherwise starts on first use). */
  start(): void {
    if (!this.#closed) this.#start().ready.catch(() => undefined);
  }

  #start(): Thread {
    if (this.#thread !== undefined) return this.#thread;
    const init: DumpInit = { handle: this.#handle, nice: this.#nice };
    const worker = new Worker(new URL('./rocksdb-dump-worker.ts', import.meta.url), { workerData: init, name: 'keyva-rocksdb-dump' });
    const ready = new Promise<void>((resolve, reject) => {
      worker.once('message', (ev: DumpEvent) => {
        if (ev.t === 'ready') {
          worker.on('message', (m: DumpEvent) => this.#onEvent(m));
          resolve();
        } else if (ev.t === 'fatal') reject(fromWireError(ev.error));
        else reject(new KeyVaError('STORAGE_ERROR', `rocksdb dump thread sent ${ev.t} before it was ready`));
      });
    });
    ready.catch(() => undefined);
    const lost = (why: string): void => {
      if (this.#thread?.worker !== worker) return;
      this.#thread = undefined;
      this.#failAll(new KeyVaError('STORAGE_ERROR', `rocksdb dump thread ${why}`));
    };
    worker.on('error', (e) => lost(`crashed: ${e.message}`));
    worker.on('exit', (code) => lost(`exited (${code})`));
    this.#thread = { worker, ready };
    return this.#thread;
  }

  #failAll(e: Error): void {
    for (const d of this.#dumps.values()) {
      d.error ??= e;
      d.wake?.();
    }
    for (const c of this.#calls.values()) c.reject(e);
    this.#calls.clear();
  }

  #onEvent(ev: DumpEvent): void {
    if (ev.t === 'ready' || ev.t === 'fatal') {
      if (ev.t === 'fatal') this.#failAll(fromWireError(ev.error));
      return;
    }
    const call = this.#calls.get(ev.id);
    if (call !== undefined) {
      this.#calls.delete(ev.id);
      if (ev.t === 'error') call.reject(fromWireError(ev.error));
      else call.resolve(ev);
      return;
    }
    const d = this.#dumps.get(ev.id);
    if (d === undefined) return;
    if (ev.t === 'exported' || ev.t === 'ingested' || ev.t === 'derived') return;
    if (ev.t === 'chunk') d.chunks.push({ data: Buffer.from(ev.data, 0, ev.length), rows: ev.rows });
    else if (ev.t === 'end') d.ended = true;
    else d.error = fromWireError(ev.error);
    d.wake?.();
  }

  /**
   * The rows of data-space bounds `[lo, hi)` at `readTs`, as encoded chunks of at most
   * `chunkBytes` row bytes, with their row counts. The caller checks the GC watermark as chunks arrive.
   */
  async *dump(lo: Buffer, hi: Buffer, readTs: Timestamp, chunkBytes: number): AsyncGenerator<DumpedChunk> {
    if (this.#closed) throw new KeyVaError('STORAGE_ERROR', 'rocksdb engine is closing');
    const thread = this.#start();
    await thread.ready;
    const id = this.#nextId++;
    const d: DumpState = { chunks: [], ended: false, error: undefined, wake: undefined };
    this.#dumps.set(id, d);
    const post = (m: DumpRequest): void => thread.worker.postMessage(m);
    let finished = false;
    try {
      post({ t: 'start', id, lo, hi, readTs, chunkBytes, credit: DUMP_CHUNKS_AHEAD });
      for (;;) {
        while (d.chunks.length === 0 && !d.ended && d.error === undefined) {
          await new Promise<void>((resolve) => {
            d.wake = resolve;
          });
          d.wake = undefined;
        }
        if (d.error !== undefined) throw d.error;
        const chunk = d.chunks.shift();
        if (chunk === undefined) {
          finished = true;
          return;
        }
        if (!d.ended) post({ t: 'credit', id, n: 1 });
        yield chunk;
      }
    } finally {
      this.#dumps.delete(id);
      if (!finished && this.#thread?.worker === thread.worker) post({ t: 'cancel', id });
    }
  }

  async #call(req: (id: number) => DumpRequest): Promise<DumpEvent> {
    if (this.#closed) throw new KeyVaError('STORAGE_ERROR', 'rocksdb engine is closing');
    const thread = this.#start();
    await thread.ready;
    const id = this.#nextId++;
    const answer = new Promise<DumpEvent>((resolve, reject) => this.#calls.set(id, { resolve, reject }));
    thread.worker.postMessage(req(id));
    return answer;
  }

  /** Exports a partition as SST files on the thread (`SstNative.exportPartition`). */
  async exportSst(args: SstExportArgs): Promise<SstExportCounts> {
    const ev = await this.#call((id) => ({ t: 'exportSst', id, args }));
    if (ev.t !== 'exported') throw new KeyVaError('STORAGE_ERROR', `rocksdb dump thread answered ${ev.t} to an SST export`);
    return ev.counts;
  }

  /** Derives the latest rows of an exported data file on the thread (`SstNative.deriveLatest`). */
  async deriveLatest(dataPath: string, latestPath: string): Promise<number> {
    const ev = await this.#call((id) => ({ t: 'deriveLatest', id, dataPath, latestPath }));
    if (ev.t !== 'derived') throw new KeyVaError('STORAGE_ERROR', `rocksdb dump thread answered ${ev.t} to a latest-row derivation`);
    return ev.rows;
  }

  /** Checks (`checkOnly`: only) and ingests SST files on the thread (`SstNative.check` / `ingest`). */
  async ingestSst(files: readonly SstIngestFile[], checkOnly: boolean): Promise<void> {
    const ev = await this.#call((id) => ({ t: 'ingestSst', id, files, checkOnly }));
    if (ev.t !== 'ingested') throw new KeyVaError('STORAGE_ERROR', `rocksdb dump thread answered ${ev.t} to an SST ingestion`);
  }

  /** Stops the thread (waits until it has exited); dumps in progress fail. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const thread = this.#thread;
    this.#thread = undefined;
    this.#failAll(new KeyVaError('STORAGE_ERROR', 'rocksdb engine is closing'));
    if (thread !== undefined) await thread.worker.terminate().catch(() => undefined);
  }
}
