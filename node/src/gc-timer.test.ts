import { afterEach, describe, expect, it, vi } from 'vitest';
import { GC_DUTY_MAX, nextPassDelayMs, startGcTimer } from './gc-timer.ts';

afterEach(() => {
  vi.useRealTimers();
});

/** A GC pass that takes `ms` of (fake) time; records when each pass started. */
function passTaking(ms: () => number, starts: number[], t0: number) {
  return () => {
    starts.push(Date.now() - t0);
    return new Promise<void>((resolve) => setTimeout(resolve, ms()));
  };
}

describe('the version GC timer', () => {
  it('runs first after the random share of one interval, then every interval, until stopped', async () => {
    vi.useFakeTimers();
    const starts: number[] = [];
    const t0 = Date.now();
    const stop = startGcTimer({ intervalMs: 60_000, random: () => 0.25, run: passTaking(() => 1_000, starts, t0) });
    await vi.advanceTimersByTimeAsync(14_999);
    expect(starts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts).toEqual([15_000]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(starts).toEqual([15_000, 75_000, 135_000]);
    stop();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(starts).toHaveLength(3);
  });

  it('a long pass pushes the next one out: passes take at most the duty share of the time, and never overlap', async () => {
    vi.useFakeTimers();
    const starts: number[] = [];
    const t0 = Date.now();
    let running = 0;
    let overlapped = false;
    const stop = startGcTimer({
      intervalMs: 60_000,
      random: () => 0,
      run: async () => {
        starts.push(Date.now() - t0);
        overlapped ||= running > 0;
        running++;
        await new Promise((r) => setTimeout(r, 12_000)); // 12 s passes: 120 s apart at a tenth
        running--;
      },
    });
    await vi.advanceTimersByTimeAsync(500_000);
    stop();
    expect(starts).toEqual([0, 120_000, 240_000, 360_000, 480_000]);
    expect(overlapped).toBe(false);
  });

  it('a pass that fails still plans the next one', async () => {
    vi.useFakeTimers();
    let n = 0;
    const stop = startGcTimer({ intervalMs: 1_000, random: () => 0, run: () => (n++ === 0 ? Promise.reject(new Error('disk')) : Promise.resolve()) });
    await vi.advanceTimersByTimeAsync(2_500);
    stop();
    expect(n).toBe(3);
  });

  it('replicas started together spread their first passes over the interval', async () => {
    vi.useFakeTimers();
    const firsts: number[] = [];
    const t0 = Date.now();
    const stops = [0.1, 0.5, 0.9].map((share) => startGcTimer({ intervalMs: 60_000, random: () => share, run: passTaking(() => 0, firsts, t0) }));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(firsts).toEqual([6_000, 30_000, 54_000]);
    for (const s of stops) s();
  });

  it('stopped before its first pass, or during one, it runs no more', async () => {
    vi.useFakeTimers();
    const run = vi.fn(() => Promise.resolve());
    startGcTimer({ intervalMs: 1000, random: () => 0.5, run })();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(run).not.toHaveBeenCalled();
    const starts: number[] = [];
    const stop = startGcTimer({ intervalMs: 1000, random: () => 0, run: passTaking(() => 500, starts, Date.now()) });
    await vi.advanceTimersByTimeAsync(100);
    stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(starts).toHaveLength(1);
  });

  it('the delay after a pass: the interval minus the pass, or the pass over the duty share minus the pass', () => {
    expect(nextPassDelayMs(60_000, 1_000, GC_DUTY_MAX)).toBe(59_000);
    expect(nextPassDelayMs(60_000, 6_000, 0.1)).toBe(54_000);
    expect(nextPassDelayMs(60_000, 12_000, 0.1)).toBe(108_000);
    expect(nextPassDelayMs(1_000, 1_000, 1)).toBe(0);
  });

  it('rejects a random source outside [0, 1) and a duty share outside (0, 1]', () => {
    const run = () => Promise.resolve();
    expect(() => startGcTimer({ intervalMs: 1000, random: () => 1, run })).toThrow(/random\(\) must return a number in \[0, 1\), got 1/);
    expect(() => startGcTimer({ intervalMs: 1000, dutyMax: 0, run })).toThrow(/dutyMax must be in \(0, 1\], got 0/);
  });
});
