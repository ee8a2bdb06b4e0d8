/**
 * The slow-operation log with a budget: at most `perSecond` lines per one-second window; the
 * slow operations beyond it are counted and reported in one summary line when the next window
 * opens (with the slowest one's duration). An overloaded node (every request slow) would
 * otherwise write a log line per request, which costs a measurable share of the CPU it lacks
 * (a synchronous write each). Request durations stay complete in the metrics histograms.
 */
import type { Logger } from '../observability/logger.ts';

/** Slow-operation lines per second, at most, by default. */
export const SLOW_OP_LINES_PER_SECOND = 10;

export interface SlowOp {
  readonly method: string;
  readonly transport: string;
  readonly code: string;
  readonly ms: number;
}

export class SlowOpLog {
  private readonly log: Logger;
  private readonly perSecond: number;
  private readonly nowMs: () => number;
  private windowStart = Number.NEGATIVE_INFINITY;
  private logged = 0;
  private suppressed = 0;
  private suppressedMaxMs = 0;

  constructor(log: Logger, perSecond = SLOW_OP_LINES_PER_SECOND, nowMs: () => number = () => performance.now()) {
    this.log = log;
    this.perSecond = perSecond;
    this.nowMs = nowMs;
  }

  record(op: SlowOp): void {
    const now = this.nowMs();
    if (now - this.windowStart >= 1000) {
      if (this.suppressed > 0) {
        this.log.warn({ suppressed: this.suppressed, maxMs: this.suppressedMaxMs }, 'slow operations not logged (more than the log budget per second)');
      }
      this.windowStart = now;
      this.logged = 0;
      this.suppressed = 0;
      this.suppressedMaxMs = 0;
    }
    if (this.logged < this.perSecond) {
      this.logged++;
      this.log.warn({ method: op.method, transport: op.transport, code: op.code, ms: op.ms }, 'slow operation');
      return;
    }
    this.suppressed++;
    if (op.ms > this.suppressedMaxMs) this.suppressedMaxMs = op.ms;
  }
}
