/**
 * How the node process reacts to SIGINT/SIGTERM: the first signal starts a graceful stop; a
 * later one stops at once (an impatient operator), unless it arrives within `sameStopMs` of the
 * first. A Ctrl-C in a terminal reaches the whole foreground process group: `keyva dev` and the
 * nodes it runs get SIGINT together, and the supervisor then forwards its own graceful stop
 * (SIGTERM) a few milliseconds later. That is the same stop request, not a second one, and used
 * to cut every graceful stop short (exit code 1, no leadership hand-off).
 */
export const SAME_STOP_MS = 1_000;

export interface StopSignalHandlers {
  /** The graceful stop (called once). */
  readonly stop: (signal: string) => void;
  /** A second request, later than `sameStopMs` after the first: exit now. */
  readonly force: (signal: string) => void;
  /** A signal taken as part of the first request (logged, nothing else). */
  readonly repeated?: (signal: string) => void;
  readonly nowMs?: () => number;
  readonly sameStopMs?: number;
}

/** The signal handler implementing that policy. */
export function stopSignalHandler(h: StopSignalHandlers): (signal: string) => void {
  const now = h.nowMs ?? (() => performance.now());
  let firstAt: number | undefined;
  return (signal) => {
    if (firstAt === undefined) {
      firstAt = now();
      h.stop(signal);
    } else if (now() - firstAt < (h.sameStopMs ?? SAME_STOP_MS)) h.repeated?.(signal);
    else h.force(signal);
  };
}
