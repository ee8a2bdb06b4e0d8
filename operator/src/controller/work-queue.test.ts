import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WorkQueue } from './work-queue.ts';

function fakeClock(start = 1000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('WorkQueue', () => {
  it('de-duplicates keys waiting in the queue', () => {
    const q = new WorkQueue(fakeClock());
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.length).toBe(2);
    expect(q.get()).toBe('ns/a');
    expect(q.get()).toBe('ns/b');
    expect(q.get()).toBeUndefined();
  });

  it('never hands one key to two workers, and re-queues a key that changed while processing', () => {
    const q = new WorkQueue(fakeClock());
    q.add('ns/a');
    const k = q.get();
    expect(k).toBe('ns/a');
    q.add('ns/a'); // an informer event while a worker holds the key
    expect(q.get()).toBeUndefined(); // a second worker does not get it
    q.add('ns/a'); // still one pending re-run
    q.done('ns/a');
    expect(q.get()).toBe('ns/a');
    q.done('ns/a');
    expect(q.get()).toBeUndefined();
  });

  it('does not re-queue a key that did not change while processing', () => {
    const q = new WorkQueue(fakeClock());
    q.add('k');
    q.get();
    q.done('k');
    expect(q.length).toBe(0);
    expect(q.nextDueMs()).toBeUndefined();
  });

  it('backs off per key exponentially, capped, and forget() resets it', () => {
    const clock = fakeClock();
    const q = new WorkQueue(clock, { backoffBaseMs: 100, backoffMaxMs: 1000 });
    const delays = [1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('k'));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(q.addRateLimited('other')).toBe(100); // per key
    q.forget('k');
    expect(q.failuresOf('k')).toBe(0);
    expect(q.addRateLimited('k')).toBe(100);
  });

  it('hands out delayed keys when due, keeping the earliest due time', () => {
    const clock = fakeClock();
    const q = new WorkQueue(clock);
    q.addAfter('k', 500);
    q.addAfter('k', 2000); // later: ignored
    q.addAfter('j', 300);
    expect(q.get()).toBeUndefined();
    expect(q.nextDueMs()).toBe(300);
    clock.advance(300);
    expect(q.get()).toBe('j');
    expect(q.nextDueMs()).toBe(200);
    clock.advance(200);
    expect(q.get()).toBe('k');
    expect(q.nextDueMs()).toBeUndefined();
  });

  it('an immediate add supersedes a pending delay', () => {
    const q = new WorkQueue(fakeClock());
    q.addAfter('k', 10_000);
    q.add('k');
    expect(q.get()).toBe('k');
    q.done('k');
    expect(q.nextDueMs()).toBeUndefined();
  });

  it('a delayed key that comes due while processing waits for done()', () => {
    const clock = fakeClock();
    const q = new WorkQueue(clock);
    q.add('k');
    q.get();
    q.addAfter('k', 100);
    clock.advance(100);
    expect(q.get()).toBeUndefined();
    q.done('k');
    expect(q.get()).toBe('k');
  });

  it('shutDown drops pending work and refuses new keys', () => {
    const q = new WorkQueue(fakeClock());
    q.add('a');
    q.addAfter('b', 10);
    q.shutDown();
    q.add('c');
    expect(q.get()).toBeUndefined();
    expect(q.nextDueMs()).toBeUndefined();
  });

  it('property: with N workers, no key is ever processed twice at once and every added key is eventually processed', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('add' as const), k: fc.integer({ min: 0, max: 4 }) }),
      fc.record({ t: fc.constant('addAfter' as const), k: fc.integer({ min: 0, max: 4 }), d: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ t: fc.constant('fail' as const), k: fc.integer({ min: 0, max: 4 }) }),
      fc.record({ t: fc.constant('get' as const) }),
      fc.record({ t: fc.constant('done' as const), i: fc.nat() }),
      fc.record({ t: fc.constant('tick' as const), d: fc.integer({ min: 1, max: 100 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const clock = fakeClock();
        const q = new WorkQueue(clock, { backoffBaseMs: 5, backoffMaxMs: 40 });
        const held: string[] = [];
        const pending = new Set<string>(); // added since its last hand-out
        for (const o of ops) {
          if (o.t === 'add') {
            q.add(`k${o.k}`);
            pending.add(`k${o.k}`);
          } else if (o.t === 'addAfter') {
            q.addAfter(`k${o.k}`, o.d);
            pending.add(`k${o.k}`);
          } else if (o.t === 'fail') {
            q.addRateLimited(`k${o.k}`);
            pending.add(`k${o.k}`);
          } else if (o.t === 'get') {
            const k = q.get();
            if (k !== undefined) {
              expect(held).not.toContain(k);
              held.push(k);
              pending.delete(k);
            }
          } else if (o.t === 'done') {
            if (held.length) q.done(held.splice(o.i % held.length, 1)[0] as string);
          } else clock.advance(o.d);
        }
        for (const k of held.splice(0)) q.done(k);
        // Drain: everything still pending must come out, each key once at a time.
        for (let i = 0; i < 1000 && pending.size; i++) {
          const k = q.get();
          if (k === undefined) {
            clock.advance(q.nextDueMs() ?? 1);
            continue;
          }
          pending.delete(k);
          q.done(k);
        }
        expect([...pending]).toEqual([]);
      }),
    );
  });
});
