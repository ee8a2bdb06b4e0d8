/**
 * The controller crashes; the cluster still converges. A simulated data plane (testing/
 * sim-cluster.ts) runs the planner's steps through a test controller that loses its memory at
 * random points, delivers some steps late (planned on an older observation) and loses others,
 * while the cluster grows, shrinks, splits and merges. After every round the invariant checker
 * must find nothing and the data plane must not have seen an unsafe change; a final fault-free
 * phase must converge to the target placement with every decommissioned node removed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { voters } from './cluster-view.ts';
import { checkInvariants } from './invariants.ts';
import { plan } from './plan.ts';
import { targetPlacement } from './target.ts';
import { nodeList, settledSim } from './testing/fixtures.ts';
import { runScenario as run } from './testing/scenario.ts';
import type { NodeId, PartitionId } from './types.ts';

const scenario = fc.record({
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  nodes: fc.integer({ min: 3, max: 6 }),
  partitions: fc.integer({ min: 4, max: 16 }),
  addNodes: fc.integer({ min: 0, max: 2 }),
  decommission: fc.integer({ min: 0, max: 2 }),
  crash: fc.constantFrom(0, 0.05, 0.3),
  delay: fc.constantFrom(0, 0.2, 0.5),
  loss: fc.constantFrom(0, 0.1, 0.3),
  grow: fc.constantFrom(0, 150_000),
  outage: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
  zones: fc.boolean(),
});

describe('LESSONS #4, #8, #9, #12 — simulation: a controller that crashes and restarts at random points', () => {
  it('property: invariants hold after every round, nothing unsafe reaches the data plane, and the cluster converges to the target', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { sim, loop, spec, healed, leaving } = run(sc);
        const where = `seed ${sc.seed}; last applied:\n${sim.applied.slice(-15).join('\n')}`;
        expect(sim.violations, where).toEqual([]);
        expect(loop.violations, where).toEqual([]);
        expect(healed, `did not converge: ${JSON.stringify(loop.lastPlan?.refusals)}; ${where}`).toBeGreaterThan(0);
        const o = sim.observe();
        expect(checkInvariants(o, 3)).toEqual([]);
        const p = plan(spec, o, sim.nowMs);
        expect(p.progress).toMatchObject({ movesInFlight: 0, movesRemaining: 0, partitionsBelowRF: 0 });
        // Converged means: every partition sits exactly on its target placement...
        const t = targetPlacement(spec, o, sim.nowMs).replicas;
        for (const q of o.partitions) {
          expect(
            voters(q)
              .map((r) => r.nodeId)
              .sort(),
          ).toEqual([...(t.get(q.id) ?? [])].sort());
          expect(q.replicas).toHaveLength(3);
        }
        // ...and every decommissioned node is gone, having held nothing when it went; or, when
        // that would leave fewer than RF nodes, the decommission is refused up front and saying so.
        if (sc.nodes + sc.addNodes - sc.decommission >= 3) for (const id of leaving) expect(sim.nodes.get(id)?.state).toBe('removed');
        else if (leaving.length > 0) {
          expect(p.refusals.map((r) => r.code)).toContain('BELOW_REPLICATION_FACTOR');
          expect([...sim.nodes.values()].filter((n) => n.state === 'active').length).toBeGreaterThanOrEqual(3);
        }
      }),
      { numRuns: 20 },
    );
  });

  it('the test controller really crashes, delays and loses steps, and the planner recovers (not a vacuous run)', () => {
    const { loop, sim, healed } = run({
      seed: 42,
      nodes: 4,
      partitions: 12,
      addNodes: 1,
      decommission: 1,
      crash: 0.3,
      delay: 0.5,
      loss: 0.3,
      grow: 150_000,
      outage: 1,
    });
    expect(loop.crashes).toBeGreaterThan(10);
    expect(healed).toBeGreaterThan(0);
    const stale = sim.applied.filter((l) => l.endsWith('stale generation')).length;
    expect(stale).toBeGreaterThan(0); // late steps were fenced, not applied
    expect(sim.applied.some((l) => / split /.test(l) && l.endsWith('ok'))).toBe(true);
    expect(sim.violations).toEqual([]);
  });

  it('the simulator catches an unsafe planner: removing a voter before its replacement is caught up is reported (and refused by the node)', () => {
    const sim = settledSim({ nodes: nodeList(4), partitions: 1, replicationFactor: 3 });
    const p = sim.partitions[0];
    if (!p) throw new Error('no partition');
    const nonLeader = voters(sim.observe().partitions[0] as never).find((r) => r.nodeId !== p.leader)?.nodeId as NodeId;
    sim.apply({ type: 'addLearner', partitionId: 0 as PartitionId, nodeId: 'n3' as NodeId, expectedGeneration: p.generation, reason: 'bad planner' });
    sim.apply({ type: 'removeReplica', partitionId: 0 as PartitionId, nodeId: nonLeader, expectedGeneration: p.generation, reason: 'bad planner' });
    expect(sim.violations.join()).toMatch(/leaving 2 healthy caught-up voters/);
    // The node-side guard refused it, so the data stayed on RF voters.
    expect(sim.applied.at(-1)).toMatch(/refused: would leave 2 caught-up voters$/);
    expect(checkInvariants(sim.observe(), 3)).toEqual([]);
  });
});
