/**
 * A transfer's frame queue: frames queue without pausing the call up to `RECEIVE_QUEUE_BYTES`
 * (a busy event loop then reads on instead of waiting a turn per frame), the call is paused past
 * it and resumed once the queue is below it again: bounded memory per transfer.
 */
import type { SnapshotFrameOut } from '@keyva/proto';
import { describe, expect, it } from 'vitest';
import { FrameQueue, RECEIVE_QUEUE_BYTES } from './snapshot-frame-queue.ts';

const MIB = 1 << 20;

function frame(sstBytes: number): SnapshotFrameOut {
  return { rows: Buffer.alloc(0), sstData: Buffer.alloc(sstBytes), message: Buffer.alloc(0) } as SnapshotFrameOut;
}

describe('FrameQueue', () => {
  it('pauses the call only past RECEIVE_QUEUE_BYTES queued, and resumes it below', () => {
    const calls: string[] = [];
    const q = new FrameQueue({ pause: () => calls.push('pause'), resume: () => calls.push('resume') });
    const sizes: number[] = [];
    const perFrame = MIB;
    for (let i = 0; i < RECEIVE_QUEUE_BYTES / perFrame - 1; i++) sizes.push(q.add(frame(perFrame)));
    expect(calls).toEqual([]); // 7 MiB queued: reading goes on
    sizes.push(q.add(frame(perFrame)));
    expect(calls).toEqual(['pause']);
    sizes.push(q.add(frame(perFrame))); // already paused: no second pause
    expect(calls).toEqual(['pause']);
    q.done(sizes.shift() as number); // 8 MiB left: still at the bound
    expect(calls).toEqual(['pause']);
    q.done(sizes.shift() as number);
    expect(calls).toEqual(['pause', 'resume']);
    for (const s of sizes) q.done(s);
    expect(calls).toEqual(['pause', 'resume']);
  });

  it('counts a frame without bulk bytes as one byte (a header or done frame never frees more than it took)', () => {
    const q = new FrameQueue({ pause: () => undefined, resume: () => undefined });
    expect(q.add(frame(0))).toBe(1);
    expect(q.add({ ...frame(0), message: Buffer.alloc(30) } as SnapshotFrameOut)).toBe(30);
  });
});
