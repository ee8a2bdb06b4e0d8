/**
 * Planner tests, named after the field lessons (shared/LESSONS.md) whose failure they rule out.
 */
import { describe, expect, it } from 'vitest';
import { HASH_SPACE_END } from './cluster-view.ts';
import { plan } from './plan.ts';
import { resolveSpec } from './spec.ts';
import { isDone, stepKey } from './steps.ts';
import { targetPlacement } from './target.ts';
import { nodeList, settledSim } from './testing/fixtures.ts';
import { Prng, SimCluster } from './testing/sim-cluster.ts';
import { type NodeId, type Observation, type PartitionId, RefusalCode, type Step } from './types.ts';

const spec = (o: Parameters<typeof resolveSpec>[0] = {}) => resolveSpec({ zoneSpread: 'none', ...o });
const types = (steps: readonly Step[]) => steps.map((s) => s.type);
const rng = new Prng(7);

describe('LESSONS #4, #12 — make before break: learner first, promote when caught up, remove last', () => {
  it('a move runs addLearner -> (catch up) -> promoteLearner -> removeReplica, never below RF voters', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 24, replicationFactor: 3 });
    sim.addNode('n3');
    const s = spec({ moves: { clusterMax: 1, perNodeMax: 1 } });
    const seen: string[] = [];
    for (let i = 0; i < 400; i++) {
      const p = plan(s, sim.observe(), sim.nowMs);
      const membership = p.steps.filter((x) => x.type !== 'transferLeader');
      if (membership.length === 0 && p.progress.movesRemaining === 0 && p.progress.movesInFlight === 0) break;
      for (const step of membership) {
        seen.push(step.type);
        expect(sim.apply(step)).toBe('ok');
      }
      for (const q of sim.partitions) expect(q.replicas.filter((r) => r.role === 'voter').length).toBeGreaterThanOrEqual(3);
      sim.tick(rng);
    }
    expect(sim.violations).toEqual([]);
    expect(seen.slice(0, 3)).toEqual(['addLearner', 'promoteLearner', 'removeReplica']);
    // Every move follows that order: as many adds as promotions as removals.
    const count = (t: string) => seen.filter((x) => x === t).length;
    expect(count('addLearner')).toBeGreaterThan(0);
    expect(count('addLearner')).toBe(count('promoteLearner'));
    expect(count('promoteLearner')).toBe(count('removeReplica'));
  });

  it('a lagging learner is not promoted (LESSONS #12): the plan waits until it is within catchUpLagMax', () => {
    const s = spec({ moves: { catchUpLagMax: 16 } });
    const probe = new SimCluster({ nodes: nodeList(4), partitions: 1, replicationFactor: 3, placement: () => [] });
    const t = targetPlacement(s, probe.observe(), probe.nowMs).replicas.get(0 as PartitionId) ?? [];
    const [a, b, c] = t as [NodeId, NodeId, NodeId];
    const outsider = (['n0', 'n1', 'n2', 'n3'] as NodeId[]).find((n) => !t.includes(n)) as NodeId;
    // Voters a, b and the outsider; c (wanted) is a learner far behind.
    const sim = new SimCluster({ nodes: nodeList(4), partitions: 1, replicationFactor: 3, placement: () => [a, b, outsider] });
    const p0 = sim.partitions[0];
    if (!p0) throw new Error('no partition');
    p0.commitIndex = 1_000;
    for (const r of p0.replicas) r.matchIndex = 1_000;
    p0.replicas.push({ nodeId: c, role: 'learner', matchIndex: 983 });
    const waiting = plan(s, sim.observe(), sim.nowMs);
    expect(waiting.steps).toEqual([]);
    expect(waiting.progress.movesInFlight).toBe(1);
    p0.replicas[3] = { nodeId: c, role: 'learner', matchIndex: 984 };
    expect(plan(s, sim.observe(), sim.nowMs).steps).toMatchObject([{ type: 'promoteLearner', nodeId: c }]);
  });

  it('never removes a voter unless RF healthy caught-up voters remain: a surplus voter stays while another voter is down', () => {
    const all = ['n0', 'n1', 'n2', 'n3'] as NodeId[];
    const sim = new SimCluster({ nodes: nodeList(4), partitions: 1, replicationFactor: 3, placement: () => all });
    const s = spec({ moves: { nodeDownGraceMs: 3_600_000 } });
    const first = plan(s, sim.observe(), sim.nowMs).steps[0];
    const victim = first?.type === 'removeReplica' ? first.nodeId : first?.type === 'transferLeader' ? sim.partitions[0]?.leader : undefined;
    if (!victim) throw new Error(`expected a removal, got ${JSON.stringify(first)}`);
    // Another voter (one the target keeps) goes down: removing the victim would leave 2 healthy voters.
    const other = all.find((n) => n !== victim) as NodeId;
    sim.setHealth(other, 'down');
    const p = plan(s, sim.observe(), sim.nowMs);
    // Nothing at all: no removal, and no leader transfer preparing one.
    expect(p.steps).toEqual([]);
    expect(p.progress.movesInFlight).toBe(1);
    sim.setHealth(other, 'up');
    const after = plan(s, sim.observe(), sim.nowMs);
    expect(after.steps.some((x) => x.type === 'removeReplica' || x.type === 'transferLeader')).toBe(true);
  });

  it('transfers leadership away before removing the leader replica', () => {
    const all = ['n0', 'n1', 'n2', 'n3'] as NodeId[];
    const s = spec();
    const sim = new SimCluster({ nodes: nodeList(4), partitions: 1, replicationFactor: 3, placement: () => all });
    const first = plan(s, sim.observe(), sim.nowMs).steps[0];
    const victim = first?.type === 'removeReplica' ? first.nodeId : (sim.partitions[0]?.leader as NodeId);
    const q = sim.partitions[0];
    if (!q) throw new Error('no partition');
    q.leader = victim;
    const steps = plan(s, sim.observe(), sim.nowMs).steps;
    expect(steps).toHaveLength(1);
    expect(steps[0]).toMatchObject({ type: 'transferLeader' });
    expect((steps[0] as { to: NodeId }).to).not.toBe(victim);
  });

  it('a delayed step from a stale plan is fenced by the partition generation', () => {
    const sim = new SimCluster({ nodes: nodeList(4), partitions: 1, replicationFactor: 3, placement: () => ['n0', 'n1', 'n2', 'n3'] });
    const s = spec();
    const stale = plan(s, sim.observe(), sim.nowMs).steps.find((x) => x.type === 'removeReplica');
    if (stale?.type !== 'removeReplica') throw new Error('expected a removal');
    // Meanwhile another change lands (e.g. a different removal, by a previous controller).
    const other = (['n0', 'n1', 'n2', 'n3'] as NodeId[]).find((n) => n !== stale.nodeId && n !== sim.partitions[0]?.leader) as NodeId;
    expect(sim.apply({ type: 'removeReplica', partitionId: 0 as PartitionId, nodeId: other, expectedGeneration: 1n, reason: 'test' })).toBe('ok');
    expect(sim.apply(stale)).toBe('stale generation');
    expect(sim.partitions[0]?.replicas).toHaveLength(3);
  });
});

describe('LESSONS #5 — unsafe decommission is refused up front, with the reason', () => {
  it('refuses when the remaining nodes would be fewer than RF', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 8, replicationFactor: 3 });
    const p = plan(spec({ decommission: ['n1' as NodeId] }), sim.observe(), sim.nowMs);
    expect(p.steps.filter((x) => x.type === 'drainNode')).toEqual([]);
    const r = p.refusals.find((x) => x.code === RefusalCode.BelowReplicationFactor);
    expect(r?.message).toMatch(/leave 2 live active node\(s\), fewer than the replication factor 3/);
    expect(r?.nodeId).toBe('n1');
  });

  it('refuses when the other nodes lack the free capacity (with the headroom)', () => {
    const nodes = nodeList(4).map((n) => ({ ...n, capacityBytes: 100_000 }));
    const sim = settledSim({ nodes, partitions: 8, replicationFactor: 3, sizeBytes: () => 12_000 });
    const p = plan(spec({ decommission: ['n0' as NodeId] }), sim.observe(), sim.nowMs);
    expect(p.refusals.map((x) => x.code)).toContain(RefusalCode.InsufficientCapacity);
    expect(types(p.steps)).not.toContain('drainNode');
  });

  it('refuses when zoneSpread=required could no longer be met', () => {
    const nodes = [
      { id: 'a0', zone: 'a' },
      { id: 'b0', zone: 'b' },
      { id: 'c0', zone: 'c' },
      { id: 'c1', zone: 'c' },
    ];
    const s = spec({ zoneSpread: 'required', decommission: ['a0' as NodeId] });
    const sim = settledSim({ nodes, partitions: 6, replicationFactor: 3 }, s);
    const p = plan(s, sim.observe(), sim.nowMs);
    expect(p.refusals.find((x) => x.code === RefusalCode.ZonesImpossible)?.message).toMatch(/leave 2 zone\(s\)/);
    expect(types(p.steps)).not.toContain('drainNode');
  });

  it('a decommission naming an unknown node is refused, not guessed', () => {
    const sim = settledSim({ nodes: nodeList(4), partitions: 4, replicationFactor: 3 });
    const p = plan(spec({ decommission: ['ghost' as NodeId] }), sim.observe(), sim.nowMs);
    expect(p.refusals.map((x) => x.code)).toContain(RefusalCode.UnknownNode);
  });
});

describe('LESSONS #1, #3, #7 — a node is removed only when it confirms, under its durable id, that it holds nothing', () => {
  function drained() {
    const sim = settledSim({ nodes: nodeList(4), partitions: 12, replicationFactor: 3 });
    const node = sim.nodes.get('n2' as NodeId);
    if (!node) throw new Error('no n2');
    node.state = 'draining';
    return sim;
  }
  const removeSteps = (o: Observation) => plan(spec(), o, 0).steps.filter((x) => x.type === 'removeNode');

  it('while partitions still list the node, it is not removed (NODE_HOLDS_REPLICAS, with the partitions named)', () => {
    const sim = drained();
    const p = plan(spec(), sim.observe(), sim.nowMs);
    expect(types(p.steps)).not.toContain('removeNode');
    expect(p.refusals.find((x) => x.code === RefusalCode.NodeHoldsReplicas)?.message).toMatch(/n2 still holds \d+ replica/);
  });

  it('an empty map is not enough: a missing, foreign or non-zero self-report blocks removal', () => {
    const sim = drained();
    for (const p of sim.partitions) p.replicas = p.replicas.filter((r) => r.nodeId !== 'n2');
    const o = sim.observe();
    const withReport = (report: unknown, health = 'up') => ({ ...o, nodes: o.nodes.map((n) => (n.id === 'n2' ? { ...n, report, health } : n)) }) as Observation;
    expect(removeSteps(withReport(undefined))).toEqual([]);
    expect(removeSteps(withReport({ nodeId: 'n2', replicasHosted: 0 }, 'unknown'))).toEqual([]);
    expect(removeSteps(withReport({ nodeId: 'n9', replicasHosted: 0 }))).toEqual([]);
    expect(removeSteps(withReport({ nodeId: 'n2', replicasHosted: 1 }))).toEqual([]);
    const refusal = plan(spec(), withReport({ nodeId: 'n9', replicasHosted: 0 }), 0).refusals.find((x) => x.code === RefusalCode.RemovalUnconfirmed);
    expect(refusal?.message).toMatch(/reports node id n9/);
    expect(removeSteps(withReport({ nodeId: 'n2', replicasHosted: 0 }))).toMatchObject([{ type: 'removeNode', nodeId: 'n2' }]);
  });

  it('drain -> evacuate -> remove runs to the end and the removed node held nothing when removed', () => {
    const sim = settledSim({ nodes: nodeList(5), partitions: 20, replicationFactor: 3 });
    const s = spec({ decommission: ['n1' as NodeId] });
    const order: string[] = [];
    for (let i = 0; i < 300 && sim.nodes.get('n1' as NodeId)?.state !== 'removed'; i++) {
      for (const step of plan(s, sim.observe(), sim.nowMs).steps) {
        if (step.type === 'drainNode' || step.type === 'removeNode') order.push(step.type);
        sim.apply(step);
      }
      sim.tick(rng);
    }
    expect(sim.nodes.get('n1' as NodeId)?.state).toBe('removed');
    expect(order[0]).toBe('drainNode');
    expect(order.at(-1)).toBe('removeNode');
    expect(sim.violations).toEqual([]);
  });
});

describe('LESSONS #5, #6 — one topology operation at a time', () => {
  it('two decommissions run one after the other, never together', () => {
    const sim = settledSim({ nodes: nodeList(6), partitions: 16, replicationFactor: 3 });
    const s = spec({ decommission: ['n1', 'n4'] as NodeId[] });
    let both = false;
    for (let i = 0; i < 600; i++) {
      const st = [...sim.nodes.values()];
      if (st.filter((n) => n.state === 'draining').length > 1) both = true;
      if (st.filter((n) => n.state === 'removed').length === 2) break;
      for (const step of plan(s, sim.observe(), sim.nowMs).steps) sim.apply(step);
      sim.tick(rng);
    }
    expect(both).toBe(false);
    expect(sim.nodes.get('n1' as NodeId)?.state).toBe('removed');
    expect(sim.nodes.get('n4' as NodeId)?.state).toBe('removed');
    expect(sim.violations).toEqual([]);
  });

  it('a drain waits while a partition is below RF or moves are in flight', () => {
    const sim = settledSim({ nodes: nodeList(5), partitions: 8, replicationFactor: 3 });
    const p0 = sim.partitions[0];
    if (!p0) throw new Error('no partition');
    p0.replicas = p0.replicas.slice(0, 2);
    if (!p0.replicas.some((r) => r.nodeId === p0.leader)) p0.leader = p0.replicas[0]?.nodeId;
    const p = plan(spec({ decommission: ['n3' as NodeId] }), sim.observe(), sim.nowMs);
    expect(types(p.steps)).not.toContain('drainNode');
    expect(p.refusals.find((x) => x.code === RefusalCode.WaitingForOperation)?.message).toMatch(/below RF/);
  });
});

describe('LESSONS #8 — moves are planned globally and rate-limited per node and per cluster', () => {
  it('never more moves in flight than moves.clusterMax, nor per node than moves.perNodeMax', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 64, replicationFactor: 3 });
    sim.addNode('n3');
    sim.addNode('n4');
    const s = spec({ moves: { clusterMax: 3, perNodeMax: 2 } });
    for (let i = 0; i < 400; i++) {
      const p = plan(s, sim.observe(), sim.nowMs);
      for (const step of p.steps) sim.apply(step);
      const inFlight = sim.partitions.filter((q) => q.replicas.some((r) => r.role === 'learner') || q.replicas.length > 3);
      expect(inFlight.length).toBeLessThanOrEqual(3);
      const perNode = new Map<string, number>();
      for (const q of inFlight) for (const r of q.replicas) if (r.role === 'learner') perNode.set(r.nodeId, (perNode.get(r.nodeId) ?? 0) + 1);
      for (const c of perNode.values()) expect(c).toBeLessThanOrEqual(2);
      if (p.steps.length === 0 && p.progress.movesRemaining === 0) break;
      sim.tick(rng);
    }
    expect(plan(s, sim.observe(), sim.nowMs).progress.movesRemaining).toBe(0);
    expect(sim.violations).toEqual([]);
  });

  it('the number of replicas moved after adding a node equals what the ring says, no more', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 48, replicationFactor: 3 });
    sim.addNode('n3');
    const s = spec();
    const expected = plan(s, sim.observe(), sim.nowMs).progress.movesRemaining;
    let adds = 0;
    for (let i = 0; i < 300; i++) {
      const p = plan(s, sim.observe(), sim.nowMs);
      for (const step of p.steps) {
        if (step.type === 'addLearner') adds += 1;
        sim.apply(step);
      }
      if (p.steps.length === 0 && p.progress.movesInFlight === 0) break;
      sim.tick(rng);
    }
    expect(plan(s, sim.observe(), sim.nowMs).progress.movesRemaining).toBe(0);
    expect(adds).toBe(expected);
    expect(expected / (48 * 3)).toBeGreaterThan(0.12);
    expect(expected / (48 * 3)).toBeLessThan(0.4);
  });
});

describe('LESSONS #9 — repairs first', () => {
  it('a partition below RF gets its learner even when the move limit is used up by rebalancing', () => {
    const sim = settledSim({ nodes: nodeList(4), partitions: 16, replicationFactor: 3 });
    sim.addNode('n4');
    const s = spec({ moves: { clusterMax: 1, perNodeMax: 4 } });
    // Use up the cluster budget with one rebalancing move.
    for (const step of plan(s, sim.observe(), sim.nowMs).steps) sim.apply(step);
    const broken = sim.partitions.find((q) => !q.replicas.some((r) => r.role === 'learner'));
    if (!broken) throw new Error('no partition');
    broken.replicas = broken.replicas
      .filter((r) => r.nodeId === broken.leader || r.role === 'learner')
      .concat(broken.replicas.filter((r) => r.nodeId !== broken.leader).slice(0, 1));
    const p = plan(s, sim.observe(), sim.nowMs);
    expect(p.progress.partitionsBelowRF).toBe(1);
    expect(p.steps.find((x) => x.type === 'addLearner' && x.partitionId === broken.id)).toBeDefined();
  });
});

describe('steps are idempotent: isDone decides from a fresh observation', () => {
  it('each step type reports done exactly when its effect is visible', () => {
    const sim = new SimCluster({ nodes: nodeList(4), partitions: 2, replicationFactor: 3, placement: () => ['n0', 'n1', 'n2'] });
    const g = () => sim.partitions[0]?.generation ?? 0n;
    const p0 = 0 as PartitionId;
    const n3 = 'n3' as NodeId;
    const add: Step = { type: 'addLearner', partitionId: p0, nodeId: n3, expectedGeneration: g(), reason: 't' };
    expect(isDone(add, sim.observe())).toBe(false);
    sim.apply(add);
    expect(isDone(add, sim.observe())).toBe(true);
    expect(sim.apply(add)).not.toBe('ok'); // resent: refused, harmless
    const promote: Step = { type: 'promoteLearner', partitionId: p0, nodeId: n3, expectedGeneration: g(), reason: 't' };
    expect(isDone(promote, sim.observe())).toBe(false);
    for (let i = 0; i < 30; i++) sim.tick(rng);
    sim.apply(promote);
    expect(isDone(promote, sim.observe())).toBe(true);
    const transfer: Step = { type: 'transferLeader', partitionId: p0, to: n3, reason: 't' };
    expect(isDone(transfer, sim.observe())).toBe(false);
    sim.apply(transfer);
    expect(isDone(transfer, sim.observe())).toBe(true);
    const remove: Step = { type: 'removeReplica', partitionId: p0, nodeId: 'n0' as NodeId, expectedGeneration: g(), reason: 't' };
    expect(isDone(remove, sim.observe())).toBe(false);
    sim.apply(remove);
    expect(isDone(remove, sim.observe())).toBe(true);
    const mid = HASH_SPACE_END / 4n;
    const split: Step = {
      type: 'split',
      partitionId: p0,
      atHash: mid,
      trigger: 'request',
      newPartitionId: 2 as PartitionId,
      expectedGeneration: g(),
      expectedEpoch: 1n,
      reason: 't',
    };
    expect(isDone(split, sim.observe())).toBe(false);
    sim.apply(split);
    expect(isDone(split, sim.observe())).toBe(true);
    const right = sim.partitions.find((q) => q.start === mid);
    const left = sim.partitions[0];
    if (!right || !left) throw new Error('split failed');
    const merge: Step = {
      type: 'merge',
      left: p0,
      right: right.id,
      rightEnd: right.end,
      expectedGenerations: [left.generation, right.generation],
      expectedEpoch: 1n,
      reason: 't',
    };
    expect(isDone(merge, sim.observe())).toBe(false);
    sim.apply(merge);
    expect(isDone(merge, sim.observe())).toBe(true);
    const drain: Step = { type: 'drainNode', nodeId: 'n0' as NodeId, expectedEpoch: 1n, reason: 't' };
    expect(isDone(drain, sim.observe())).toBe(false);
    sim.apply(drain);
    expect(isDone(drain, sim.observe())).toBe(true);
    expect(stepKey(drain)).toBe('drainNode:n0');
  });
});
