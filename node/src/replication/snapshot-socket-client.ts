/**
 * The sending end of the snapshot socket (ADR 0014; wire format in `snapshot-socket.ts`): one TCP
 * connection per transfer to the peer's snapshot port. `connectSnapshotSocket` resolves once
 * connected (or rejects with `SocketConnectError`: the sender then uses the gRPC call); the
 * `TransferCall` it returns is the same as the gRPC call's, so the sender streams either alike.
 */
import * as net from 'node:net';
import type { SnapshotAckOut } from '@keyva/proto';
import { encodeSocketFrame, SocketAnswerReader } from './snapshot-socket.ts';
import { answerWithin, drained, type TransferCall } from './transfer-call.ts';

/**
 * Bytes a transfer may have queued on its socket before a write waits for 'drain'. Waiting after
 * every 1 MiB piece instead cost an event-loop turn per piece on a busy node; libuv writes what
 * is queued without JavaScript as the peer reads.
 */
export const SOCKET_SEND_WINDOW_BYTES = 8 << 20;

/** The peer's snapshot socket could not be reached: nothing was sent on it. */
export class SocketConnectError extends Error {}

/** An error the receiver answered, with its gRPC status code (as grpc-js's `ServiceError`). */
export class SocketAnswerError extends Error {
  readonly code: number;
  readonly details: string;

  constructor(code: number, details: string) {
    super(`${code} ${details}`);
    this.code = code;
    this.details = details;
  }
}

export async function connectSnapshotSocket(host: string, port: number, connectTimeoutMs: number): Promise<TransferCall> {
  // (Node's socket takes the Duplex option; @types/node does not declare it on connect's options.)
  const options: net.NetConnectOpts & { writableHighWaterMark: number } = {
    host,
    port,
    noDelay: true,
    allowHalfOpen: true,
    writableHighWaterMark: SOCKET_SEND_WINDOW_BYTES,
  };
  const socket = net.connect(options);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SocketConnectError(`snapshot socket ${host}:${port}: no connection within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve();
    });
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(new SocketConnectError(`snapshot socket ${host}:${port}: ${e.message}`));
    };
    socket.once('error', onError);
  });
  const reader = new SocketAnswerReader();
  let failure: Error | undefined;
  let first = true;
  const answered = new Promise<SnapshotAckOut>((resolve, reject) => {
    socket.on('data', (b: Buffer) => {
      reader.push(b);
      const a = reader.answer();
      if (a === undefined) return;
      if (a.code === 0 && 'ack' in a) resolve(a.ack);
      else {
        failure = new SocketAnswerError(a.code, 'details' in a ? a.details : '');
        reject(failure);
      }
      socket.destroy();
    });
    socket.on('error', (e) => {
      failure ??= new Error(`snapshot socket broke off: ${e.message}`);
      reject(failure);
    });
    socket.on('close', () => {
      failure ??= new Error('snapshot socket closed before the answer');
      reject(failure);
    });
  });
  answered.catch(() => undefined); // awaited by `answer`; a failure also stops the writes
  return {
    write: async (frame) => {
      if (failure !== undefined) throw failure;
      const ok = socket.write(encodeSocketFrame(frame, first));
      first = false;
      if (!ok) await drained(socket, () => failure);
    },
    end: () => socket.end(),
    cancel: () => socket.destroy(),
    answer: (timeoutMs) => answerWithin(answered, timeoutMs, () => socket.destroy()),
  };
}
