/**
 * Keeps commit timestamps increasing across restarts even if the wall clock steps back: a
 * persisted high-water mark lies `windowMs` ahead of every timestamp handed out. At start the
 * clock moves past the stored mark; while running the mark is extended before it is reached.
 */

import { metaKey } from '../engine/key-codec.ts';
import type { StorageEngine, Timestamp } from '../engine/types.ts';
import { type HybridClock, maxTs, tsFromMs } from './hybrid-clock.ts';

const HIGH_WATER_KEY = metaKey('clock-high-water');

export class ClockGuard {
  private persisted: Timestamp = 0n;
  private extending: Promise<void> | undefined;
  private readonly engine: StorageEngine;
  private readonly clock: HybridClock;
  private readonly windowMs: number;

  constructor(engine: StorageEngine, clock: HybridClock, windowMs = 10_000) {
    this.engine = engine;
    this.clock = clock;
    this.windowMs = windowMs;
  }

  /** Moves the clock past the stored mark, then persists a new one. */
  async start(): Promise<void> {
    const stored = await this.engine.getRaw(HIGH_WATER_KEY);
    if (stored && stored.length === 8) this.clock.observe(stored.readBigUInt64BE(0));
    await this.extend();
  }

  /** True when `ts` may be handed out without persisting a new mark first. */
  covers(ts: Timestamp): boolean {
    return ts < this.persisted;
  }

  /** Persists a mark `windowMs` ahead of now (single-flight). */
  extend(): Promise<void> {
    if (this.extending) return this.extending;
    const next = maxTs(this.clock.current() + tsFromMs(this.windowMs), tsFromMs(this.clock.nowMs() + this.windowMs));
    const value = Buffer.alloc(8);
    value.writeBigUInt64BE(next);
    this.extending = this.engine
      .write({ mutations: [{ type: 'rawPut', key: HIGH_WATER_KEY, value }], commitTs: this.clock.now(), nowMs: this.clock.nowMs(), sync: true })
      .then(() => {
        if (next > this.persisted) this.persisted = next;
      })
      .finally(() => {
        this.extending = undefined;
      });
    return this.extending;
  }

  /** Ensures the next timestamp is covered; extends early once half the window is used. */
  async ensure(): Promise<void> {
    const next = maxTs(this.clock.current() + 1n, tsFromMs(this.clock.nowMs()));
    if (next + tsFromMs(this.windowMs / 2) < this.persisted) return;
    const p = this.extend();
    if (!this.covers(next)) await p;
  }
}
