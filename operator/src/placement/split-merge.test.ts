/**
 * LESSONS #13 (tikv/pd #5370, #9794): splits and merges need rate limits, cooldowns and
 * hysteresis, or region counts swing back and forth and never settle.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClusterView, HASH_SPACE_END } from './cluster-view.ts';
import { recordIssued } from './history.ts';
import { plan } from './plan.ts';
import { resolveSpec } from './spec.ts';
import { chooseSplit, lastRangeChangeMs, mergeCandidate, splitPoint } from './split-merge.ts';
import { ControllerLoop } from './testing/controller-loop.ts';
import { nodeList, settledSim } from './testing/fixtures.ts';
import { Prng, type SimCluster } from './testing/sim-cluster.ts';
import { type NodeId, type PartitionId, type PartitionView, RefusalCode } from './types.ts';

const base = {
  zoneSpread: 'none' as const,
  split: { sizeBytes: 100_000, qps: 1_000, cooldownMs: 60_000, loadSplitsPerMinuteMax: 2 },
  merge: { enabled: true, partitionsMin: 1, sizeBytes: 20_000, qps: 100, cooldownMs: 120_000 },
};
const spec = (o: Parameters<typeof resolveSpec>[0] = {}) => resolveSpec({ ...base, ...o });
const splits = (sim: SimCluster, s = spec(), history = [] as never[]) => plan(s, sim.observe(), sim.nowMs, history).steps.filter((x) => x.type === 'split');

describe('LESSONS #13 — split policy', () => {
  it('splits a partition over the size threshold at the data plane hint, fenced by its generation', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 4, replicationFactor: 3, sizeBytes: (i) => (i === 2 ? 150_000 : 50_000) });
    const o = sim.observe();
    const p2 = o.partitions[2] as PartitionView;
    const hint = p2.start + (p2.end - p2.start) / 3n;
    const obs = { ...o, partitions: o.partitions.map((p) => (p.id === 2 ? { ...p, splitHint: hint } : p)) };
    const steps = plan(spec(), obs, sim.nowMs).steps.filter((x) => x.type === 'split');
    expect(steps).toMatchObject([{ type: 'split', partitionId: 2, atHash: hint, trigger: 'size', expectedGeneration: p2.generation }]);
  });

  it('the right half gets a never-used id: the meta group counter when it is ahead of max id + 1', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 4, replicationFactor: 3, sizeBytes: (i) => (i === 1 ? 150_000 : 10) });
    const o = sim.observe();
    expect(plan(spec(), { ...o, nextPartitionId: undefined }, sim.nowMs).steps.find((x) => x.type === 'split')).toMatchObject({ newPartitionId: 4 });
    expect(plan(spec(), { ...o, nextPartitionId: 17 }, sim.nowMs).steps.find((x) => x.type === 'split')).toMatchObject({
      newPartitionId: 17,
      expectedEpoch: o.epoch,
    });
  });

  it('a hint outside the range falls back to the midpoint; a one-hash range cannot split', () => {
    const p = { start: 10n, end: 20n, splitHint: 25n } as PartitionView;
    expect(splitPoint(p)).toBe(15n);
    expect(splitPoint({ start: 10n, end: 11n } as PartitionView)).toBeUndefined();
  });

  it('cooldown: a partition whose range changed within split.cooldownMs is not split again', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 2, replicationFactor: 3, sizeBytes: () => 500_000 });
    for (const p of sim.partitions) p.rangeChangedAtMs = sim.nowMs - 59_000;
    expect(splits(sim)).toEqual([]);
    for (const p of sim.partitions) p.rangeChangedAtMs = sim.nowMs - 60_000;
    expect(splits(sim)).toHaveLength(1);
  });

  it('cooldown covers both halves of a split the controller issued: the new right half is not split again at once', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 2, replicationFactor: 3, sizeBytes: () => 500_000 });
    const [first] = splits(sim) as { partitionId: PartitionId; newPartitionId: PartitionId }[];
    if (first === undefined) throw new Error('expected a split');
    const history = recordIssued([], [first as never], sim.nowMs);
    const right = { ...(sim.observe().partitions[0] as PartitionView), id: first.newPartitionId };
    expect(lastRangeChangeMs(right, history)).toBe(sim.nowMs);
    expect(lastRangeChangeMs(sim.observe().partitions[first.partitionId] as PartitionView, history)).toBe(sim.nowMs);
  });

  it('load splits are capped per minute (time injected), even after a controller restart that lost its history', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 8, replicationFactor: 3 });
    for (const p of sim.partitions) p.qps = 5_000;
    const s = spec({ split: { ...base.split, cooldownMs: 0, loadSplitsPerMinuteMax: 2 } });
    const loop = new ControllerLoop(s, sim, new Prng(3));
    const at: number[] = [];
    for (let i = 0; i < 150; i++) {
      if (i % 7 === 0) loop.history = []; // the controller restarts and forgets
      const p = loop.round({ crash: 0, delay: 0, loss: 0 });
      for (const st of p.steps) if (st.type === 'split') at.push(sim.nowMs);
    }
    expect(at.length).toBeGreaterThan(3);
    for (const t of at) expect(at.filter((u) => u > t - 60_000 && u <= t).length).toBeLessThanOrEqual(2);
  });

  it('a requested split happens regardless of size; an impossible request is refused with the reason', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 2, replicationFactor: 3 });
    const p0 = sim.partitions[0];
    if (!p0) throw new Error('no partition');
    const at = p0.start + 1234n;
    expect(splits(sim, spec({ splitRequests: [{ partitionId: 0 as PartitionId, atHash: at }] }))).toMatchObject([{ atHash: at, trigger: 'request' }]);
    const bad = plan(
      spec({ splitRequests: [{ partitionId: 0 as PartitionId, atHash: HASH_SPACE_END - 1n }, { partitionId: 99 as PartitionId }] }),
      sim.observe(),
      sim.nowMs,
    );
    expect(bad.refusals.filter((r) => r.code === RefusalCode.InvalidSplit).map((r) => r.message)).toEqual([
      expect.stringMatching(/not strictly inside partition 0/),
      expect.stringMatching(/partition 99, which does not exist/),
    ]);
  });

  it('never splits a partition in the middle of a membership change (concurrent split + move left 4-replica regions in PD)', () => {
    const sim = settledSim({ nodes: nodeList(4), partitions: 1, replicationFactor: 3, sizeBytes: () => 500_000 });
    const p0 = sim.partitions[0];
    if (!p0) throw new Error('no partition');
    const spare = (['n0', 'n1', 'n2', 'n3'] as NodeId[]).find((n) => !p0.replicas.some((r) => r.nodeId === n)) as NodeId;
    p0.replicas.push({ nodeId: spare, role: 'learner', matchIndex: 0 });
    expect(splits(sim)).toEqual([]);
  });
});

describe('LESSONS #13 — merge policy and hysteresis', () => {
  it('spec validation keeps the merge thresholds at most half the split thresholds', () => {
    expect(() => resolveSpec({ split: { sizeBytes: 100 }, merge: { sizeBytes: 51 } })).toThrow(/merge.sizeBytes must be at most half of split.sizeBytes/);
    expect(() => resolveSpec({ split: { qps: 100 }, merge: { qps: 60, sizeBytes: 1 } })).toThrow(/merge.qps/);
    try {
      resolveSpec({ replicationFactor: 2 });
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'replicationFactor' } });
    }
  });

  it('property: the halves of a split are never merge candidates, and a merged partition is never a split candidate', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000, max: 10_000_000 }),
        fc.double({ min: 0.01, max: 0.5, noNaN: true }),
        fc.double({ min: 0.05, max: 0.95, noNaN: true }),
        fc.integer({ min: 0, max: 10_000_000 }),
        (splitBytes, mergeRatio, cut, neighbour) => {
          const s = resolveSpec({
            ...base,
            split: { ...base.split, sizeBytes: splitBytes, cooldownMs: 0 },
            merge: { ...base.merge, sizeBytes: Math.floor(splitBytes * mergeRatio), cooldownMs: 0 },
          });
          // A partition at the split threshold splits anywhere: its halves sum to >= split > merge.
          const size = splitBytes;
          const left = Math.floor(size * cut);
          const sim = settledSim(
            { nodes: nodeList(3), partitions: 3, replicationFactor: 3, sizeBytes: (i) => (i === 0 ? left : i === 1 ? size - left : neighbour) },
            s,
          );
          const view = new ClusterView(s, sim.observe(), sim.nowMs);
          const pair = mergeCandidate(view, []);
          if (pair) expect(pair.map((p) => p.id)).not.toEqual([0, 1]);
          // Any merge result is below the merge threshold, hence far below the split threshold.
          if (pair) {
            const merged = pair[0].sizeBytes + pair[1].sizeBytes;
            expect(merged).toBeLessThan(s.split.sizeBytes / 2 + 1);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('merges two small neighbours: first co-locates their replicas (moves), then one merge step; no oscillation afterwards', () => {
    const s = spec({ merge: { ...base.merge, cooldownMs: 0 }, split: { ...base.split, cooldownMs: 0 } });
    const sim = settledSim({ nodes: nodeList(5), partitions: 6, replicationFactor: 3, sizeBytes: (i) => (i < 2 ? 1_000 : 60_000) }, s);
    const loop = new ControllerLoop(s, sim, new Prng(9));
    let merges = 0;
    let splitCount = 0;
    let colocating = 0;
    const before = new Set(sim.partitions[1]?.replicas.map((r) => r.nodeId));
    const after0 = new Set(sim.partitions[0]?.replicas.map((r) => r.nodeId));
    for (let i = 0; i < 400; i++) {
      const p = loop.round({ crash: 0.1, delay: 0.1, loss: 0.1 });
      colocating += p.steps.filter((x) => x.type === 'addLearner' && x.partitionId === 1).length;
      merges += p.steps.filter((x) => x.type === 'merge').length;
      splitCount += p.steps.filter((x) => x.type === 'split').length;
    }
    expect(sim.violations).toEqual([]);
    expect(loop.violations).toEqual([]);
    expect(sim.partitions).toHaveLength(5);
    expect(sim.partitions.find((p) => p.id === 0)?.end).toBe(sim.partitions.find((p) => p.id === 2)?.start);
    expect(splitCount).toBe(0);
    expect(merges).toBeGreaterThanOrEqual(1);
    // The two started on different nodes, so the right one was moved onto the left one's nodes first.
    expect([...before].sort()).not.toEqual([...after0].sort());
    expect(colocating).toBeGreaterThan(0);
  });

  it('never merges below merge.partitionsMin', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 4, replicationFactor: 3, sizeBytes: () => 10 });
    const view = (min: number) => new ClusterView(spec({ merge: { ...base.merge, partitionsMin: min, cooldownMs: 0 } }), sim.observe(), sim.nowMs);
    expect(mergeCandidate(view(4), [])).toBeUndefined();
    expect(mergeCandidate(view(3), [])).toBeDefined();
  });

  it('merge cooldown comes from the meta group timestamp or the controller history, whichever is later', () => {
    const sim = settledSim({ nodes: nodeList(3), partitions: 4, replicationFactor: 3, sizeBytes: () => 10 });
    const s = spec();
    const now = sim.nowMs;
    for (const p of sim.partitions) p.rangeChangedAtMs = now - 200_000;
    const v = () => new ClusterView(s, sim.observe(), now);
    expect(mergeCandidate(v(), [])).toBeDefined();
    const hist = [0, 1, 2, 3].map((id) => ({ kind: 'split' as const, partitionId: id as PartitionId, atMs: now - 1_000 }));
    expect(mergeCandidate(v(), hist)).toBeUndefined();
    expect(chooseSplit(v(), () => true, hist)).toBeUndefined();
  });
});
