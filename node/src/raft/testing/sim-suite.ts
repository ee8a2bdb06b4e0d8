/**
 * Runs many simulator seeds for a test file and explains the first failure: it replays the
 * failing seed with tracing on (determinism makes the replay exact) and prints the tail of the
 * trace and the one-line command that reproduces it.
 */
import { replayCommand, runSimulation, type SimulationOptions, type SimulationResult } from './simulator.ts';

export interface SweepOutcome {
  readonly runs: number;
  readonly failures: readonly SimulationResult[];
  readonly ms: number;
  /** Totals over all runs, for the report. */
  readonly totals: { ticks: number; delivered: number; elections: number; crashes: number; snapshots: number; confChanges: number; reads: number };
  /** A human-readable explanation of the first failure (empty if none). */
  readonly report: string;
}

/** Seeds per cluster size in CI: 3 voters in simulation.test.ts, 5 in simulation-five.test.ts. */
export const SEEDS_PER_SIZE = 1000;
/** Ticks of the fault phase per seed (a heal phase follows). */
export const STEPS_PER_SEED = 300;

const TRACE_TAIL_LINES = 80;

export function sweep(seeds: readonly number[], base: Omit<SimulationOptions, 'seed'>, now: () => number): SweepOutcome {
  const start = now();
  const failures: SimulationResult[] = [];
  const totals = { ticks: 0, delivered: 0, elections: 0, crashes: 0, snapshots: 0, confChanges: 0, reads: 0 };
  for (const seed of seeds) {
    const r = runSimulation({ ...base, seed });
    totals.ticks += r.stats.ticks;
    totals.delivered += r.stats.delivered;
    totals.elections += r.stats.elections;
    totals.crashes += r.stats.crashes;
    totals.snapshots += r.stats.snapshotsSent;
    totals.confChanges += r.stats.confChanges;
    totals.reads += r.stats.reads;
    if (!r.ok) failures.push(r);
  }
  const first = failures[0];
  let report = '';
  if (first !== undefined) {
    const replay = runSimulation({ ...base, seed: first.seed, trace: true });
    report = [
      `${failures.length} of ${seeds.length} seeds failed: ${failures.map((f) => f.seed).join(', ')}`,
      `first failure (seed ${first.seed}): ${first.failure}`,
      `fault profile: ${JSON.stringify(first.profile)}`,
      `last ${TRACE_TAIL_LINES} trace lines:`,
      ...replay.trace.slice(-TRACE_TAIL_LINES),
      `replay exactly this run with: ${replayCommand(first.seed, base.voters, base)}`,
    ].join('\n');
  }
  return { runs: seeds.length, failures, ms: now() - start, totals, report };
}

export function seedRange(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}
