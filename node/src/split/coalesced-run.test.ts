import { describe, expect, it } from 'vitest';
import { CoalescedRun } from './coalesced-run.ts';

describe('CoalescedRun', () => {
  it('runs one pass at a time; requests during a pass coalesce into one more; errors are reported; stop ends it', async () => {
    let passes = 0;
    let release: () => void = () => {};
    const errors: unknown[] = [];
    const run = new CoalescedRun(
      () => {
        passes++;
        if (passes === 3) return Promise.reject(new Error('boom'));
        return new Promise<void>((r) => {
          release = r;
        });
      },
      (e) => errors.push(e),
    );
    run.request();
    run.request();
    run.request();
    expect(passes).toBe(1);
    release();
    await new Promise((r) => setImmediate(r));
    expect(passes).toBe(2); // the three requests made one pass plus one
    release();
    await run.idle();
    run.request(); // the third pass fails
    await run.idle();
    expect(passes).toBe(3);
    expect(errors).toHaveLength(1);
    await run.stop();
    run.request();
    expect(passes).toBe(3);
  });
});
