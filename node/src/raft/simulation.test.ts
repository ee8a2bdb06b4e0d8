/**
 * Deterministic simulation of Raft groups under faults (see testing/simulator.ts). Each seed is
 * one complete run; CI runs SEEDS_PER_SIZE seeds per cluster size (testing/sim-suite.ts).
 *
 *   RAFT_SEED=123 RAFT_VOTERS=5 npx vitest run node/src/raft/simulation.test.ts   # replay one seed, with its trace
 *     (a failing sweep prints this line, with RAFT_STEPS/RAFT_READS/RAFT_PROFILE when it used them)
 *   RAFT_SEEDS=20000 RAFT_FIRST_SEED=5000 npx vitest run node/src/raft/simulation  # a longer soak
 */
import { describe, expect, it } from 'vitest';
import { SEEDS_PER_SIZE, STEPS_PER_SEED, seedRange, sweep } from './testing/sim-suite.ts';
import { type FaultProfile, replayCommand, runSimulation } from './testing/simulator.ts';
import { ReadOnlyOption } from './types.ts';

const env = process.env;
const seeds = Number(env.RAFT_SEEDS ?? SEEDS_PER_SIZE);
const firstSeed = Number(env.RAFT_FIRST_SEED ?? 1);
const steps = Number(env.RAFT_STEPS ?? STEPS_PER_SEED);
const replaySeed = env.RAFT_SEED === undefined ? undefined : Number(env.RAFT_SEED);

describe('Raft simulation', () => {
  if (replaySeed !== undefined) {
    it(`replays seed ${replaySeed}`, () => {
      const voters = Number(env.RAFT_VOTERS ?? 3);
      const options = {
        steps,
        ...(env.RAFT_READS === 'lease' ? { readOnlyOption: ReadOnlyOption.Lease } : {}),
        ...(env.RAFT_LAZY_COMMIT === '1' ? { lazyCommitBroadcast: true } : {}),
        ...(env.RAFT_PROFILE === undefined ? {} : { profile: JSON.parse(env.RAFT_PROFILE) as Partial<FaultProfile> }),
      };
      const r = runSimulation({ seed: replaySeed, voters, trace: true, ...options });
      console.log(r.trace.join('\n'));
      console.log(JSON.stringify({ profile: r.profile, stats: r.stats, traceHash: r.traceHash }));
      expect(r.failure, replayCommand(replaySeed, voters, options)).toBeUndefined();
    });
    return;
  }

  it(`keeps every invariant and converges after healing: ${seeds} seeds × 3 voters`, () => {
    const out = sweep(seedRange(firstSeed, seeds), { voters: 3, steps }, () => performance.now());
    console.log(`3 voters: ${out.runs} seeds in ${(out.ms / 1000).toFixed(1)} s; ${JSON.stringify(out.totals)}`);
    expect(out.failures.length, out.report).toBe(0);
  });

  it(`with lazy commit broadcast (the node runtime's setting) keeps every invariant and converges: ${Math.min(seeds, 500)} seeds × 3 voters`, () => {
    const out = sweep(seedRange(firstSeed, Math.min(seeds, 500)), { voters: 3, steps, lazyCommitBroadcast: true }, () => performance.now());
    expect(out.failures.length, out.report).toBe(0);
  });

  it('lease reads with lazy commit broadcast stay linearizable: 200 seeds × 3 voters', () => {
    const out = sweep(
      seedRange(firstSeed, Math.min(seeds, 200)),
      { voters: 3, steps, lazyCommitBroadcast: true, readOnlyOption: ReadOnlyOption.Lease, profile: { pauseRate: 0, readRate: 0.3 } },
      () => performance.now(),
    );
    expect(out.failures.length, out.report).toBe(0);
  });

  it('lease reads stay linearizable while clocks are sound (no pauses): 200 seeds × 3 voters', () => {
    const out = sweep(
      seedRange(firstSeed, Math.min(seeds, 200)),
      { voters: 3, steps, readOnlyOption: ReadOnlyOption.Lease, profile: { pauseRate: 0, readRate: 0.3 } },
      () => performance.now(),
    );
    expect(out.failures.length, out.report).toBe(0);
  });

  it('is deterministic: one seed gives the same trace twice, and seeds differ', () => {
    for (const seed of [7, 1234, 99_991]) {
      const a = runSimulation({ seed, voters: 5, steps: 200 });
      const b = runSimulation({ seed, voters: 5, steps: 200 });
      expect(b.traceHash).toBe(a.traceHash);
      expect(b.stats).toEqual(a.stats);
      const traced = runSimulation({ seed, voters: 5, steps: 200, trace: true });
      expect(traced.traceHash).toBe(a.traceHash);
    }
    const hashes = new Set(seedRange(1, 20).map((seed) => runSimulation({ seed, voters: 3, steps: 100 }).traceHash));
    expect(hashes.size).toBe(20);
  });
});
