/**
 * The user's policy knobs (KeyVaCluster spec.rebalance / spec.split, fed to the planner by the
 * operator): balancing off, a per-minute limit on new moves, automatic splits off.
 */
import { describe, expect, it } from 'vitest';
import { recordIssued } from './history.ts';
import { plan } from './plan.ts';
import { resolveSpec } from './spec.ts';
import { nodeList, settledSim } from './testing/fixtures.ts';
import { Prng } from './testing/sim-cluster.ts';
import type { NodeId, PlannerHistory } from './types.ts';

const spec = (o: Parameters<typeof resolveSpec>[0] = {}) => resolveSpec({ zoneSpread: 'none', ...o });
const rng = new Prng(11);

describe('moves.rebalance = false: no balancing moves, repairs and drains still happen', () => {
  it('a node added to a settled cluster gets nothing (with rebalance on it would)', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 24, replicationFactor: 3 });
    sim.addNode('n3');
    const off = plan(spec({ moves: { rebalance: false } }), sim.observe(), sim.nowMs);
    expect(off.steps.filter((s) => s.type !== 'transferLeader')).toEqual([]);
    expect(off.progress.movesRemaining).toBe(0);
    const on = plan(spec(), sim.observe(), sim.nowMs);
    expect(on.steps.some((s) => s.type === 'addLearner' && s.nodeId === 'n3')).toBe(true);
  });

  it('a partition below RF is still repaired, and a draining node is still evacuated and removed', () => {
    const sim = settledSim({ nodes: nodeList(5), partitions: 12, replicationFactor: 3 });
    const s = spec({ moves: { rebalance: false }, decommission: ['n1' as NodeId] });
    const p0 = sim.partitions[0];
    if (!p0) throw new Error('no partition');
    p0.replicas = p0.replicas.filter((r) => r.nodeId === p0.leader || r !== p0.replicas.find((x) => x.nodeId !== p0.leader));
    const first = plan(s, sim.observe(), sim.nowMs);
    expect(first.steps.find((x) => x.type === 'addLearner' && x.partitionId === p0.id)).toBeDefined();
    for (let i = 0; i < 400 && sim.nodes.get('n1' as NodeId)?.state !== 'removed'; i++) {
      for (const step of plan(s, sim.observe(), sim.nowMs).steps) sim.apply(step);
      sim.tick(rng);
    }
    expect(sim.nodes.get('n1' as NodeId)?.state).toBe('removed');
    expect(sim.partitions.every((q) => q.replicas.filter((r) => r.role === 'voter').length === 3)).toBe(true);
    expect(sim.violations).toEqual([]);
  });
});

describe('moves.startsPerMinuteMax: new moves per minute, from the controller history', () => {
  it('never starts more than the limit in any 60 s window, and still converges', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 48, replicationFactor: 3 });
    sim.addNode('n3');
    const s = spec({ moves: { startsPerMinuteMax: 4, clusterMax: 16, perNodeMax: 16 } });
    let history: PlannerHistory = [];
    const starts: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const p = plan(s, sim.observe(), sim.nowMs, history);
      for (const step of p.steps) {
        if (step.type === 'addLearner') starts.push(sim.nowMs);
        sim.apply(step);
      }
      history = recordIssued(history, p.steps, sim.nowMs);
      if (p.steps.length === 0 && p.progress.movesRemaining === 0 && p.progress.movesInFlight === 0) break;
      sim.tick(rng, 5_000);
    }
    expect(plan(s, sim.observe(), sim.nowMs).progress.movesRemaining).toBe(0);
    expect(starts.length).toBeGreaterThan(8);
    for (const t of starts) expect(starts.filter((x) => x >= t && x < t + 60_000).length).toBeLessThanOrEqual(4);
    expect(sim.violations).toEqual([]);
    // Without the limit the same change starts more at once.
    const fresh = settledSim({ nodes: nodeList(3), partitions: 48, replicationFactor: 3 });
    fresh.addNode('n3');
    const unlimited = plan(spec({ moves: { clusterMax: 16, perNodeMax: 16 } }), fresh.observe(), fresh.nowMs);
    expect(unlimited.steps.filter((x) => x.type === 'addLearner').length).toBeGreaterThan(4);
  });
});

describe('split.auto = false: only requested splits', () => {
  it('a partition above split.sizeBytes is split only with auto on; a request is honoured either way', () => {
    const o = { nodes: nodeList(3), partitions: 4, replicationFactor: 3, sizeBytes: (i: number) => (i === 2 ? 50_000 : 1_000) };
    const thresholds = { split: { sizeBytes: 10_000 }, merge: { sizeBytes: 1_000 } };
    const sim = settledSim(o);
    const splits = (x: Parameters<typeof resolveSpec>[0]) =>
      plan(spec({ ...thresholds, ...x }), sim.observe(), sim.nowMs).steps.filter((st) => st.type === 'split');
    expect(splits({})).toMatchObject([{ partitionId: 2, trigger: 'size' }]);
    expect(splits({ split: { ...thresholds.split, auto: false } })).toEqual([]);
    expect(splits({ split: { ...thresholds.split, auto: false }, splitRequests: [{ partitionId: sim.partitions[1]?.id as never }] })).toMatchObject([
      { partitionId: 1, trigger: 'request' },
    ]);
  });
});

describe('resolveSpec validates the new knobs', () => {
  it('names the field', () => {
    expect(() => spec({ moves: { startsPerMinuteMax: -1 } })).toThrow(/moves.startsPerMinuteMax/);
    expect(() => spec({ moves: { rebalance: 'no' as never } })).toThrow(/moves.rebalance/);
    expect(() => spec({ split: { auto: 1 as never } })).toThrow(/split.auto/);
  });
});
