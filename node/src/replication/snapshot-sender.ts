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
 * As SST files (ADR 0013), when this node's engine can export them and the peer has not refused
 * them: the engine writes the partition at the same MVCC timestamp into up to two SST files
 * (data rows, exactly-once index entries; off this thread), and `SendSnapshotFiles` streams them
 * in pieces, with their sizes and CRC-32s in the `done` frame; the files are deleted once sent.
 * A peer that answers UNIMPLEMENTED (it cannot ingest them) is sent rows, at once and for
 * `ROWS_ONLY_MS`.
 *
 * The outcome goes back to the core (`reportSnapshot`): on failure the peer's progress leaves
 * the snapshot state and the core sends a new snapshot on a later heartbeat response; on success
 * it waits for the follower's append response. One transfer per (group, peer) at a time: a
 * snapshot the core sends while one is in flight is dropped (the running one reports). After a
 * failure the next transfer to that replica waits (`SnapshotRetryPacing`: 250 ms, doubling to
 * 8 s), counted from the failure: each attempt exports the whole partition before the receiver
 * can refuse it, and the core asks again on every heartbeat response. A failure is logged.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type * as grpc from '@grpc/grpc-js';
import type { RaftClient, SnapshotAckOut, SnapshotFrame } from '@keyva/proto';
import type { DumpedChunk, ScanItem, SstExport, StorageEngine, Timestamp } from '../engine/types.ts';
import type { Logger } from '../observability/logger.ts';
import { type Message, MessageType } from '../raft/messages.ts';
import type { ReplicaId } from '../raft/types.ts';
import { unwrapSnapshot } from '../split/split-command.ts';
import { decodeSnapshotDescriptor, encodeRows, type HashRange, isStreamedSnapshot, rowBytes, scanPartition, snapshotReadTs } from './partition-snapshot.ts';
import { encodeMessage } from './raft-codec.ts';
import type { GroupId } from './raft-keys.ts';
import { recordIndexSpace } from './request-record.ts';
import type { RateLimiter } from './snapshot-rate-limiter.ts';
import { SnapshotRetryPacing } from './snapshot-retry-pacing.ts';
import { connectSnapshotSocket, SocketConnectError } from './snapshot-socket-client.ts';
import { type SnapshotStaging, SST_KIND_CODE } from './snapshot-staging.ts';
import { answerWithin, drained, type TransferCall } from './transfer-call.ts';

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

/**
 * The bytes of file `path` in pieces of at most `pieceBytes`, opened and read synchronously: the
 * file was just written by the export, so from the page cache, well under a millisecond per MiB,
 * where an async open or read waits for a libuv pool thread the RocksDB binding keeps busy on a
 * loaded node (an open between two files waited 50-60 ms in the rebalancing benchmark).
 */
function* filePieces(path: string, pieceBytes: number): Generator<Buffer> {
  const fd = openSync(path, 'r');
  try {
    let at = 0;
    for (;;) {
      // A fresh buffer per piece: the transport may still hold the previous ones.
      const piece = Buffer.allocUnsafe(pieceBytes);
      const n = readSync(fd, piece, 0, pieceBytes, at);
      if (n === 0) return;
      at += n;
      yield piece.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

export interface SnapshotSendStats {
  started: number;
  succeeded: number;
  failed: number;
  /** Snapshots the core sent while a transfer to the same peer and group was running (or waiting). */
  skippedBusy: number;
  /** Transfers that waited before starting because the previous one to the same replica failed (`SnapshotRetryPacing`). */
  deferred: number;
  bytesSent: number;
  rowsSent: number;
  /** Transfers sent as SST files (ADR 0013). */
  filesSent: number;
  /** Of those, transfers begun over the peer's snapshot socket (ADR 0014). */
  overSocket: number;
}

/** A transfer in progress (progress metrics). */
export interface SnapshotTransfer {
  readonly group: GroupId;
  readonly to: string;
  readonly index: number;
  startedMs: number;
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
  /** Always stream rows, even when both ends could use SST files (tests, A/B benchmarks). */
  readonly rowsOnly?: boolean;
  /**
   * The host to reach peer `nodeId`'s snapshot socket on (that of its gRPC address), or undefined
   * to send it SST files over gRPC; without it, always over gRPC (ADR 0014).
   */
  readonly socketHostOf?: (nodeId: string) => string | undefined;
  /** Where failed transfers are reported (at most one line per retry of a replica, paced). */
  readonly log?: Logger;
}

/** How long a peer that answered UNIMPLEMENTED to SST files is sent rows before it is tried again. */
export const ROWS_ONLY_MS = 10 * 60_000;

/** How long asking a peer for its snapshot socket, or connecting to it, may take. */
export const SOCKET_CONNECT_TIMEOUT_MS = 5_000;

/** How long a peer whose snapshot socket could not be reached is sent SST files over gRPC before it is tried again. */
export const SOCKET_OFF_MS = 10 * 60_000;

/** grpc status UNIMPLEMENTED (this file imports grpc-js types only). */
const GRPC_UNIMPLEMENTED = 12;

interface RunningEntry {
  readonly transfer: SnapshotTransfer;
  call: { cancel(): void } | undefined;
  /** Set while the transfer waits out its retry pacing, before it starts. */
  timer: NodeJS.Timeout | undefined;
}

export class SnapshotSender {
  readonly stats: SnapshotSendStats = {
    started: 0,
    succeeded: 0,
    failed: 0,
    skippedBusy: 0,
    deferred: 0,
    bytesSent: 0,
    rowsSent: 0,
    filesSent: 0,
    overSocket: 0,
  };
  private readonly o: SnapshotSenderOptions;
  private readonly running = new Map<string, RunningEntry>();
  private readonly pacing = new SnapshotRetryPacing();
  /** Peers that cannot ingest SST files, until when (ms since the epoch). */
  private readonly rowsOnlyUntil = new Map<string, number>();
  /** Peers whose snapshot socket could not be reached, until when (ms since the epoch). */
  private readonly socketOffUntil = new Map<string, number>();
  private closed = false;

  constructor(o: SnapshotSenderOptions) {
    this.o = o;
  }

  /** Transfers in progress, with the bytes and rows sent so far (not those still waiting to start). */
  transfers(): SnapshotTransfer[] {
    return [...this.running.values()].filter((r) => r.timer === undefined).map((r) => ({ ...r.transfer }));
  }

  /**
   * Starts streaming the snapshot message `m` of `group` to node `to` (see the file comment), or,
   * when the last transfer to that replica failed not long ago, once its retry pacing allows.
   */
  send(to: string, group: GroupId, m: Message): void {
    if (this.closed) return;
    const key = `${group}/${to}`;
    if (this.running.has(key)) {
      this.stats.skippedBusy++;
      return;
    }
    const index = m.snapshot?.metadata.index ?? 0;
    const entry: RunningEntry = { transfer: { group, to, index, startedMs: Date.now(), bytes: 0, rows: 0 }, call: undefined, timer: undefined };
    this.running.set(key, entry);
    const start = (): void => {
      entry.timer = undefined;
      entry.transfer.startedMs = Date.now();
      this.stats.started++;
      this.run(to, group, m, entry).then(
        () => {
          this.running.delete(key);
          this.pacing.succeeded(key);
          this.stats.succeeded++;
          this.o.host.reportSnapshot(group, m.to, true);
        },
        (e: unknown) => {
          this.running.delete(key);
          this.stats.failed++;
          const retryInMs = this.pacing.failed(key, Date.now());
          if (this.closed) return;
          this.o.log?.warn({ group, to, index, retryInMs, err: (e as Error).message }, 'snapshot transfer failed; Raft sends it again');
          this.o.host.reportSnapshot(group, m.to, false);
        },
      );
    };
    const wait = this.pacing.waitMs(key, Date.now());
    if (wait === 0) {
      start();
      return;
    }
    this.stats.deferred++;
    entry.timer = setTimeout(start, wait);
  }

  /** Cancels every transfer (they report nothing more). */
  close(): void {
    this.closed = true;
    for (const [key, r] of this.running) {
      if (r.timer !== undefined) {
        clearTimeout(r.timer);
        this.running.delete(key);
      }
      r.call?.cancel();
    }
  }

  private async run(to: string, group: GroupId, m: Message, entry: RunningEntry): Promise<void> {
    const snapshot = m.snapshot;
    if (snapshot === undefined) throw new Error('not a snapshot message');
    const desc = decodeSnapshotDescriptor(unwrapSnapshot(snapshot.data).inner);
    const client = this.o.clientOf(to);
    if (client === undefined) throw new Error(`no address for node ${to}`);
    const readTs = snapshotReadTs(this.o.host.engine, desc.maxCommitTs);
    if (this.sendsFiles(to)) {
      try {
        await this.runFiles(client, to, group, m, entry, desc.range, readTs);
        return;
      } catch (e) {
        if ((e as grpc.ServiceError).code !== GRPC_UNIMPLEMENTED) throw e;
        // The peer cannot ingest SST files (an older node, or one on the published binding): rows, for a while.
        this.rowsOnlyUntil.set(to, Date.now() + ROWS_ONLY_MS);
      }
    }
    await this.runRows(client, to, group, m, entry, desc.range, readTs);
  }

  /** Whether a transfer to `to` goes as SST files (ADR 0013): both ends can, as far as this node knows. */
  private sendsFiles(to: string): boolean {
    if (this.o.host.engine.sst === undefined || this.o.host.staging.sst === undefined || this.o.rowsOnly === true) return false;
    const until = this.rowsOnlyUntil.get(to);
    if (until === undefined) return true;
    if (Date.now() < until) return false;
    this.rowsOnlyUntil.delete(to);
    return true;
  }

  /** Opens a transfer's gRPC call: `write` waits for gRPC flow control; `answer` settles with the receiver's answer. */
  private open(
    entry: RunningEntry,
    start: (cb: (err: grpc.ServiceError | null, ack?: SnapshotAckOut) => void) => grpc.ClientWritableStream<SnapshotFrame>,
  ): TransferCall {
    let failure: Error | undefined;
    let call: grpc.ClientWritableStream<SnapshotFrame> | undefined;
    const answered = new Promise<SnapshotAckOut>((resolve, reject) => {
      call = start((err, ack) => {
        if (err !== null || ack === undefined) {
          failure = err ?? new Error('no answer');
          reject(failure);
        } else resolve(ack);
      });
    });
    answered.catch(() => undefined); // awaited by `answer`; a failure also stops the writes
    const c = call as unknown as grpc.ClientWritableStream<SnapshotFrame>;
    entry.call = c;
    c.on('error', () => undefined); // the callback reports it
    const write = async (frame: SnapshotFrame): Promise<void> => {
      if (failure !== undefined) throw failure;
      if (this.closed) throw new Error('transport closed');
      if (!c.write(frame)) await drained(c, () => failure);
    };
    const answer = (timeoutMs: number): Promise<SnapshotAckOut> => answerWithin(answered, timeoutMs, () => c.cancel());
    return { write, end: () => c.end(), cancel: () => c.cancel(), answer };
  }

  private async runRows(client: RaftClient, to: string, group: GroupId, m: Message, entry: RunningEntry, range: HashRange, readTs: Timestamp): Promise<void> {
    const engine = this.o.host.engine;
    const chunkBytes = this.o.chunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT;
    const chunks = snapshotChunks(engine, range, readTs, chunkBytes);
    let opened: TransferCall | undefined;
    try {
      // The first chunk is read before the header goes out, so the receiver's side of the
      // transfer (the group's busy slot, its idle timer, its receiving-time metric) starts when
      // rows are ready: the dump thread's start and first read come before it. (The benchmarks'
      // stream rate is per receiving time, so it leaves that first read out; docs/benchmarks.md.)
      let next = await chunks.next();
      const call = this.open(entry, (cb) => client.sendSnapshot(cb));
      opened = call;
      const write = (f: SnapshotFrame): Promise<void> => call.write(f);
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
      opened.end();
    } catch (e) {
      opened?.cancel();
      await chunks.return(undefined).catch(() => undefined); // cancels a dump in progress
      throw e;
    }
    await opened.answer(SNAPSHOT_ANSWER_TIMEOUT_MS);
  }

  /**
   * The snapshot as SST files (ADR 0013): exported by the engine (off this thread), then each
   * file streamed in pieces of at most `chunkBytes`, with its size and CRC-32 in the last frame:
   * over the peer's snapshot socket when it has one (ADR 0014), else (or when it cannot be
   * reached: then for `SOCKET_OFF_MS`) over a `SendSnapshotFiles` call. The exported files are
   * deleted once sent (or not).
   */
  private async runFiles(client: RaftClient, to: string, group: GroupId, m: Message, entry: RunningEntry, range: HashRange, readTs: Timestamp): Promise<void> {
    const sst = this.o.host.engine.sst;
    const staging = this.o.host.staging.sst;
    if (sst === undefined || staging === undefined) throw new Error('this node cannot export SST files');
    const id = { index: m.snapshot?.metadata.index ?? 0, term: m.snapshot?.metadata.term ?? 0 };
    const exported = await sst.export(range.start, range.end, readTs, recordIndexSpace(group), await staging.exportBase(group, id));
    try {
      const socket = await this.socketCall(client, to);
      if (socket !== undefined) {
        this.stats.overSocket++;
        entry.call = socket;
      }
      const call = socket ?? this.open(entry, (cb) => client.sendSnapshotFiles(cb));
      await this.streamFiles(call, to, group, m, entry, exported);
    } finally {
      await Promise.all(exported.files.map((f) => rm(f.path, { force: true })));
    }
  }

  /** A connection to the peer's snapshot socket, or undefined when it has none or it cannot be reached (see `runFiles`). */
  private async socketCall(client: RaftClient, to: string): Promise<TransferCall | undefined> {
    const hostOf = this.o.socketHostOf;
    if (hostOf === undefined) return undefined;
    const off = this.socketOffUntil.get(to);
    if (off !== undefined && Date.now() < off) return undefined;
    this.socketOffUntil.delete(to);
    const host = hostOf(to);
    if (host === undefined) return undefined;
    const port = await new Promise<number>((resolve) => {
      client.snapshotEndpoint({}, { deadline: Date.now() + SOCKET_CONNECT_TIMEOUT_MS }, (err, reply) =>
        resolve(err === null && reply !== undefined ? reply.port : 0),
      );
    });
    if (port === 0) return undefined; // an older node, or one without a snapshot socket (or unreachable: the gRPC call will tell)
    try {
      return await connectSnapshotSocket(host, port, SOCKET_CONNECT_TIMEOUT_MS);
    } catch (e) {
      if (!(e instanceof SocketConnectError)) throw e;
      this.socketOffUntil.set(to, Date.now() + SOCKET_OFF_MS);
      return undefined;
    }
  }

  /** Streams the exported files of one snapshot on `call` and waits for the receiver's answer. */
  private async streamFiles(call: TransferCall, to: string, group: GroupId, m: Message, entry: RunningEntry, exported: SstExport): Promise<void> {
    const chunkBytes = this.o.chunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT;
    try {
      await call.write({ fromNode: this.o.self, toNode: to, group, message: encodeMessage(m) });
      const summaries: { kind: number; bytes: number; crc32: number }[] = [];
      let bytes = 0;
      for (const f of exported.files) {
        const kind = SST_KIND_CODE[f.kind];
        let size = 0;
        let crc = 0;
        for (const data of filePieces(f.path, chunkBytes)) {
          crc = crc32(data, crc);
          size += data.length;
          await this.o.limiter.take(data.length);
          if (this.closed) throw new Error('transport closed');
          await call.write({ sstKind: kind, sstData: data });
          bytes += data.length;
          entry.transfer.bytes = bytes;
          this.stats.bytesSent += data.length;
        }
        summaries.push({ kind, bytes: size, crc32: crc });
      }
      await call.write({ done: true, totalRows: exported.rows, totalBytes: bytes, sstFiles: summaries });
      call.end();
      entry.transfer.rows = exported.rows;
      this.stats.rowsSent += exported.rows;
    } catch (e) {
      call.cancel();
      throw e;
    }
    await call.answer(SNAPSHOT_ANSWER_TIMEOUT_MS);
    this.stats.filesSent++;
  }
}
