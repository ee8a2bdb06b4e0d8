/**
 * Per-follower progress: the probe/replicate/snapshot states and the inflight window.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Inflights, Progress, ProgressState } from './progress.ts';

describe('Inflights', () => {
  it('behaves as a bounded FIFO of increasing indexes, freed by acknowledgements', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.oneof(fc.constant('add' as const), fc.nat(40)), { maxLength: 40 }), (capacity, ops) => {
        const inf = new Inflights(capacity);
        const model: number[] = [];
        let next = 1;
        for (const op of ops) {
          if (op === 'add') {
            if (model.length >= capacity) {
              expect(() => inf.add(next)).toThrow();
            } else {
              inf.add(next);
              model.push(next);
            }
            next += 2;
          } else {
            inf.freeLE(op);
            while (model.length > 0 && (model[0] ?? 0) <= op) model.shift();
          }
          expect(inf.count).toBe(model.length);
          expect(inf.full()).toBe(model.length >= capacity);
        }
      }),
    );
  });

  it('refuses a non-positive capacity and non-increasing indexes', () => {
    expect(() => new Inflights(0)).toThrow(RangeError);
    const inf = new Inflights(4);
    inf.add(5);
    expect(() => inf.add(5)).toThrow();
  });
});

describe('Progress', () => {
  it('probe: one append at a time; an acknowledgement moves it on', () => {
    const pr = new Progress(10, 4, false);
    expect(pr.state).toBe(ProgressState.Probe);
    pr.sentEntries(3, 12);
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeUpdate(12)).toBe(true);
    expect([pr.match, pr.next, pr.isPaused()]).toEqual([12, 13, false]);
  });

  it('replicate: advances next optimistically and pauses when the window is full', () => {
    const pr = new Progress(5, 2, false);
    pr.maybeUpdate(4);
    pr.becomeReplicate();
    pr.sentEntries(2, 6);
    pr.sentEntries(2, 8);
    expect([pr.next, pr.isPaused()]).toEqual([9, true]);
    pr.maybeUpdate(6);
    pr.inflights.freeLE(6);
    expect(pr.isPaused()).toBe(false);
  });

  it('ignores stale rejections, and probes from the hint on a fresh one', () => {
    const pr = new Progress(20, 4, false);
    expect(pr.maybeDecrTo(15, 3)).toBe(false); // not the probe in flight (next - 1 = 19)
    expect(pr.maybeDecrTo(19, 7)).toBe(true);
    expect(pr.next).toBe(8);
    pr.maybeUpdate(9);
    pr.becomeReplicate();
    expect(pr.maybeDecrTo(8, 0)).toBe(false); // below match: an old answer
    expect(pr.maybeDecrTo(12, 0)).toBe(true);
    expect(pr.next).toBe(10);
  });

  it('snapshot: paused until the snapshot is acknowledged; probing resumes after it', () => {
    const pr = new Progress(3, 4, false);
    pr.becomeSnapshot(50);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr.next).toBe(51);
    expect(pr.state).toBe(ProgressState.Probe);
  });
});
