/**
 * The receiving side of a streamed snapshot (`SendSnapshot`, see `snapshot-sender.ts`). Frames
 * are handled one at a time, in order; up to `RECEIVE_QUEUE_BYTES` wait behind the one being
 * handled, beyond that the call is paused (so flow control holds the sender back). The header
 * is checked (addressed to this node, a data group hosted here, a streamed snapshot message),
 * any earlier partial staging of the same snapshot is cleared, every chunk is walked
 * (`checkRows`: well-formed, every row inside the group's range) and staged as it came
 * (`SnapshotStaging`); the `done` frame's totals must match. Then the staging is marked
 * complete (synced) and only then is the Raft message stepped into the group: the core never
 * sees a snapshot whose rows are not all on disk, and the partition's data is untouched until
 * the state machine installs it. A transfer that fails or breaks off leaves only staged rows,
 * which are cleared (now, or by the next transfer of the same snapshot, or when the group is
 * opened). One transfer per group at a time; another is refused (UNAVAILABLE) and retried by
 * its leader.
 *
 * `handleFiles` (`SendSnapshotFiles`) takes the same snapshot as SST files (ADR 0013): pieces
 * staged in order per file (`SstStaging`), and at the `done` frame each file's size and CRC-32
 * checked against the sender's list before the staging is marked complete. A node whose engine
 * cannot ingest SST files answers UNIMPLEMENTED (its peers then send rows). Over the snapshot
 * socket, the socket's thread walks the frames and stages the files itself
 * (`snapshot-socket-worker.ts`); the receiver checks the header (`acceptRemote`) and steps the
 * staged snapshot into its group (`remoteStaged`), with the same rules and metrics.
 */
import * as grpc from '@grpc/grpc-js';
import type { SnapshotAck, SnapshotFrameOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { checkRows } from '../engine/row-codec.ts';
import type { Message } from '../raft/messages.ts';
import { decodeMessage } from './raft-codec.ts';
import type { GroupId } from './raft-keys.ts';
import { widenReceiveWindow } from './snapshot-flow-window.ts';
import { driveTransfer, STAGING_WRITES_IN_FLIGHT } from './snapshot-frame-queue.ts';
import { isStreamedSnapshotMessage, type SnapshotHost } from './snapshot-sender.ts';
import type { SnapshotAnswer, SnapshotCall } from './snapshot-socket-server.ts';
import { invalidSnapshot, SstPieces, snapshotFailureCode } from './snapshot-sst-pieces.ts';
import type { StagedSnapshotId } from './snapshot-staging.ts';

export interface SnapshotReceiveStats {
  received: number;
  failed: number;
  refusedBusy: number;
  bytesReceived: number;
  rowsReceived: number;
  /**
   * Milliseconds during which at least one transfer was being received (from its header frame
   * until it was staged and synced, or failed), transfers in progress included up to now: the
   * time the bytes received took, for a rate (`bytesReceived` over it).
   */
  receivingMs: number;
}

export interface SnapshotReceiverOptions {
  readonly self: string;
  readonly host: SnapshotHost;
  /** Steps a completely staged snapshot message into its group. */
  readonly deliver: (from: string, group: GroupId, m: Message) => void;
  /** Monotonic clock in ms (tests); default `performance.now`. */
  readonly now?: () => number;
}

/** The transfer's form: rows (`SendSnapshot`) or SST files (`SendSnapshotFiles`). */
type Form = 'rows' | 'sst';

/** This node cannot take the form the sender chose (answered UNIMPLEMENTED). */
class FormUnsupportedError extends Error {}

interface Receiving {
  form: Form;
  /** SST form: the files' pieces so far. */
  pieces: SstPieces | undefined;
  from: string;
  group: GroupId;
  message: Message;
  id: StagedSnapshotId;
  range: { readonly start: bigint; readonly end: bigint };
  seq: number;
  rows: number;
  bytes: number;
  /** Completely staged by an earlier transfer (maybe being installed): rows are ignored, the staging is kept. */
  staged: boolean;
}

const invalid = invalidSnapshot;

/** The gRPC status a failed transfer is answered with. */
export function snapshotErrorCode(err: Error): number {
  return err instanceof FormUnsupportedError ? grpc.status.UNIMPLEMENTED : snapshotFailureCode(err);
}

export class SnapshotReceiver {
  private readonly counts = { received: 0, failed: 0, refusedBusy: 0, bytesReceived: 0, rowsReceived: 0 };
  private readonly o: SnapshotReceiverOptions;
  private readonly now: () => number;
  /** Groups with a transfer in progress. */
  private readonly busy = new Set<GroupId>();
  /** Transfers over the snapshot socket being staged by its thread, by connection (`acceptRemote`). */
  private readonly remote = new Map<number, Receiving>();
  /** Transfers past their header, and since when (ms) at least one was; the time before it. */
  private active = 0;
  private activeSince = 0;
  private receivingMsBefore = 0;

  constructor(o: SnapshotReceiverOptions) {
    this.o = o;
    this.now = o.now ?? (() => performance.now());
  }

  get stats(): SnapshotReceiveStats {
    const ms = this.receivingMsBefore + (this.active > 0 ? this.now() - this.activeSince : 0);
    return { ...this.counts, receivingMs: ms };
  }

  private transferStarted(): void {
    if (this.active++ === 0) this.activeSince = this.now();
  }

  private transferEnded(): void {
    if (--this.active === 0) this.receivingMsBefore += this.now() - this.activeSince;
  }

  /** Groups receiving a snapshot now. */
  receiving(): GroupId[] {
    return [...this.busy];
  }

  /** `SendSnapshot`: a snapshot as rows. */
  readonly handle = this.overGrpc('rows');

  /** `SendSnapshotFiles`: a snapshot as SST files. */
  readonly handleFiles = this.overGrpc('sst');

  private overGrpc(form: Form): grpc.handleClientStreamingCall<SnapshotFrameOut, SnapshotAck> {
    return (call, callback) => {
      // Frames flow at the pace of this side's HTTP/2 receive window: raise it (snapshot-flow-window.ts).
      widenReceiveWindow(call);
      this.serve(call, callback, form);
    };
  }

  /** Whether this node can take snapshots as SST files (its staging and engine can). */
  takesFiles(): boolean {
    return this.o.host.staging.sst !== undefined && this.o.host.engine.sst !== undefined;
  }

  /**
   * The header of transfer `conn` over the snapshot socket, whose thread stages the files
   * (`snapshot-socket-thread.ts`): checked, and its group claimed, as for `handleFiles`; throws
   * what the transfer is to be answered with (`snapshotErrorCode`). Where to stage is returned.
   */
  acceptRemote(conn: number, f: SnapshotFrameOut): { group: GroupId; id: StagedSnapshotId; dir: string } {
    const dir = this.o.host.staging.sst?.dir;
    if (!this.takesFiles() || dir === undefined) throw this.noFiles();
    const st = this.begin(f, 'sst');
    this.remote.set(conn, st);
    return { group: st.group, id: st.id, dir };
  }

  /** `bytes` more arrived on a transfer the socket's thread stages. */
  remoteBytes(bytes: number): void {
    this.counts.bytesReceived += bytes;
  }

  /**
   * Transfer `conn` is staged durably by the socket's thread (`rows` received; 0 when it was
   * staged already): its message is stepped into the group, as `handleFiles` does.
   */
  remoteStaged(conn: number, rows: number): void {
    const st = this.remote.get(conn);
    if (st === undefined) throw new KeyVaError('UNAVAILABLE', `snapshot transfer ${conn} is not in progress`);
    this.remote.delete(conn);
    this.counts.rowsReceived += rows;
    this.o.deliver(st.from, st.group, st.message);
    this.ended(st, true);
  }

  /** Transfer `conn` failed on the socket's thread (which cleared what it staged), before or after `acceptRemote`. */
  remoteFailed(conn: number): void {
    const st = this.remote.get(conn);
    if (st === undefined) {
      this.counts.failed++;
      return;
    }
    this.remote.delete(conn);
    this.ended(st, false);
  }

  /** Every transfer the socket's thread was staging failed (the thread stopped). */
  remoteAllFailed(): void {
    for (const st of this.remote.values()) this.ended(st, false);
    this.remote.clear();
  }

  /** Frees the group of transfer `st` and counts it. */
  private ended(st: Receiving, ok: boolean): void {
    this.busy.delete(st.group);
    this.transferEnded();
    if (ok) this.counts.received++;
    else this.counts.failed++;
  }

  private noFiles(): FormUnsupportedError {
    return new FormUnsupportedError(`node ${this.o.self} cannot ingest SST files (its RocksDB binding has no SST calls): send rows`);
  }

  private serve(call: SnapshotCall, callback: SnapshotAnswer, form: Form): void {
    let st: Receiving | undefined;
    let finished = false;
    /** Staging writes submitted and not yet awaited, oldest first. */
    const staging: Promise<void>[] = [];
    const stage = this.o.host.staging;
    const finish = (err: Error | undefined, ack?: SnapshotAck): void => {
      if (finished) return;
      finished = true;
      driver.stop();
      const cur = st;
      if (cur !== undefined) this.ended(cur, err === undefined);
      if (err === undefined) {
        callback(null, ack);
        return;
      }
      if (cur === undefined) this.counts.failed++;
      if (cur !== undefined && !cur.staged) {
        // After the staging writes still queued, so none lands behind the clearing.
        Promise.allSettled(staging.splice(0))
          .then(() => stage.clear(cur.group, { only: cur.id }))
          .catch(() => undefined);
      }
      const code = snapshotErrorCode(err);
      callback({ code, details: err.message, name: 'SnapshotError', message: err.message, metadata: new grpc.Metadata() });
      call.destroy();
    };
    const onFrame = async (f: SnapshotFrameOut): Promise<void> => {
      if (finished) return;
      if (st === undefined) {
        if (form === 'sst' && !this.takesFiles()) throw this.noFiles();
        st = this.begin(f, form);
        if ((await stage.totals(st.group, st.id)) !== undefined) st.staged = true;
        else await stage.clear(st.group, { only: st.id });
        return;
      }
      if (st.staged) {
        if (f.done) {
          this.o.deliver(st.from, st.group, st.message);
          finish(undefined, { rows: Number(f.totalRows), bytes: Number(f.totalBytes) });
        }
        return;
      }
      if (st.form === 'sst') return this.onSstFrame(st, f, staging, finish);
      if (f.done) {
        if (Number(f.totalRows) !== st.rows || Number(f.totalBytes) !== st.bytes) {
          throw invalid(`totals ${f.totalRows} rows / ${f.totalBytes} bytes, received ${st.rows} / ${st.bytes}`);
        }
        while (staging.length > 0) await staging.shift();
        await stage.complete(st.group, st.id, { chunks: st.seq, rows: st.rows, bytes: st.bytes });
        const ack = { rows: st.rows, bytes: st.bytes };
        this.o.deliver(st.from, st.group, st.message);
        finish(undefined, ack);
        return;
      }
      // Checked without decoding (no allocation per row): the chunk is staged as it came.
      let check: { rows: number; outside: boolean };
      try {
        check = checkRows(f.rows, st.range);
      } catch (e) {
        throw invalid((e as Error).message);
      }
      if (check.outside) throw invalid(`row outside group ${st.group}'s range`);
      const rows = check.rows;
      // Pipelined: the next frame is read and checked while this chunk's staging write is queued;
      // at most STAGING_WRITES_IN_FLIGHT writes (bounded memory), all done before the completion record.
      if (staging.length >= STAGING_WRITES_IN_FLIGHT) await staging.shift();
      const write = stage.stage(st.group, st.id, st.seq, f.rows);
      write.catch(() => undefined); // awaited before the next write past the bound, or at the end
      staging.push(write);
      st.seq++;
      st.rows += rows;
      st.bytes += f.rows.length;
      this.counts.rowsReceived += rows;
      this.counts.bytesReceived += f.rows.length;
    };
    const driver = driveTransfer(call, { onFrame, fail: (e) => finish(e), finished: () => finished });
  }

  /** A frame of an SST-form transfer after its header (see the file comment). */
  private async onSstFrame(
    st: Receiving,
    f: SnapshotFrameOut,
    staging: Promise<void>[],
    finish: (err: Error | undefined, ack?: SnapshotAck) => void,
  ): Promise<void> {
    const stage = this.o.host.staging.sst;
    if (stage === undefined) throw new FormUnsupportedError('no SST staging');
    st.pieces ??= new SstPieces(stage, st.group, st.id);
    if (f.done) {
      const files = st.pieces.files(f);
      while (staging.length > 0) await staging.shift();
      const rows = Number(f.totalRows);
      await stage.completeSst(st.group, st.id, files, { rows, bytes: st.pieces.bytes });
      this.counts.rowsReceived += rows;
      this.o.deliver(st.from, st.group, st.message);
      finish(undefined, { rows, bytes: st.pieces.bytes });
      return;
    }
    if (staging.length >= STAGING_WRITES_IN_FLIGHT) await staging.shift();
    const write = st.pieces.piece(f);
    write.catch(() => undefined); // awaited before the next write past the bound, or at the end
    staging.push(write);
    this.counts.bytesReceived += f.sstData.length;
  }

  /** Checks the header and claims the group (the caller then prepares the staging). */
  private begin(f: SnapshotFrameOut, form: Form): Receiving {
    if (f.toNode !== this.o.self) throw invalid(`addressed to node ${f.toNode}, this is ${this.o.self}`);
    let m: Message;
    try {
      m = decodeMessage(f.message);
    } catch (e) {
      throw invalid(`malformed Raft message (${(e as Error).message})`);
    }
    if (!isStreamedSnapshotMessage(m) || m.snapshot === undefined) throw invalid('the first frame does not carry a streamed snapshot message');
    const group = f.group;
    const range = this.o.host.rangeOf(group);
    if (range === undefined || range.end <= range.start) throw new KeyVaError('UNAVAILABLE', `data group ${group} is not hosted on node ${this.o.self}`);
    const refusal = this.o.host.refusesSnapshot(group, m.snapshot.metadata.index);
    if (refusal !== undefined) throw new KeyVaError('UNAVAILABLE', `group ${group}: ${refusal}`);
    if (this.busy.has(group)) {
      this.counts.refusedBusy++;
      throw new KeyVaError('UNAVAILABLE', `group ${group} is receiving another snapshot`);
    }
    this.busy.add(group);
    this.transferStarted();
    const id = { index: m.snapshot.metadata.index, term: m.snapshot.metadata.term };
    return { form, pieces: undefined, from: f.fromNode, group, message: m, id, range, seq: 0, rows: 0, bytes: 0, staged: false };
  }
}
