import { describe, expect, it } from 'vitest';
import { FollowerFreshness } from './follower-freshness.ts';

/** A barrier the test completes by hand, on a clock the test moves. */
function setup() {
  let now = 1000;
  const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const f = new FollowerFreshness(
    () =>
      new Promise<void>((resolve, reject) => {
        pending.push({ resolve, reject });
      }),
    () => now,
  );
  const tick = () => new Promise((r) => setImmediate(r));
  return {
    f,
    pending,
    tick,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('FollowerFreshness', () => {
  it('is never fresh before a barrier completed, and waits for one', async () => {
    const { f, pending, tick } = setup();
    expect(f.ageMs()).toBe(Number.POSITIVE_INFINITY);
    let served = false;
    const read = f.ensure(500).then(() => {
      served = true;
    });
    await tick();
    expect(pending).toHaveLength(1);
    expect(served).toBe(false);
    pending[0]?.resolve();
    await read;
    expect(served).toBe(true);
    expect(f.ageMs()).toBe(0);
  });

  it('serves at once within the bound and refreshes in the background past half of it', async () => {
    const { f, pending, tick, advance } = setup();
    f.confirm(1000);
    advance(200);
    await f.ensure(500);
    await tick();
    expect(pending).toHaveLength(0);
    advance(100); // age 300 > 250: served, and a refresh starts
    await f.ensure(500);
    await tick();
    expect(pending).toHaveLength(1);
    pending[0]?.resolve();
    await tick();
    await tick();
    expect(f.ageMs()).toBe(0);
  });

  it('measures staleness from the start of the barrier, not its end', async () => {
    const { f, pending, tick, advance } = setup();
    const read = f.ensure(500);
    await tick();
    advance(300); // the barrier takes 300 ms
    pending[0]?.resolve();
    await read;
    expect(f.ageMs()).toBe(300);
    advance(250);
    // 550 ms since the barrier began: too stale for 500, a new barrier is needed.
    let served = false;
    const next = f.ensure(500).then(() => {
      served = true;
    });
    await tick();
    expect(served).toBe(false);
    expect(pending).toHaveLength(2);
    pending[1]?.resolve();
    await next;
  });

  it('refuses when the barrier fails, and when even a new barrier is slower than the bound', async () => {
    const { f, pending, tick, advance } = setup();
    const failing = f.ensure(100);
    await tick();
    pending[0]?.reject(new Error('no leader'));
    await expect(failing).rejects.toThrow('no leader');
    const slow = f.ensure(100);
    await tick();
    advance(150);
    pending[1]?.resolve();
    await tick();
    await tick();
    advance(150);
    pending[2]?.resolve();
    await expect(slow).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('shares one barrier among concurrent reads', async () => {
    const { f, pending, tick } = setup();
    const reads = [f.ensure(500), f.ensure(500), f.ensure(500)];
    await tick();
    expect(pending).toHaveLength(1);
    pending[0]?.resolve();
    await Promise.all(reads);
  });

  it('takes confirmations from reads that ran their own barrier, keeping the newest', () => {
    const { f, advance } = setup();
    f.confirm(900);
    f.confirm(800);
    advance(0);
    expect(f.ageMs()).toBe(100);
  });
});
