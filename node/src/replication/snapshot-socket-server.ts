/**
 * The receiving end of the snapshot socket (ADR 0014; wire format in `snapshot-socket.ts`): a TCP
 * listener whose every connection is one `SendSnapshotFiles` transfer, run on the snapshot
 * socket's thread (`snapshot-socket-worker.ts`). Each connection is wrapped as a call of the
 * shape the `SnapshotReceiver` serves over gRPC (`SnapshotCall`): frames are parsed from
 * the socket and emitted one at a time; `pause` stops both the emitting and the socket (TCP flow
 * control then holds the sender back, as HTTP/2's does on the gRPC call); the answer is written
 * back and the socket closed. Bytes that are not a transfer (wrong preamble, an oversized or
 * malformed frame) end it with INVALID_ARGUMENT and change nothing.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import type { ServerErrorResponse } from '@grpc/grpc-js';
import type { SnapshotAck, SnapshotFrameOut } from '@keyva/proto';
import { encodeSocketAnswer, SocketFrameReader, type SocketFramingError } from './snapshot-socket.ts';

/** What the receiver needs of a transfer's call: grpc-js's server stream has the same shape. */
export interface SnapshotCall {
  on(event: 'data', listener: (f: SnapshotFrameOut) => void): unknown;
  on(event: 'end' | 'error' | 'cancelled', listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
}

/** The receiver's answer to a transfer: grpc-js's `sendUnaryData` shape, the status as a gRPC code. */
export type SnapshotAnswer = (err: ServerErrorResponse | null, ack?: SnapshotAck) => void;

/** Connections the snapshot socket serves at once; more are closed at once (their senders retry, as after any failed transfer). */
export const SOCKET_CONNECTIONS_MAX = 32;

/** How long a connection stays open after its answer was written, at most. */
const ANSWER_LINGER_MS = 10_000;

/** grpc status INVALID_ARGUMENT and UNAVAILABLE. */
const INVALID_ARGUMENT = 3;
const UNAVAILABLE = 14;

/** One connection as a transfer call (see the file comment). */
class SocketCall extends EventEmitter implements SnapshotCall {
  private readonly reader = new SocketFrameReader();
  private readonly socket: net.Socket;
  private paused = false;
  private ended = false;
  private endEmitted = false;
  private failed = false;
  private answered = false;
  /** Malformed input: the answer says this instead of the receiver's generic "broke off". */
  private framingError: string | undefined;

  constructor(socket: net.Socket) {
    super();
    this.socket = socket;
    // An 'error' with no listener would throw (and stop the node): a call refused before the receiver serves it has none.
    this.on('error', () => undefined);
    socket.on('data', (b: Buffer) => {
      this.reader.push(b);
      this.emitFrames();
    });
    socket.on('end', () => {
      this.ended = true;
      this.emitFrames();
    });
    socket.on('error', () => this.fail());
    socket.on('close', () => {
      if (!this.ended) this.fail();
    });
  }

  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.emit('error', new Error('snapshot socket broke off'));
  }

  /** Emits the whole frames received while not paused; then `end` once the sender half-closed and all were emitted. */
  private emitFrames(): void {
    if (this.failed) return;
    while (!this.paused) {
      let f: SnapshotFrameOut | undefined;
      try {
        f = this.reader.next();
      } catch (e) {
        this.framingError = (e as SocketFramingError).message;
        this.fail();
        return;
      }
      if (f === undefined) break;
      this.emit('data', f);
    }
    if (!this.paused && this.ended && !this.endEmitted) {
      this.endEmitted = true;
      if (this.reader.pending > 0) {
        this.framingError = `stream cut short inside a frame (${this.reader.pending} bytes left over)`;
        this.fail();
      } else this.emit('end');
    }
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    this.paused = false;
    this.emitFrames();
    if (!this.paused) this.socket.resume();
  }

  /** After the answer: closes once it is flushed. */
  destroy(): void {
    if (this.answered) this.socket.end();
    else this.socket.destroy();
  }

  readonly answer: SnapshotAnswer = (err, ack) => {
    if (this.answered || this.socket.destroyed) return;
    this.answered = true;
    const bytes =
      err === null
        ? encodeSocketAnswer({ code: 0, ack: ack ?? {} })
        : this.framingError !== undefined
          ? encodeSocketAnswer({ code: INVALID_ARGUMENT, details: `snapshot socket: ${this.framingError}` })
          : encodeSocketAnswer({ code: err.code ?? UNAVAILABLE, details: err.details ?? 'snapshot transfer failed' });
    this.socket.end(bytes);
    // The sender closes once it has read the answer; one that does not is cut off.
    setTimeout(() => this.socket.destroy(), ANSWER_LINGER_MS).unref();
  };
}

export interface SnapshotSocketServerOptions {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  /** Serves one transfer (the receiver's SST-files form). */
  readonly serve: (call: SnapshotCall, answer: SnapshotAnswer) => void;
}

export class SnapshotSocketServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly o: SnapshotSocketServerOptions;
  private bound = 0;

  constructor(o: SnapshotSocketServerOptions) {
    this.o = o;
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      const call = new SocketCall(socket);
      o.serve(call, call.answer);
    });
    // Each connection may buffer a frame of up to SOCKET_FRAME_BYTES_MAX: bounded memory. (A
    // node takes one transfer per group at a time; the planner moves a few at once.)
    this.server.maxConnections = SOCKET_CONNECTIONS_MAX;
  }

  /** Listens; resolves to the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        this.bound = (this.server.address() as net.AddressInfo).port;
        resolve(this.bound);
      });
    });
  }

  /** The bound port (0 before `listen` resolved or after `close`). */
  get port(): number {
    return this.bound;
  }

  close(): void {
    this.bound = 0;
    this.server.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}
