/**
 * The writer core that runs on the RocksDB writer thread (`rocksdb-writer-worker.ts` is only the
 * thread glue). It owns every write to the database:
 *
 * - Group commit: the write batches queued while the previous RocksDB write (and its fsync) ran
 *   form the next group (at most `groupBatchesMax` batches / `groupBytesMax` bytes). Their
 *   conditions are evaluated serially, in submission order, against the database plus an overlay
 *   of the group's earlier, not-yet-written batches. All successful batches go into ONE RocksDB
 *   write batch, written with `sync: true` when any batch of the group asked for sync. Then every
 *   batch is answered, in order. A batch whose condition fails contributes nothing.
 * - deleteRange: a RocksDB range delete, followed by a synced marker write (fsyncs the WAL).
 * - gc: chunks of `gcChunkRowsMax` rows; between chunks, queued writes run.
 *
 * Everything here is synchronous except `deleteRange` (the binding's `clear` returns a promise).
 */
import { KeyVaError } from '@keyva/proto/errors';
import { decodeBatch } from './batch-wire.ts';
import { GcPlanner } from './gc-planner.ts';
import { dataSpaceBounds, ENGINE_META_PREFIX, encodeTimestamp, GC_WATERMARK_KEY } from './key-codec.ts';
import type { KvOp } from './ordered-kv.ts';
import type { RocksLevelDb } from './rocksdb-binding.ts';
import { RocksReader, storageCall } from './rocksdb-reader.ts';
import { type GroupLimits, toBuffer, toWireError, type WriterAnswer, type WriterEvent, type WriterRequest } from './rocksdb-writer-protocol.ts';
import type { Timestamp, WriteResult } from './types.ts';
import { WriteOverlay } from './write-overlay.ts';
import { planBatch } from './write-planner.ts';

/** Engine meta key written (synced) after a range delete, so the WAL holding it is fsynced. */
const DELETE_RANGE_MARKER_KEY = Buffer.concat([ENGINE_META_PREFIX, Buffer.from('last-delete-range')]);
/** Bytes one GC chunk reads at most. */
const GC_CHUNK_BYTES_MAX = 8 << 20;

interface GcJob {
  readonly t: 'gcStep';
  readonly id: number;
  readonly watermark: Timestamp;
  readonly planner: GcPlanner;
  cursor: Buffer;
  first: boolean;
}

type Work = WriterRequest | GcJob;

export class RocksWriter {
  readonly #db: RocksLevelDb;
  readonly #limits: GroupLimits;
  readonly #emit: (ev: WriterEvent) => void;
  readonly #pull: () => WriterRequest | undefined;
  readonly #reader: RocksReader;
  readonly #gcReader: RocksReader;
  readonly #queue: Work[] = [];
  #running = false;
  #stopped = false;

  /**
   * @param pull returns a request that arrived meanwhile (non-blocking), or undefined.
   * @param emit sends an event to the engine.
   */
  constructor(db: RocksLevelDb, limits: GroupLimits, emit: (ev: WriterEvent) => void, pull: () => WriterRequest | undefined) {
    this.#db = db;
    this.#limits = limits;
    this.#emit = emit;
    this.#pull = pull;
    this.#reader = new RocksReader(db);
    this.#gcReader = new RocksReader(db, { fillCache: false, bytesMax: GC_CHUNK_BYTES_MAX });
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Queues a request and processes the queue unless already processing. */
  submit(req: WriterRequest): Promise<void> {
    this.#queue.push(req);
    return this.#pump();
  }

  #drain(): void {
    for (let r = this.#pull(); r !== undefined; r = this.#pull()) this.#queue.push(r);
  }

  async #pump(): Promise<void> {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    try {
      for (;;) {
        this.#drain();
        const head = this.#queue[0];
        if (head === undefined) return;
        switch (head.t) {
          case 'write':
            this.#writeGroup(this.#takeGroup());
            break;
          case 'deleteRange':
            this.#queue.shift();
            await this.#deleteRange(head.id, toBuffer(head.lo), toBuffer(head.hi));
            break;
          case 'gc': {
            this.#queue.shift();
            const job: GcJob = {
              t: 'gcStep',
              id: head.id,
              watermark: head.watermark,
              planner: new GcPlanner(head.watermark, head.nowMs),
              cursor: dataSpaceBounds().lo,
              first: true,
            };
            this.#gcStep(job);
            break;
          }
          case 'gcStep':
            this.#queue.shift();
            this.#gcStep(head);
            break;
          case 'stop':
            this.#queue.shift();
            if (this.#queue.length > 0) {
              // Unfinished GC jobs re-queued themselves behind 'stop': finish them first.
              this.#queue.push(head);
              break;
            }
            this.#stopped = true;
            this.#answer([{ id: head.id, ok: true, result: undefined }], 0, false);
            return;
        }
      }
    } finally {
      this.#running = false;
    }
  }

  #answer(answers: WriterAnswer[], groupBatches: number, wrote: boolean): void {
    this.#emit({ t: 'answers', answers, groupBatches, wrote });
  }

  /** Takes consecutive write requests from the head of the queue, within the group limits. */
  #takeGroup(): Extract<WriterRequest, { t: 'write' }>[] {
    const group: Extract<WriterRequest, { t: 'write' }>[] = [];
    let bytes = 0;
    for (;;) {
      const head = this.#queue[0];
      if (head?.t !== 'write') break;
      if (group.length > 0 && (group.length >= this.#limits.groupBatchesMax || bytes + head.batch.byteLength > this.#limits.groupBytesMax)) break;
      this.#queue.shift();
      group.push(head);
      bytes += head.batch.byteLength;
    }
    return group;
  }

  #writeGroup(group: Extract<WriterRequest, { t: 'write' }>[]): void {
    const overlay = new WriteOverlay(this.#reader);
    const answers: WriterAnswer[] = [];
    const ops: KvOp[] = [];
    let sync = false;
    for (const req of group) {
      try {
        const batch = decodeBatch(req.batch);
        const plan = planBatch(overlay, batch);
        let result: WriteResult;
        if (plan.ok) {
          overlay.apply(plan.ops);
          ops.push(...plan.ops);
          sync ||= batch.sync;
          result = { ok: true, existed: plan.existed };
        } else {
          result = { ok: false, failedIndex: plan.failedIndex, currentVersion: plan.currentVersion };
        }
        answers.push({ id: req.id, ok: true, result });
      } catch (e) {
        answers.push({ id: req.id, ok: false, error: toWireError(e) });
      }
    }
    if (ops.length > 0) {
      try {
        this.#writeOps(ops, sync);
      } catch (e) {
        // Nothing of the group is known to be written: fail every batch of it.
        const error = toWireError(e);
        this.#answer(
          answers.map((a) => ({ id: a.id, ok: false, error })),
          group.length,
          true,
        );
        return;
      }
    }
    this.#answer(answers, group.length, ops.length > 0);
  }

  #writeOps(ops: readonly KvOp[], sync: boolean): void {
    storageCall('write', () => {
      const batch = this.#db.batch();
      try {
        for (const op of ops) {
          if (op.type === 'put') batch.put(op.key, op.value);
          else batch.del(op.key);
        }
        batch._writeSync({ sync });
      } finally {
        batch._closeSync();
      }
    });
  }

  async #deleteRange(id: number, lo: Buffer, hi: Buffer): Promise<void> {
    try {
      if (Buffer.compare(lo, hi) < 0) {
        try {
          await this.#db.clear({ gte: lo, lt: hi });
        } catch (e) {
          throw new KeyVaError('STORAGE_ERROR', `rocksdb deleteRange failed: ${(e as Error).message}`, {}, { cause: e });
        }
        this.#writeOps([{ type: 'put', key: DELETE_RANGE_MARKER_KEY, value: Buffer.concat([lo, hi]) }], true);
      }
      this.#answer([{ id, ok: true, result: undefined }], 0, false);
    } catch (e) {
      this.#answer([{ id, ok: false, error: toWireError(e) }], 0, false);
    }
  }

  /** One GC chunk; re-queues the job behind any queued writes until the data space is done. */
  #gcStep(job: GcJob): void {
    try {
      const { hi } = dataSpaceBounds();
      const rows = this.#gcReader.range(job.cursor, hi, this.#limits.gcChunkRowsMax);
      const ops: KvOp[] = [];
      // The watermark goes into the same atomic write as the first deletes: deletes never survive
      // a crash without it, and later chunks are later in the WAL.
      if (job.first) ops.push({ type: 'put', key: GC_WATERMARK_KEY, value: encodeTimestamp(job.watermark) });
      job.first = false;
      for (const row of rows) for (const key of job.planner.feed(row.key, row.value)) ops.push({ type: 'del', key });
      const done = rows.length === 0;
      if (done) for (const key of job.planner.finish()) ops.push({ type: 'del', key });
      else job.cursor = Buffer.concat([rows[rows.length - 1]!.key, Buffer.alloc(1)]);
      if (ops.length > 0 || done) this.#writeOps(ops.length > 0 ? ops : [{ type: 'put', key: GC_WATERMARK_KEY, value: encodeTimestamp(job.watermark) }], done);
      if (done) this.#answer([{ id: job.id, ok: true, result: job.planner.removed }], 0, false);
      else this.#queue.push(job);
    } catch (e) {
      this.#answer([{ id: job.id, ok: false, error: toWireError(e) }], 0, false);
    }
  }
}
