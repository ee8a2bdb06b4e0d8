import { afterEach, describe, expect, it, vi } from 'vitest';
import { startGcTimer } from './gc-timer.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('the version GC timer', () => {
  it('runs first after the random share of one interval, then every interval, until stopped', () => {
    vi.useFakeTimers();
    const runs: number[] = [];
    const t0 = Date.now();
    const stop = startGcTimer({ intervalMs: 60_000, random: () => 0.25, run: () => runs.push(Date.now() - t0) });
    vi.advanceTimersByTime(14_999);
    expect(runs).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(runs).toEqual([15_000]);
    vi.advanceTimersByTime(120_000);
    expect(runs).toEqual([15_000, 75_000, 135_000]);
    stop();
    vi.advanceTimersByTime(600_000);
    expect(runs).toHaveLength(3);
  });

  it('replicas started together spread their runs over the interval', () => {
    vi.useFakeTimers();
    const firsts: number[] = [];
    const t0 = Date.now();
    const stops = [0.1, 0.5, 0.9].map((share) => startGcTimer({ intervalMs: 60_000, random: () => share, run: () => firsts.push(Date.now() - t0) }));
    vi.advanceTimersByTime(60_000);
    expect(firsts).toEqual([6_000, 30_000, 54_000]);
    for (const s of stops) s();
  });

  it('stopped before its first run, it never runs', () => {
    vi.useFakeTimers();
    const run = vi.fn();
    startGcTimer({ intervalMs: 1000, random: () => 0.5, run })();
    vi.advanceTimersByTime(10_000);
    expect(run).not.toHaveBeenCalled();
  });

  it('rejects a random source outside [0, 1)', () => {
    expect(() => startGcTimer({ intervalMs: 1000, random: () => 1, run: () => {} })).toThrow(/random\(\) must return a number in \[0, 1\), got 1/);
  });
});
