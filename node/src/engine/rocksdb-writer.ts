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
 * - deleteRange: a pending-range marker, RocksDB range deletes of the latest (`l`) and data
 *   (`d`) ranges, then a synced write removing the marker (fsyncs the WAL). The marker makes the
 *   two range deletes (separate writes in this binding) all-or-nothing across a crash: `prepare`
 *   finishes a range delete it finds pending. After the synced write, the whole SST files inside
 *   both ranges are dropped without a compaction (`rocksdb-file-drop.ts`, ADR 0017); the answer
 *   is their bytes.
 * - load (bulk-load.ts): the rows' `d` and `l` entries and raw puts, unplanned, appended to a
 *   group commit as its last member (one load per group; synced only if a batch of the group
 *   asked for it). Its crash safety is the caller's (a snapshot install is redone from its
 *   staging until its applied state is written, later in the WAL).
 * - gc: chunks of `gcChunkRowsMax` rows; between chunks, queued writes run. A chunk that removes
 *   a key's newest version re-derives its latest entry in the same write.
 * - prepare (once, before the engine is ready): finishes a pending range delete, and builds the
 *   latest space from the history for a data directory written before it existed.
 *
 * Everything here is synchronous except range deletes (the binding's `clear` returns a promise).
 * With KeyVa's build of the binding a group commit is ONE call into it (`rocksdb-packed-write.ts`).
 */
import { KeyVaError } from '@keyva/proto/errors';
import { decodeBatch } from './batch-wire.ts';
import { decodeLoad, planLoad } from './bulk-load.ts';
import { GcPlanner } from './gc-planner.ts';
import {
  dataSpaceBounds,
  decodeHashRange,
  encodeHashRange,
  encodeTimestamp,
  GC_WATERMARK_KEY,
  hashRangeBounds,
  LAYOUT_KEY,
  LAYOUT_VERSION,
  latestHashRangeBounds,
  latestSpaceBounds,
  PENDING_DELETE_RANGE_KEY,
} from './key-codec.ts';
import { LatestRebuilder, latestRepairOp } from './latest-space.ts';
import type { KvOp, OrderedKvReader } from './ordered-kv.ts';
import { PrefetchedReader } from './prefetched-reader.ts';
import type { RocksLevelDb } from './rocksdb-binding.ts';
import { type DropFilesInRanges, fileDropper } from './rocksdb-file-drop.ts';
import { type PackedWrite, packedWriter } from './rocksdb-packed-write.ts';
import { RocksReader, storageCall } from './rocksdb-reader.ts';
import { type GroupLimits, toWireError, type WireError, type WriterAnswer, type WriterEvent, type WriterRequest } from './rocksdb-writer-protocol.ts';
import type { Timestamp, WriteBatch, WriteResult } from './types.ts';
import { WriteOverlay } from './write-overlay.ts';
import { planBatch, plannedLookups, plansRead } from './write-planner.ts';
import { packAnswers } from './writer-wire.ts';

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
  readonly #dropFiles: DropFilesInRanges | undefined;
  readonly #limits: GroupLimits;
  readonly #emit: (ev: WriterEvent) => void;
  readonly #pull: () => WriterRequest | undefined;
  readonly #reader: RocksReader;
  readonly #gcReader: RocksReader;
  /** One call per RocksDB write with KeyVa's build of the binding; undefined with the published one. */
  readonly #packed: PackedWrite | undefined;
  readonly #queue: Work[] = [];
  #running = false;
  #stopped = false;

  /**
   * @param pull returns a request that arrived meanwhile (non-blocking), or undefined.
   * @param emit sends an event to the engine.
   * @param packedWrites use the binding's packed write when it has one.
   */
  constructor(db: RocksLevelDb, limits: GroupLimits, emit: (ev: WriterEvent) => void, pull: () => WriterRequest | undefined, packedWrites = true) {
    this.#db = db;
    this.#limits = limits;
    this.#emit = emit;
    this.#pull = pull;
    this.#reader = new RocksReader(db);
    this.#gcReader = new RocksReader(db, { fillCache: false, bytesMax: GC_CHUNK_BYTES_MAX });
    this.#packed = packedWrites ? packedWriter(db.handle) : undefined;
    this.#dropFiles = fileDropper(db.handle);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Queues requests (in order) and processes the queue unless already processing. */
  submit(...reqs: WriterRequest[]): Promise<void> {
    for (const r of reqs) this.#queue.push(r);
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
          case 'load':
            this.#writeGroup(this.#takeGroup());
            break;
          case 'deleteRange':
            this.#queue.shift();
            await this.#deleteRange(head.id, head.startHash, head.endHash);
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
    this.#emit(packAnswers({ answers, groupBatches, wrote }) ?? { t: 'answers', answers, groupBatches, wrote });
  }

  /**
   * Takes consecutive write requests from the head of the queue, within the group limits; a bulk
   * load joins as the group's LAST member (at most one per group: it rides on the group's write
   * and fsync instead of costing one of its own, and the writes behind it wait for one load at
   * most; nothing after it in the group needs to see it through the overlay).
   */
  #takeGroup(): Extract<WriterRequest, { t: 'write' | 'load' }>[] {
    const group: Extract<WriterRequest, { t: 'write' | 'load' }>[] = [];
    let bytes = 0;
    for (;;) {
      const head = this.#queue[0];
      if (head?.t !== 'write' && head?.t !== 'load') break;
      const size = head.t === 'write' ? head.batch.byteLength : head.load.byteLength;
      if (group.length > 0 && (group.length >= this.#limits.groupBatchesMax || bytes + size > this.#limits.groupBytesMax)) break;
      this.#queue.shift();
      group.push(head);
      bytes += size;
      if (head.t === 'load') break;
    }
    return group;
  }

  #writeGroup(group: Extract<WriterRequest, { t: 'write' | 'load' }>[]): void {
    // Every batch is decoded first: the latest entries they plan against are read in ONE
    // MultiGet (a lookup per mutation, each its own call into the binding, cost several times more).
    const decoded: (WriteBatch | WireError | undefined)[] = [];
    const lookups: Buffer[] = [];
    for (const req of group) {
      if (req.t === 'load') {
        decoded.push(undefined);
        continue;
      }
      try {
        const batch = decodeBatch(req.batch);
        plannedLookups(batch, lookups);
        decoded.push(batch);
      } catch (e) {
        decoded.push(toWireError(e));
      }
    }
    let base: OrderedKvReader;
    try {
      base = lookups.length === 0 ? this.#reader : new PrefetchedReader(this.#reader, lookups);
    } catch (e) {
      const error = toWireError(e);
      this.#answer(
        group.map((r) => ({ id: r.id, ok: false, error })),
        group.filter((r) => r.t === 'write').length,
        false,
      );
      return;
    }
    // Only what later plans read (data and latest rows) goes into the overlay: raw writes are blind.
    const overlay = new WriteOverlay(base);
    const answers: WriterAnswer[] = [];
    const ops: KvOp[] = [];
    let sync = false;
    let batches = 0;
    for (const [i, req] of group.entries()) {
      if (req.t === 'load') {
        // Last in its group (see #takeGroup): its ops go after every batch's, unplanned.
        try {
          for (const op of planLoad(decodeLoad(req.load))) ops.push(op);
          answers.push({ id: req.id, ok: true, result: undefined });
        } catch (e) {
          answers.push({ id: req.id, ok: false, error: toWireError(e) });
        }
        continue;
      }
      batches++;
      const batch = decoded[i] as WriteBatch | WireError;
      if (!('mutations' in batch)) {
        answers.push({ id: req.id, ok: false, error: batch });
        continue;
      }
      try {
        const plan = planBatch(overlay, batch);
        let result: WriteResult;
        if (plan.ok) {
          overlay.apply(plan.ops.filter(plansRead));
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
          batches,
          true,
        );
        return;
      }
    }
    this.#answer(answers, batches, ops.length > 0);
  }

  #writeOps(ops: readonly KvOp[], sync: boolean): void {
    const packed = this.#packed;
    if (packed !== undefined) {
      storageCall('write', () => packed(ops, sync));
      return;
    }
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

  /**
   * Run once before the engine serves: finishes a range delete a crash interrupted, then makes
   * sure the latest space exists (building it from `d` for a directory of layout 1).
   */
  async prepare(): Promise<void> {
    const pending = this.#reader.get(PENDING_DELETE_RANGE_KEY);
    if (pending !== undefined) {
      const { startHash, endHash } = decodeHashRange(pending);
      await this.#clearHashRange(startHash, endHash);
    }
    const layout = this.#reader.get(LAYOUT_KEY);
    if (layout === undefined) {
      await this.#buildLatestSpace();
    } else if (layout.length !== 4 || layout.readUInt32BE(0) !== LAYOUT_VERSION) {
      throw new KeyVaError('STORAGE_ERROR', `unsupported storage layout ${layout.toString('hex')} (this KeyVa reads layout ${LAYOUT_VERSION})`);
    }
  }

  /**
   * Builds the latest space from the `d` history, then records the layout. No fsync needed: the
   * WAL is replayed in order, so the layout key never survives a crash without the entries
   * written before it, and losing it only means building again at the next open.
   */
  async #buildLatestSpace(): Promise<void> {
    const l = latestSpaceBounds();
    // A build interrupted by a crash may have left entries; start clean (but do not leave a
    // range tombstone over an empty space: every later point lookup would have to check it).
    if (this.#gcReader.range(l.lo, l.hi, 1).length > 0) await this.#clear(l.lo, l.hi);
    const rebuilder = new LatestRebuilder();
    const { lo, hi } = dataSpaceBounds();
    let cursor = lo;
    for (;;) {
      const rows = this.#gcReader.range(cursor, hi, this.#limits.gcChunkRowsMax);
      if (rows.length === 0) break;
      const ops: KvOp[] = [];
      for (const row of rows) {
        const op = rebuilder.feed(row.key, row.value);
        if (op !== undefined) ops.push(op);
      }
      if (ops.length > 0) this.#writeOps(ops, false);
      cursor = Buffer.concat([rows[rows.length - 1]!.key, Buffer.alloc(1)]);
    }
    const version = Buffer.alloc(4);
    version.writeUInt32BE(LAYOUT_VERSION, 0);
    this.#writeOps([{ type: 'put', key: LAYOUT_KEY, value: version }], false);
  }

  async #clear(gte: Buffer, lt: Buffer): Promise<void> {
    try {
      await this.#db.clear({ gte, lt });
    } catch (e) {
      throw new KeyVaError('STORAGE_ERROR', `rocksdb deleteRange failed: ${(e as Error).message}`, {}, { cause: e });
    }
  }

  /**
   * Removes the hash range from the latest and data spaces. The marker goes into the WAL before
   * both range deletes and is removed by the final synced write; found at open, the range
   * delete is redone (it is idempotent).
   */
  async #clearHashRange(startHash: bigint, endHash: bigint): Promise<number> {
    this.#writeOps([{ type: 'put', key: PENDING_DELETE_RANGE_KEY, value: encodeHashRange(startHash, endHash) }], false);
    const l = latestHashRangeBounds(startHash, endHash);
    await this.#clear(l.lo, l.hi);
    const d = hashRangeBounds(startHash, endHash);
    await this.#clear(d.lo, d.hi);
    this.#writeOps([{ type: 'del', key: PENDING_DELETE_RANGE_KEY }], true);
    // Only now, with both range deletes durable (a crash before this leaves the files to compaction).
    return (
      this.#dropFiles?.([
        { gte: l.lo, lt: l.hi },
        { gte: d.lo, lt: d.hi },
      ]).bytes ?? 0
    );
  }

  async #deleteRange(id: number, startHash: bigint, endHash: bigint): Promise<void> {
    try {
      const droppedBytes = endHash > startHash ? await this.#clearHashRange(startHash, endHash) : 0;
      this.#answer([{ id, ok: true, result: droppedBytes }], 0, false);
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
      const rechecks = job.planner.takeLatestRechecks();
      if (rechecks.length > 0) {
        // Re-derive those keys' latest entries as they will be after this chunk's deletes (and
        // after any write that ran between chunks: the database is read now).
        const after = new WriteOverlay(this.#gcReader);
        after.apply(ops);
        for (const prefix of rechecks) {
          const op = latestRepairOp(after, prefix);
          if (op !== undefined) ops.push(op);
        }
      }
      if (ops.length > 0 || done) this.#writeOps(ops.length > 0 ? ops : [{ type: 'put', key: GC_WATERMARK_KEY, value: encodeTimestamp(job.watermark) }], done);
      if (done) this.#answer([{ id: job.id, ok: true, result: job.planner.removed }], 0, false);
      else this.#queue.push(job);
    } catch (e) {
      this.#answer([{ id: job.id, ok: false, error: toWireError(e) }], 0, false);
    }
  }
}
