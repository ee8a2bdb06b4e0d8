/**
 * The snapshot socket on a thread of its own (ADR 0014, amendment "session 15"): the event
 * loop's side of `snapshot-socket-worker.ts`. The thread listens and stages each transfer's SST
 * files; the event loop answers its two questions per transfer through the node's
 * `SnapshotReceiver` (the header: `acceptRemote`; staged and synced: `remoteStaged`, which steps
 * the snapshot into its group) and hears of failures (`remoteFailed`), so the receiver's checks,
 * its one-transfer-per-group rule and its metrics are the same as for a transfer over gRPC.
 *
 * Served on the event loop, a transfer waited for turns of a loop busy with clients: at most
 * 2 MiB read per turn (libuv reads 64 KiB at most 32 times), and a turn per frame. On the thread
 * it waits for the sender and the disk only (measurements in ADR 0014's amendment "session 15").
 */
import { Worker } from 'node:worker_threads';
import type { SnapshotFrameOut } from '@keyva/proto';
import { type SnapshotReceiver, snapshotErrorCode } from './snapshot-receiver.ts';
import type { StagedSnapshotId } from './snapshot-staging.ts';

export interface SocketThreadInit {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
}

/** From the socket's thread to the event loop. */
export type FromSocketThread =
  | { t: 'listening'; port: number }
  | { t: 'listenError'; message: string }
  | { t: 'header'; conn: number; fromNode: string; toNode: string; group: number; message: Uint8Array }
  | { t: 'bytes'; conn: number; bytes: number }
  | { t: 'staged'; conn: number; rows: number }
  | { t: 'failed'; conn: number };

/** From the event loop to the socket's thread: the reply to a `header` or a `staged`. */
export type ToSocketThread =
  | { t: 'go'; conn: number; group: number; id: StagedSnapshotId; dir: string }
  | { t: 'refuse'; conn: number; code: number; details: string }
  | { t: 'answer'; conn: number; code: number; details: string };

/** grpc status UNAVAILABLE (the thread's answer when no receiver takes snapshots yet). */
const UNAVAILABLE = 14;

export interface SnapshotSocketThreadOptions extends SocketThreadInit {
  /** The node's receiver, or undefined while it takes no snapshots (transfers are refused UNAVAILABLE). */
  readonly receiver: () => SnapshotReceiver | undefined;
}

export class SnapshotSocketThread {
  private readonly o: SnapshotSocketThreadOptions;
  private worker: Worker | undefined;
  private bound = 0;

  constructor(o: SnapshotSocketThreadOptions) {
    this.o = o;
  }

  /** Starts the thread; resolves to the bound port once it listens. */
  listen(): Promise<number> {
    const init: SocketThreadInit = { host: this.o.host, port: this.o.port };
    const worker = new Worker(new URL('./snapshot-socket-worker.ts', import.meta.url), { workerData: init, name: 'keyva-snapshot-socket' });
    this.worker = worker;
    worker.unref(); // the node's lifetime is not the thread's to keep
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromSocketThread) => {
        if (m.t === 'listening') {
          this.bound = m.port;
          resolve(m.port);
        } else if (m.t === 'listenError') reject(new Error(`snapshot socket: ${m.message}`));
        else this.onMessage(worker, m);
      });
      worker.on('error', (e) => reject(e)); // before listening; after, 'exit' follows and releases
      worker.once('exit', (code) => {
        // Peers then cannot reach the socket and send over gRPC (snapshot-sender.ts); what was in flight failed.
        this.bound = 0;
        this.release();
        if (this.worker === worker) this.worker = undefined;
        reject(new Error(`snapshot socket thread exited (${code})`));
      });
    });
  }

  private onMessage(worker: Worker, m: FromSocketThread): void {
    if (this.worker !== worker) return; // closed: what the thread still said is moot
    const receiver = this.o.receiver();
    const reply = (r: ToSocketThread): void => worker.postMessage(r);
    if (m.t === 'header') {
      if (receiver === undefined) {
        reply({ t: 'refuse', conn: m.conn, code: UNAVAILABLE, details: 'this node takes no snapshots now' });
        return;
      }
      const message = Buffer.from(m.message.buffer, m.message.byteOffset, m.message.byteLength);
      const frame = { fromNode: m.fromNode, toNode: m.toNode, group: m.group, message } as SnapshotFrameOut;
      try {
        const { group, id, dir } = receiver.acceptRemote(m.conn, frame);
        reply({ t: 'go', conn: m.conn, group, id, dir });
      } catch (e) {
        reply({ t: 'refuse', conn: m.conn, code: snapshotErrorCode(e as Error), details: (e as Error).message });
      }
    } else if (m.t === 'staged') {
      try {
        if (receiver === undefined) throw new Error('this node takes no snapshots now');
        receiver.remoteStaged(m.conn, m.rows);
        reply({ t: 'answer', conn: m.conn, code: 0, details: '' });
      } catch (e) {
        reply({ t: 'answer', conn: m.conn, code: snapshotErrorCode(e as Error), details: (e as Error).message });
      }
    } else if (m.t === 'bytes') receiver?.remoteBytes(m.bytes);
    else if (m.t === 'failed') receiver?.remoteFailed(m.conn);
  }

  /** Ends every transfer the thread was staging as failed (the thread stopped). */
  private release(): void {
    this.o.receiver()?.remoteAllFailed();
  }

  /** The bound port (0 before `listen` resolved, after `close`, or once the thread stopped). */
  get port(): number {
    return this.bound;
  }

  close(): void {
    this.bound = 0;
    this.release();
    void this.worker?.terminate();
    this.worker = undefined;
  }
}
