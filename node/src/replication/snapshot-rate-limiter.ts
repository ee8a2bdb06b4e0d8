/**
 * Node-wide bandwidth limit of streamed snapshots (bytes per second, shared by every transfer
 * the node sends): a virtual clock that each chunk moves forward by its transmission time at
 * the configured rate; a sender waits until the clock, minus a burst allowance, is not ahead of
 * real time. Injected clock and sleep, for tests.
 */
export const SNAPSHOT_BYTES_PER_SECOND_DEFAULT = 64 << 20;

export interface RateLimiterOptions {
  readonly bytesPerSecond: number;
  /** Bytes that may go out at once above the rate (default: a quarter second's worth). */
  readonly burstBytes?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export class RateLimiter {
  private readonly o: RateLimiterOptions;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** When the bytes taken so far will have gone out at the rate (ms, `now()`'s clock). */
  private at = Number.NEGATIVE_INFINITY;

  constructor(o: RateLimiterOptions) {
    if (!(o.bytesPerSecond > 0)) throw new RangeError(`bytesPerSecond must be > 0, got ${o.bytesPerSecond}`);
    this.o = o;
    this.now = o.now ?? (() => performance.now());
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Waits until `bytes` more may be sent. */
  async take(bytes: number): Promise<void> {
    const now = this.now();
    const burstMs = ((this.o.burstBytes ?? this.o.bytesPerSecond / 4) * 1000) / this.o.bytesPerSecond;
    this.at = Math.max(this.at, now) + (bytes * 1000) / this.o.bytesPerSecond;
    const wait = this.at - burstMs - now;
    if (wait > 0) await this.sleep(wait);
  }
}
