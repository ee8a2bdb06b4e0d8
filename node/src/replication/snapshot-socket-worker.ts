/**
 * The snapshot socket's thread (started by `snapshot-socket-thread.ts`, ADR 0014 amendment
 * "session 15"): it listens on the socket and stages each transfer's SST files itself, so the
 * bulk bytes of a move never wait for the node's event loop, which also serves clients. The
 * event loop is asked twice per transfer: at its header (`header`: is it addressed here, is the
 * group hosted and free, where to stage; answered `go` or `refuse`) and once it is staged and
 * synced (`staged`: the event loop steps the Raft message into its group and sends the
 * `answer`). A transfer that fails is reported (`failed`), after `go` once its partial
 * staging is cleared; bytes received are reported as they arrive (`bytes`, for the node's
 * metrics). The frames are walked as on the gRPC call (`driveTransfer`, `SstPieces`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ServerErrorResponse } from '@grpc/grpc-js';
import type { SnapshotFrameOut } from '@keyva/proto';
import { driveTransfer, STAGING_WRITES_IN_FLIGHT } from './snapshot-frame-queue.ts';
import { type SnapshotAnswer, type SnapshotCall, SnapshotSocketServer } from './snapshot-socket-server.ts';
import type { FromSocketThread, SocketThreadInit, ToSocketThread } from './snapshot-socket-thread.ts';
import { GRPC_UNAVAILABLE, SstPieces, snapshotFailureCode } from './snapshot-sst-pieces.ts';
import type { StagedSnapshotId } from './snapshot-staging.ts';
import { FileSnapshotStaging } from './snapshot-staging-files.ts';

/** An error the event loop answered (refused header, or a failure after staging), with its gRPC code. */
class Answered extends Error {
  readonly code: number;
  constructor(code: number, details: string) {
    super(details);
    this.code = code;
  }
}

function errorResponse(e: Error): ServerErrorResponse {
  const code = e instanceof Answered ? e.code : snapshotFailureCode(e);
  return { code, details: e.message, name: 'SnapshotError', message: e.message };
}

const port = parentPort;
if (port === null) throw new Error('snapshot-socket-worker.ts runs as a worker thread');
const init = workerData as SocketThreadInit;
const post = (m: FromSocketThread): void => port.postMessage(m);

/** The event loop's next reply per connection. */
const replies = new Map<number, (m: ToSocketThread) => void>();
port.on('message', (m: ToSocketThread) => {
  const r = replies.get(m.conn);
  if (r === undefined) return;
  replies.delete(m.conn);
  r(m);
});
const ask = (conn: number, m: FromSocketThread): Promise<ToSocketThread> =>
  new Promise((resolve) => {
    replies.set(conn, resolve);
    post(m);
  });

/** One staging per directory the event loop names (a node has one). */
const stagings = new Map<string, FileSnapshotStaging>();
const stagingAt = (dir: string): FileSnapshotStaging => {
  let s = stagings.get(dir);
  if (s === undefined) {
    s = new FileSnapshotStaging(dir);
    stagings.set(dir, s);
  }
  return s;
};

let nextConn = 1;

interface Accepted {
  readonly staging: FileSnapshotStaging;
  readonly group: number;
  readonly id: StagedSnapshotId;
  readonly pieces: SstPieces;
  /** Completely staged by an earlier transfer: pieces are ignored, the staging is kept. */
  staged: boolean;
}

function serve(call: SnapshotCall, answer: SnapshotAnswer): void {
  const conn = nextConn++;
  let st: Accepted | undefined;
  let finished = false;
  const writes: Promise<void>[] = [];
  const finish = (err: Error | undefined, rows = 0, bytes = 0): void => {
    if (finished) return;
    finished = true;
    driver.stop();
    if (err === undefined) {
      answer(null, { rows, bytes });
      return;
    }
    const cur = st;
    // After the staging writes still queued, so none lands behind the clearing; then the event
    // loop frees the group; then the answer (the sender retries only after it).
    const cleared = Promise.allSettled(writes.splice(0))
      .then(() => (cur === undefined || cur.staged ? undefined : cur.staging.clear(cur.group, { only: cur.id })))
      .catch(() => undefined)
      .then(() => post({ t: 'failed', conn }));
    void cleared.then(() => {
      answer(errorResponse(err));
      call.destroy();
    });
  };
  const onFrame = async (f: SnapshotFrameOut): Promise<void> => {
    if (finished) return;
    if (st === undefined) {
      const v = await ask(conn, { t: 'header', conn, fromNode: f.fromNode, toNode: f.toNode, group: f.group, message: f.message });
      if (v.t !== 'go') throw new Answered(v.t === 'refuse' ? v.code : GRPC_UNAVAILABLE, v.t === 'refuse' ? v.details : 'unexpected reply');
      const staging = stagingAt(v.dir);
      const sst = staging.sst;
      st = { staging, group: v.group, id: v.id, pieces: new SstPieces(sst, v.group, v.id), staged: false };
      if ((await staging.totals(v.group, v.id)) !== undefined) st.staged = true;
      else await staging.clear(v.group, { only: v.id });
      return;
    }
    if (f.done) {
      let rows = 0;
      if (!st.staged) {
        const files = st.pieces.files(f);
        while (writes.length > 0) await writes.shift();
        rows = Number(f.totalRows);
        await st.staging.sst.completeSst(st.group, st.id, files, { rows, bytes: st.pieces.bytes });
      }
      st.staged = true; // from here on a failure keeps the staging: it is complete
      const a = await ask(conn, { t: 'staged', conn, rows });
      if (a.t !== 'answer' || a.code !== 0) throw new Answered(a.t === 'answer' ? a.code : GRPC_UNAVAILABLE, a.t === 'answer' ? a.details : 'unexpected reply');
      finish(undefined, Number(f.totalRows), Number(f.totalBytes));
      return;
    }
    if (st.staged) return;
    if (writes.length >= STAGING_WRITES_IN_FLIGHT) await writes.shift();
    const write = st.pieces.piece(f);
    write.catch(() => undefined); // awaited before the next write past the bound, or at the end
    writes.push(write);
    post({ t: 'bytes', conn, bytes: f.sstData.length }); // the node's received-bytes metric, as the bytes arrive
  };
  const driver = driveTransfer(call, { onFrame, fail: (e) => finish(e), finished: () => finished });
}

const server = new SnapshotSocketServer({ host: init.host, port: init.port, serve });
server.listen().then(
  (p) => post({ t: 'listening', port: p }),
  (e: Error) => post({ t: 'listenError', message: e.message }),
);
