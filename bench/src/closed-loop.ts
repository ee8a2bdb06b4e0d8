/**
 * A closed-loop load driver: `concurrency` workers each run `op` back to back until the
 * duration is over (bounded in time and, optionally, in count), recording each latency.
 */
import { type LatencySummary, newHistogram, summarize } from './histogram.ts';

export interface LoadResult {
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly latency: LatencySummary;
  /** CPU seconds used by this (client) process during the run. */
  readonly clientCpuSec: number;
}

export interface LoadOptions {
  readonly concurrency: number;
  readonly durationMs: number;
  readonly warmupMs?: number;
  readonly opsMax?: number;
}

export async function closedLoop(o: LoadOptions, op: (worker: number, i: number) => Promise<unknown>): Promise<LoadResult> {
  if (o.warmupMs) {
    const until = performance.now() + o.warmupMs;
    await Promise.all(
      Array.from({ length: o.concurrency }, async (_, w) => {
        for (let i = 0; performance.now() < until; i++) await op(w, -1 - i).catch(() => undefined);
      }),
    );
  }
  const h = newHistogram();
  let ops = 0;
  let errors = 0;
  const opsMax = o.opsMax ?? Number.POSITIVE_INFINITY;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  await Promise.all(
    Array.from({ length: o.concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < end && ops + errors < opsMax; i++) {
        const s = performance.now();
        try {
          await op(w, i);
          ops++;
          h.recordValue(Math.max(1, Math.round((performance.now() - s) * 1000)));
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { ops, errors, seconds, opsPerSec: ops / seconds, latency: summarize(h), clientCpuSec: (cpu.user + cpu.system) / 1e6 };
}
