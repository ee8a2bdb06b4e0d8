/**
 * The simulation sweep for 5-voter groups (a separate file so CI runs it in parallel with the
 * 3-voter sweep in simulation.test.ts, which documents the knobs).
 */
import { describe, expect, it } from 'vitest';
import { SEEDS_PER_SIZE, STEPS_PER_SEED, seedRange, sweep } from './testing/sim-suite.ts';

const env = process.env;
const seeds = Number(env.RAFT_SEEDS ?? SEEDS_PER_SIZE);
const firstSeed = Number(env.RAFT_FIRST_SEED ?? 1);
const steps = Number(env.RAFT_STEPS ?? STEPS_PER_SEED);

describe('Raft simulation, 5 voters', () => {
  // RAFT_SEED replays one seed through simulation.test.ts; this sweep then has nothing to add.
  const sweepSeeds = env.RAFT_SEED === undefined ? seeds : 0;
  it(`keeps every invariant and converges after healing: ${seeds} seeds × 5 voters`, () => {
    const out = sweep(seedRange(firstSeed, sweepSeeds), { voters: 5, steps }, () => performance.now());
    console.log(`5 voters: ${out.runs} seeds in ${(out.ms / 1000).toFixed(1)} s; ${JSON.stringify(out.totals)}`);
    expect(out.failures.length, out.report).toBe(0);
  });
});
