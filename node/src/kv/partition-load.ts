/**
 * Requests per second per partition on this node, for the placement planner's load (hot-spot)
 * splits (ADR 0009 amendment): an exponentially decaying count per partition (time constant
 * `tauMs`), bumped once per key read and once per key written. Cheap enough for every request:
 * one map lookup and one `exp` per bump. Time is injected.
 */
export const LOAD_TAU_MS = 10_000;

export class PartitionLoad {
  private readonly counts = new Map<number, { n: number; at: number }>();
  private readonly tauMs: number;
  private readonly now: () => number;

  constructor(tauMs = LOAD_TAU_MS, now: () => number = () => performance.now()) {
    this.tauMs = tauMs;
    this.now = now;
  }

  /** Records `n` operations on `partitionId` now. */
  hit(partitionId: number, n = 1): void {
    const t = this.now();
    const c = this.counts.get(partitionId);
    if (c === undefined) this.counts.set(partitionId, { n, at: t });
    else {
      c.n = c.n * Math.exp(-(t - c.at) / this.tauMs) + n;
      c.at = t;
    }
  }

  /** Operations per second on `partitionId`, averaged over about the last `tauMs`. */
  rate(partitionId: number): number {
    const c = this.counts.get(partitionId);
    if (c === undefined) return 0;
    return (c.n * Math.exp(-(this.now() - c.at) / this.tauMs) * 1000) / this.tauMs;
  }
}
