/**
 * What both receivers of a snapshot transfer share (`snapshot-receiver.ts` on the event loop,
 * `snapshot-socket-worker.ts` on the snapshot socket's thread): how a call's frames reach the
 * handler (`driveTransfer`: one at a time, in order, a bounded queue, an idle timeout) and how
 * many staging writes a transfer keeps queued.
 */
import type { SnapshotFrameOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import type { SnapshotCall } from './snapshot-socket-server.ts';

/** Chunk staging writes a transfer keeps queued while it reads the next frames. */
export const STAGING_WRITES_IN_FLIGHT = 2;

/** A transfer with no frame for this long is abandoned (its sender froze; the group is freed for another). */
export const SNAPSHOT_IDLE_TIMEOUT_MS = 30_000;

/**
 * Frame bytes a transfer queues behind the frame being handled before its call is paused (the
 * sender is then held back by TCP's or HTTP/2's flow control): bounded memory per transfer.
 * Pausing for every frame instead cost an event-loop turn per frame on a busy node.
 */
export const RECEIVE_QUEUE_BYTES = 8 << 20;

/** The frames of a call queued for handling: `add` pauses the call past `RECEIVE_QUEUE_BYTES`, `done` resumes it below. */
export class FrameQueue {
  private readonly call: { pause(): unknown; resume(): unknown };
  private bytes = 0;
  private paused = false;

  constructor(call: { pause(): unknown; resume(): unknown }) {
    this.call = call;
  }

  /** Queues frame `f`; returns its size for `done` (its bulk bytes, at least 1). */
  add(f: SnapshotFrameOut): number {
    const size = Math.max(1, f.rows.length + f.sstData.length + f.message.length);
    this.bytes += size;
    if (!this.paused && this.bytes >= RECEIVE_QUEUE_BYTES) {
      this.paused = true;
      this.call.pause();
    }
    return size;
  }

  /** A frame of `size` was handled. */
  done(size: number): void {
    this.bytes -= size;
    if (this.paused && this.bytes < RECEIVE_QUEUE_BYTES) {
      this.paused = false;
      this.call.resume();
    }
  }
}

export interface TransferHandler {
  /** Handles the next frame (the following ones wait); a rejection fails the transfer. */
  onFrame(f: SnapshotFrameOut): Promise<void>;
  /** Ends the transfer with `err` (after the frames before it were handled); called again, it does nothing. */
  fail(err: Error): void;
  /** Whether the transfer has ended (then the call is not resumed). */
  finished(): boolean;
}

/**
 * Feeds `call`'s frames to `h` one at a time, in order, through a `FrameQueue`. The stream's
 * end, error or cancellation, and `SNAPSHOT_IDLE_TIMEOUT_MS` without a frame, fail the transfer
 * once the frames before them are handled (a transfer that ended well has failed nothing). Call
 * `stop` when the transfer ends (it clears the idle timer).
 */
export function driveTransfer(call: SnapshotCall, h: TransferHandler): { stop(): void } {
  let chain: Promise<void> = Promise.resolve();
  let idle: ReturnType<typeof setTimeout> | undefined;
  const failLater = (why: string): void => {
    chain = chain.then(() => h.fail(new KeyVaError('UNAVAILABLE', why)));
  };
  const watchIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => failLater(`snapshot stream idle for ${SNAPSHOT_IDLE_TIMEOUT_MS} ms`), SNAPSHOT_IDLE_TIMEOUT_MS);
  };
  watchIdle();
  const queue = new FrameQueue(call);
  call.on('data', (f: SnapshotFrameOut) => {
    watchIdle();
    const size = queue.add(f);
    chain = chain
      .then(() => h.onFrame(f))
      .then(
        () => {
          if (!h.finished()) queue.done(size);
        },
        (e: Error) => h.fail(e),
      );
  });
  call.on('end', () => failLater('snapshot stream ended before its last frame'));
  call.on('error', () => failLater('snapshot stream broke off'));
  call.on('cancelled', () => failLater('snapshot stream cancelled by the sender'));
  return { stop: () => clearTimeout(idle) };
}
