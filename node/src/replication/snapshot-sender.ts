/**
 * The leader's side of a streamed snapshot (ADR 0008 §9). When the Raft core of a data group
 * sends a snapshot (`MsgSnap`, whose data is only a descriptor: `partition-snapshot.ts`), the
 * transport hands it here instead of to the per-peer Raft stream. One `SendSnapshot` gRPC call
 * per transfer, on a channel of its own (heartbeats and appends keep flowing on the Raft stream):
 * a header frame with the Raft message, then the partition's rows read from the engine at the
 * snapshot's MVCC timestamp (the leader keeps applying meanwhile; RocksDB reads them on its dump
 * thread, `StorageEngine.dumpRows`, other engines page by page here), in chunks of at most
 * `chunkBytes`, paced by the node-wide `RateLimiter` and by gRPC flow control (a write that
 * returns false waits for 'drain'), then a `done` frame with the totals. The receiver answers
 * once every row is staged durably and the message was stepped into its group.
 *
 * The outcome goes back to the core (`reportSnapshot`): on failure the peer's progress leaves
 * the snapshot state and the core sends a new snapshot on a later heartbeat response; on success
 * it waits for the follower's append response. One transfer per (group, peer) at a time: a
 * snapshot the core sends while one is in flight is dropped (the running one reports).
 */
import type * as grpc from '@grpc/grpc-js';
import type { RaftClient, SnapshotAckOut, SnapshotFrame } from '@keyva/proto';
import type { DumpedChunk, ScanItem, StorageEngine, Timestamp } from '../engine/types.ts';
import { type Message, MessageType } from '../raft/messages.ts';
import type { ReplicaId } from '../raft/types.ts';
import { unwrapSnapshot } from '../split/split-command.ts';
import { decodeSnapshotDescriptor, encodeRows, type HashRange, isStreamedSnapshot, rowBytes, scanPartition, snapshotReadTs } from './partition-snapshot.ts';
import { encodeMessage } from './raft-codec.ts';
import type { GroupId } from './raft-keys.ts';
import type { RateLimiter } from './snapshot-rate-limiter.ts';
import type { SnapshotStaging } from './snapshot-staging.ts';

/** How long the receiver may take to answer after the last frame (it stages and syncs first). */
export const SNAPSHOT_ANSWER_TIMEOUT_MS = 60_000;

/** Row bytes per streamed chunk, at most (a single larger row goes alone). */
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1 << 20;

/** What the snapshot streams need from the replication runtime (`MultiRaft` provides it). */
export interface SnapshotHost {
  readonly engine: StorageEngine;
  /** Where received snapshots are staged until installed. */
  readonly staging: SnapshotStaging;
  /** The snapshot of `group` sent to replica `to` arrived (ok) or failed: tell the core. */
  reportSnapshot(group: GroupId, to: ReplicaId, ok: boolean): void;
  /** The data range of a hosted data group; undefined (or empty) if not hosted here. */
  rangeOf(group: GroupId): { readonly start: bigint; readonly end: bigint } | undefined;
  /**
   * Why the group cannot take a snapshot at `index` now (it is installing one, or already has
   * that index), or undefined if it can.
   */
  refusesSnapshot(group: GroupId, index: number): string | undefined;
}

/** A Raft message whose snapshot's rows are streamed (a data group's descriptor). */
export function isStreamedSnapshotMessage(m: Message): boolean {
  if (m.type !== MessageType.Snapshot || m.snapshot === undefined) return false;
  try {
    return isStreamedSnapshot(unwrapSnapshot(m.snapshot.data).inner);
  } catch {
    return false;
  }
}

/**
 * The encoded chunks of a snapshot's rows (at most `chunkBytes` row bytes each, unless one row
 * alone is larger) and their row counts: read by the engine's dump thread when it has one
 * (`StorageEngine.dumpRows`), else by `scanPartition` page by page on this thread.
 */
export async function* snapshotChunks(engine: StorageEngine, range: HashRange, readTs: Timestamp, chunkBytes: number): AsyncGenerator<DumpedChunk> {
  if (engine.dumpRows !== undefined) {
    yield* engine.dumpRows(range.start, range.end, readTs, chunkBytes);
    return;
  }
  let chunk: ScanItem[] = [];
  let size = 0;
  for await (const page of scanPartition(engine, range, readTs)) {
    for (const r of page) {
      if (size > 0 && size + rowBytes(r) > chunkBytes) {
        yield { data: encodeRows(chunk), rows: chunk.length };
        chunk = [];
        size = 0;
      }
      chunk.push(r);
      size += rowBytes(r);
    }
  }
  if (chunk.length > 0) yield { data: encodeRows(chunk), rows: chunk.length };
}

export interface SnapshotSendStats {
  started: number;
  succeeded: number;
  failed: number;
  /** Snapshots the core sent while a transfer to the same peer and group was running. */
  skippedBusy: number;
  bytesSent: number;
  rowsSent: number;
}

/** A transfer in progress (progress metrics). */
export interface SnapshotTransfer {
  readonly group: GroupId;
  readonly to: string;
  readonly index: number;
  readonly startedMs: number;
  bytes: number;
  rows: number;
}

export interface SnapshotSenderOptions {
  readonly self: string;
  readonly host: SnapshotHost;
  /** A client for the peer's Raft service on a channel of its own; undefined when the address is unknown. */
  readonly clientOf: (nodeId: string) => RaftClient | undefined;
  readonly limiter: RateLimiter;
  readonly chunkBytes?: number;
}

export class SnapshotSender {
  readonly stats: SnapshotSendStats = { started: 0, succeeded: 0, failed: 0, skippedBusy: 0, bytesSent: 0, rowsSent: 0 };
  private readonly o: SnapshotSenderOptions;
  private readonly running = new Map<string, { transfer: SnapshotTransfer; call: grpc.ClientWritableStream<SnapshotFrame> | undefined }>();
  private closed = false;

  constructor(o: SnapshotSenderOptions) {
    this.o = o;
  }

  /** Transfers in progress, with the bytes and rows sent so far. */
  transfers(): SnapshotTransfer[] {
    return [...this.running.values()].map((r) => ({ ...r.transfer }));
  }

  /** Starts streaming the snapshot message `m` of `group` to node `to` (see the file comment). */
  send(to: string, group: GroupId, m: Message): void {
    if (this.closed) return;
    const key = `${group}/${to}`;
    if (this.running.has(key)) {
      this.stats.skippedBusy++;
      return;
    }
    const index = m.snapshot?.metadata.index ?? 0;
    const entry = { transfer: { group, to, index, startedMs: Date.now(), bytes: 0, rows: 0 }, call: undefined };
    this.running.set(key, entry);
    this.stats.started++;
    this.run(to, group, m, entry).then(
      () => {
        this.running.delete(key);
        this.stats.succeeded++;
        this.o.host.reportSnapshot(group, m.to, true);
      },
      () => {
        this.running.delete(key);
        this.stats.failed++;
        if (!this.closed) this.o.host.reportSnapshot(group, m.to, false);
      },
    );
  }

  /** Cancels every transfer (they report nothing more). */
  close(): void {
    this.closed = true;
    for (const r of this.running.values()) r.call?.cancel();
  }

  private async run(
    to: string,
    group: GroupId,
    m: Message,
    entry: { transfer: SnapshotTransfer; call: grpc.ClientWritableStream<SnapshotFrame> | undefined },
  ): Promise<void> {
    const snapshot = m.snapshot;
    if (snapshot === undefined) throw new Error('not a snapshot message');
    const desc = decodeSnapshotDescriptor(unwrapSnapshot(snapshot.data).inner);
    const client = this.o.clientOf(to);
    if (client === undefined) throw new Error(`no address for node ${to}`);
    const engine = this.o.host.engine;
    const readTs = snapshotReadTs(engine, desc.maxCommitTs);
    let failure: Error | undefined;
    const answered = new Promise<SnapshotAckOut>((resolve, reject) => {
      entry.call = client.sendSnapshot((err: grpc.ServiceError | null, ack?: SnapshotAckOut) => {
        if (err !== null || ack === undefined) {
          failure = err ?? new Error('no answer');
          reject(failure);
        } else resolve(ack);
      });
    });
    answered.catch(() => undefined); // awaited below; a failure also stops the writes
    const call = entry.call as unknown as grpc.ClientWritableStream<SnapshotFrame>;
    call.on('error', () => undefined); // the callback reports it
    const write = async (frame: SnapshotFrame): Promise<void> => {
      if (failure !== undefined) throw failure;
      if (this.closed) throw new Error('transport closed');
      if (!call.write(frame)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = (): void => {
            call.off('close', onClose);
            resolve();
          };
          const onClose = (): void => {
            call.off('drain', onDrain);
            reject(failure ?? new Error('snapshot stream closed'));
          };
          call.once('drain', onDrain);
          call.once('close', onClose);
        });
      }
    };
    const chunkBytes = this.o.chunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT;
    const chunks = snapshotChunks(engine, desc.range, readTs, chunkBytes);
    try {
      // The first chunk is read before the header goes out, so the receiver's side of the
      // transfer (the group's busy slot, its idle timer, its receiving-time metric) starts when
      // rows are ready: the dump thread's start and first read come before it. (The benchmarks'
      // stream rate is per receiving time, so it leaves that first read out; docs/benchmarks.md.)
      let next = await chunks.next();
      await write({ fromNode: this.o.self, toNode: to, group, message: encodeMessage(m) });
      let rows = 0;
      let bytes = 0;
      while (next.done !== true) {
        const { data, rows: count } = next.value;
        await this.o.limiter.take(data.length);
        await write({ rows: data });
        rows += count;
        bytes += data.length;
        entry.transfer.rows = rows;
        entry.transfer.bytes = bytes;
        this.stats.rowsSent += count;
        this.stats.bytesSent += data.length;
        next = await chunks.next();
      }
      await write({ done: true, totalRows: rows, totalBytes: bytes });
      call.end();
    } catch (e) {
      call.cancel();
      await chunks.return(undefined).catch(() => undefined); // cancels a dump in progress
      throw e;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        call.cancel();
        reject(new Error(`no answer within ${SNAPSHOT_ANSWER_TIMEOUT_MS} ms`));
      }, SNAPSHOT_ANSWER_TIMEOUT_MS);
    });
    try {
      await Promise.race([answered, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
