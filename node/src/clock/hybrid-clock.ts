/**
 * Hybrid logical clock: timestamps are `(unixMs << 16) | logical`, strictly increasing per
 * node even when the wall clock stalls or steps back. The wall clock is injected.
 */
import type { Timestamp } from '../engine/types.ts';

export interface WallClock {
  nowMs(): number;
}

export const systemClock: WallClock = { nowMs: () => Date.now() };

const LOGICAL_BITS = 16n;

export function tsFromMs(ms: number): Timestamp {
  return BigInt(Math.floor(ms)) << LOGICAL_BITS;
}

/** The later of two timestamps. */
export function maxTs(a: Timestamp, b: Timestamp): Timestamp {
  return a > b ? a : b;
}

export function msFromTs(ts: Timestamp): number {
  return Number(ts >> LOGICAL_BITS);
}

export class HybridClock {
  private last: Timestamp = 0n;
  private readonly wall: WallClock;

  constructor(wall: WallClock = systemClock) {
    this.wall = wall;
  }

  /** A fresh timestamp, greater than every one returned or observed before. */
  now(): Timestamp {
    const physical = tsFromMs(this.wall.nowMs());
    this.last = physical > this.last ? physical : this.last + 1n;
    return this.last;
  }

  /** The latest timestamp handed out (0n before the first). */
  current(): Timestamp {
    return this.last;
  }

  /** Moves the clock past a timestamp seen elsewhere (e.g. stored data after restart). */
  observe(ts: Timestamp): void {
    if (ts > this.last) this.last = ts;
  }

  nowMs(): number {
    return this.wall.nowMs();
  }
}
