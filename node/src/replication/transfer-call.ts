/**
 * A snapshot transfer being sent, whatever carries it (a `SendSnapshotFiles`/`SendSnapshot` gRPC
 * call, or a snapshot socket connection, ADR 0014): frames written in order, each waiting for the
 * carrier's flow control, then the receiver's answer. And the two waits every carrier has.
 */
import type { EventEmitter } from 'node:events';
import type { SnapshotAckOut, SnapshotFrame } from '@keyva/proto';

export interface TransferCall {
  write(frame: SnapshotFrame): Promise<void>;
  /** After the last frame. */
  end(): void;
  cancel(): void;
  /** The receiver's answer; rejects with its error (a `code` property holds the gRPC status) or after `timeoutMs`. */
  answer(timeoutMs: number): Promise<SnapshotAckOut>;
}

/** Resolves on the stream's next 'drain'; rejects with `failure()` (or a generic error) if it closes first. */
export function drained(stream: EventEmitter, failure: () => Error | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      stream.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      stream.off('drain', onDrain);
      reject(failure() ?? new Error('snapshot stream closed'));
    };
    stream.once('drain', onDrain);
    stream.once('close', onClose);
  });
}

/** `answered`, or a rejection after `timeoutMs` (then `onTimeout` runs: the caller tears the carrier down). */
export async function answerWithin(answered: Promise<SnapshotAckOut>, timeoutMs: number, onTimeout: () => void): Promise<SnapshotAckOut> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([answered, late]);
  } finally {
    clearTimeout(timer);
  }
}
