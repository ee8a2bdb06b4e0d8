/**
 * LESSONS #14 (cockroach #19355, tidb #4598): after a restart every lease sat on one node and
 * 1 transfer/s took a day; elsewhere a leader ping-ponged 14 times in 10 minutes.
 */
import { describe, expect, it } from 'vitest';
import { ClusterView } from './cluster-view.ts';
import { balanceLeaders, leaderCounts } from './leader-balance.ts';
import { plan } from './plan.ts';
import { resolveSpec } from './spec.ts';
import { ControllerLoop, NO_FAULTS } from './testing/controller-loop.ts';
import { nodeList, settledSim } from './testing/fixtures.ts';
import { Prng, type SimCluster } from './testing/sim-cluster.ts';
import type { NodeId, PartitionId } from './types.ts';

const spec = (leaders = {}) =>
  resolveSpec({ zoneSpread: 'none', merge: { enabled: false }, leaders: { toleranceRatio: 0.1, cooldownMs: 30_000, transfersPerPlanMax: 16, ...leaders } });

/** Every partition led by the first voter in id order that is n0 if possible (as after a restart). */
function allOnN0(sim: SimCluster) {
  for (const p of sim.partitions) p.leader = p.replicas.some((r) => r.nodeId === 'n0') ? ('n0' as NodeId) : p.replicas[0]?.nodeId;
}

describe('LESSONS #14 — leaders are spread on purpose, batched and damped', () => {
  it('after a restart put every leader on one node, one plan moves a whole batch (not one a second)', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 48, replicationFactor: 3 });
    allOnN0(sim);
    const steps = plan(spec(), sim.observe(), sim.nowMs).steps;
    expect(steps).toHaveLength(16);
    expect(steps.every((s) => s.type === 'transferLeader')).toBe(true);
  });

  it('converges to within the tolerance, and then stops (no transfers in a balanced cluster)', () => {
    const sim = settledSim({ nodes: nodeList(4), partitions: 64, replicationFactor: 3 });
    allOnN0(sim);
    const s = spec();
    const loop = new ControllerLoop(s, sim, new Prng(1));
    const healed = loop.heal(400);
    expect(healed).toBeGreaterThan(0);
    const counts = leaderCounts(new ClusterView(s, sim.observe(), sim.nowMs));
    // Fair share of each node here = partitions it votes in / 3.
    for (const [n, c] of counts) {
      const share = sim.partitions.filter((p) => p.replicas.some((r) => r.nodeId === n)).length / 3;
      expect(c).toBeLessThanOrEqual(Math.ceil(share * 1.1));
    }
    expect(plan(s, sim.observe(), sim.nowMs + 3_600_000).steps).toEqual([]);
  });

  it('damping: a partition whose leader changed within the cooldown is not moved again (no ping-pong)', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 12, replicationFactor: 3 });
    allOnN0(sim);
    const s = spec({ cooldownMs: 60_000 });
    for (const p of sim.partitions) p.leaderChangedAtMs = sim.nowMs - 59_000;
    expect(plan(s, sim.observe(), sim.nowMs).steps).toEqual([]);
    const history = sim.partitions.map((p) => ({ kind: 'transferLeader' as const, partitionId: p.id, atMs: sim.nowMs - 1_000 }));
    for (const p of sim.partitions) p.leaderChangedAtMs = undefined;
    expect(plan(s, sim.observe(), sim.nowMs, history).steps).toEqual([]);
    expect(plan(s, sim.observe(), sim.nowMs).steps.length).toBeGreaterThan(0);
    // And over a long run no partition changes leader more than twice.
    const loop = new ControllerLoop(s, sim, new Prng(5));
    const perPartition = new Map<PartitionId, number>();
    for (let i = 0; i < 300; i++)
      for (const st of loop.round(NO_FAULTS).steps)
        if (st.type === 'transferLeader') perPartition.set(st.partitionId, (perPartition.get(st.partitionId) ?? 0) + 1);
    for (const c of perPartition.values()) expect(c).toBeLessThanOrEqual(2);
  });

  it('health-aware: leaders never go to a degraded node, and leave one that is degraded', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 12, replicationFactor: 3 });
    allOnN0(sim);
    sim.setHealth('n1', 'degraded');
    const steps = plan(spec(), sim.observe(), sim.nowMs).steps;
    expect(steps.length).toBeGreaterThan(0);
    for (const s of steps) if (s.type === 'transferLeader') expect(s.to).not.toBe('n1');
    for (const p of sim.partitions) p.leader = 'n1' as NodeId;
    const away = plan(spec(), sim.observe(), sim.nowMs).steps.filter((s) => s.type === 'transferLeader');
    expect(away).toHaveLength(12);
    for (const s of away) if (s.type === 'transferLeader') expect(s.to).not.toBe('n1');
  });

  it('leader balancing waits while replicas move, and skips partitions the checker is working on', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 12, replicationFactor: 3 });
    allOnN0(sim);
    const v = new ClusterView(spec(), sim.observe(), sim.nowMs);
    const all = new Set(sim.partitions.map((p) => p.id));
    expect(balanceLeaders(v, [], all)).toEqual([]);
    sim.addNode('n3');
    const p = plan(spec(), sim.observe(), sim.nowMs);
    expect(p.progress.movesInFlight).toBeGreaterThan(0);
    expect(p.steps.filter((s) => s.type === 'transferLeader' && s.reason.startsWith('balance'))).toEqual([]);
  });
});
