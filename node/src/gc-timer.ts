/**
 * When a node runs version GC: every `intervalMs`, the first run after a random share of one
 * interval. Replicas of a partition are usually started together (a cluster, a rollout), and
 * with a fixed first delay every replica scanned its data at the same second, a minute after
 * start and every minute after: a GC scan occupies the storage writer, so all replicas of a
 * group were slow at once and the group's writes stalled for seconds (ADR 0009, "Moves without
 * stalls, part 2"). Spread over the interval, at most one replica of a quorum is usually busy.
 */
export interface GcTimerOptions {
  readonly intervalMs: number;
  /** One GC run; its failure is the caller's to log (the timer keeps going). */
  readonly run: () => void;
  /** A number in [0, 1): the share of one interval before the first run. */
  readonly random?: () => number;
  readonly timers?: {
    setTimeout(fn: () => void, ms: number): { unref?(): unknown };
    setInterval(fn: () => void, ms: number): { unref?(): unknown };
    clearTimeout(h: unknown): void;
    clearInterval(h: unknown): void;
  };
}

/** Starts the GC timer (unref'd: it never keeps the process alive); returns its stop. */
export function startGcTimer(o: GcTimerOptions): () => void {
  const timers = o.timers ?? globalThis;
  const share = (o.random ?? Math.random)();
  if (!(share >= 0 && share < 1)) throw new RangeError(`random() must return a number in [0, 1), got ${share}`);
  let interval: { unref?(): unknown } | undefined;
  let stopped = false;
  const first = timers.setTimeout(
    () => {
      if (stopped) return;
      o.run();
      interval = timers.setInterval(o.run, o.intervalMs);
      interval.unref?.();
    },
    Math.floor(share * o.intervalMs),
  );
  first.unref?.();
  return () => {
    stopped = true;
    timers.clearTimeout(first);
    if (interval !== undefined) timers.clearInterval(interval);
  };
}
