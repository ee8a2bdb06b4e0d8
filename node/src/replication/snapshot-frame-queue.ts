/**
 * What both receivers of a snapshot transfer share (`snapshot-receiver.ts` on the event loop,
 * `snapshot-socket-worker.ts` on the snapshot socket's thread): how many frames and staging
 * writes a transfer keeps queued, and how long it may stay silent.
 */
import type { SnapshotFrameOut } from '@keyva/proto';

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
