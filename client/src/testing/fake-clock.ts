/**
 * Test doubles for time and randomness: a clock whose `sleep` advances virtual time at once
 * (recording every delay), and a seeded PRNG (mulberry32) so backoff jitter replays exactly.
 */
import type { Clock } from '../clock.ts';
import { cancelledError } from '../clock.ts';

export class FakeClock implements Clock {
  /** Virtual now, ms. */
  t: number;
  /** Every sleep requested, in order. */
  readonly sleeps: number[] = [];

  constructor(start = 1_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw cancelledError(signal);
    this.sleeps.push(ms);
    this.t += ms;
  }
}

/** A clock on real time whose sleeps return at once (recorded): for tests against real gRPC. */
export class InstantSleepClock implements Clock {
  readonly sleeps: number[] = [];

  now(): number {
    return Date.now();
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw cancelledError(signal);
    this.sleeps.push(ms);
  }
}

/** Seeded PRNG in [0, 1): mulberry32. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
