/**
 * When a node runs version GC.
 *
 * - The first pass starts after a random share of one interval. Replicas of a partition are
 *   usually started together (a cluster, a rollout). With a fixed first delay every replica
 *   scanned its data at the same second: a GC scan occupies the storage writer, so all replicas
 *   of a group were slow at once and the group's writes stalled for seconds (ADR 0009, "Moves
 *   without stalls, part 2"). Spread over the interval, at most one replica of a quorum is
 *   usually busy.
 * - Passes never overlap: the next one is planned when the last one ends.
 * - Passes start `intervalMs` apart, or further apart when a pass is long: passes take at most
 *   `dutyMax` of the time. A pass scans every version on the node, so its length grows with the
 *   data while the interval does not. At 256 MiB per node a pass held the writer thread for 10-13 s
 *   of every minute (session 18); at a few GiB, passes one minute apart would never stop.
 */
export interface GcTimerOptions {
  /** The least time from the start of one pass to the start of the next. */
  readonly intervalMs: number;
  /** One GC pass; settles when it is done. Its failure is the caller's to log (the timer keeps going). */
  readonly run: () => Promise<unknown>;
  /** The largest share of the time passes may take, in (0, 1] (default `GC_DUTY_MAX`). */
  readonly dutyMax?: number;
  /** A number in [0, 1): the share of one interval before the first pass. */
  readonly random?: () => number;
  readonly now?: () => number;
  readonly timers?: {
    setTimeout(fn: () => void, ms: number): { unref?(): unknown };
    clearTimeout(h: unknown): void;
  };
}

/** By default GC passes take at most a tenth of the time. */
export const GC_DUTY_MAX = 0.1;

/** How long after a pass of `passMs` the next one starts (see the file comment). */
export function nextPassDelayMs(intervalMs: number, passMs: number, dutyMax: number): number {
  return Math.max(intervalMs, passMs / dutyMax) - passMs;
}

/** Starts the GC timer (unref'd: it never keeps the process alive); returns its stop. */
export function startGcTimer(o: GcTimerOptions): () => void {
  const timers = o.timers ?? globalThis;
  const now = o.now ?? Date.now;
  const dutyMax = o.dutyMax ?? GC_DUTY_MAX;
  if (!(dutyMax > 0 && dutyMax <= 1)) throw new RangeError(`dutyMax must be in (0, 1], got ${dutyMax}`);
  const share = (o.random ?? Math.random)();
  if (!(share >= 0 && share < 1)) throw new RangeError(`random() must return a number in [0, 1), got ${share}`);
  let timer: unknown;
  let stopped = false;
  const plan = (ms: number): void => {
    const t = timers.setTimeout(pass, ms);
    t.unref?.();
    timer = t;
  };
  function pass(): void {
    if (stopped) return;
    const started = now();
    const done = (): void => {
      if (!stopped) plan(nextPassDelayMs(o.intervalMs, now() - started, dutyMax));
    };
    o.run().then(done, done);
  }
  plan(Math.floor(share * o.intervalMs));
  return () => {
    stopped = true;
    timers.clearTimeout(timer);
  };
}
