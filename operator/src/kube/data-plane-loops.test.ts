/**
 * The KeyVaCluster spec reaches the placement planner: reconcile's placement target ->
 * DataPlaneLoops (the spec the running loop plans with) -> plan(). The loop here dials a closed
 * loopback port (nothing answers); only the spec it would plan with is asserted.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { plan } from '../placement/plan.ts';
import { nodeList, settledSim } from '../placement/testing/fixtures.ts';
import { cluster, FakeWorld } from '../reconcile/testing/fake-world.ts';
import type { PlacementTarget } from '../reconcile/types.ts';
import { DataPlaneLoops, plannerSpec } from './data-plane-loops.ts';

const log = pino({ level: 'silent' });
let loops: DataPlaneLoops | undefined;
afterEach(async () => {
  await loops?.stopAll();
  loops = undefined;
});

function target(w: FakeWorld): PlacementTarget {
  const r = w.step();
  if (!r.placement) throw new Error('no placement target');
  return r.placement;
}

describe('spec -> placement planner', () => {
  it('every policy field of the KeyVaCluster spec lands in the planner spec', () => {
    const w = new FakeWorld(
      cluster({
        nodes: 3,
        replicationFactor: 3,
        topology: { zoneKey: 'topology.kubernetes.io/zone', spread: 'Required' },
        rebalance: { enabled: false, movesPerMinuteMax: 7, movesInFlightMax: 3, leaderBalance: false },
        split: { policy: 'Manual', splitBytes: 8_388_608, mergeBytes: 1_048_576, splitsPerMinuteMax: 5, cooldownSeconds: 42 },
      }),
    );
    w.settle();
    const s = plannerSpec(target(w));
    expect(s.replicationFactor).toBe(3);
    expect(s.zoneSpread).toBe('required');
    expect(s.moves).toMatchObject({ rebalance: false, startsPerMinuteMax: 7, clusterMax: 3 });
    expect(s.leaders.transfersPerPlanMax).toBe(0);
    expect(s.split).toMatchObject({ auto: false, sizeBytes: 8_388_608, loadSplitsPerMinuteMax: 5, cooldownMs: 42_000 });
    expect(s.merge).toMatchObject({ sizeBytes: 1_048_576, cooldownMs: 42_000 });
    // Defaults: balancing on, 60 moves/min, 8 in flight, leaders balanced, automatic splits.
    const d = new FakeWorld(cluster({ nodes: 3 }));
    d.settle();
    const ds = plannerSpec(target(d));
    expect(ds.moves).toMatchObject({ rebalance: true, startsPerMinuteMax: 60, clusterMax: 8 });
    expect(ds.leaders.transfersPerPlanMax).toBeGreaterThan(0);
    expect(ds.split.auto).toBe(true);
    expect(ds.zoneSpread).toBe('preferred');
  });

  it("members' zones (from their Kubernetes nodes) reach the loop's target; non-members are left out", () => {
    const w = new FakeWorld(cluster({ nodes: 3 }));
    w.settle();
    const ids = w.memberIds();
    const observed = w.observed();
    const zones = Object.fromEntries(ids.map((id, i) => [id, `z${i}`]));
    w.observed = () => ({ ...observed, memberZones: { ...zones, 'kv-stray': 'z9' } });
    expect(target(w).zones).toEqual(zones);
  });

  it('a spec change reaches the running loop: rebalance off stops balancing moves from the next plan', () => {
    loops = new DataPlaneLoops({ log, onChange: () => {}, intervalMs: 60_000 });
    const w = new FakeWorld(cluster({ nodes: 3 }));
    w.settle();
    loops.ensure('ns/kv', ['127.0.0.1:1'], target(w));
    expect(loops.specOf('ns/kv')?.moves.rebalance).toBe(true);

    // The planner with the loop's current spec: a new node gets replicas.
    const sim = settledSim({ nodes: nodeList(3), partitions: 16, replicationFactor: 3 });
    sim.addNode('n3');
    const moves = () => plan(loops?.specOf('ns/kv') as never, sim.observe(), sim.nowMs).steps.filter((s) => s.type === 'addLearner');
    expect(moves().length).toBeGreaterThan(0);

    w.setSpec({ rebalance: { enabled: false, movesPerMinuteMax: 60, movesInFlightMax: 8, leaderBalance: true } });
    loops.ensure('ns/kv', ['127.0.0.1:1'], target(w));
    expect(loops.specOf('ns/kv')?.moves.rebalance).toBe(false);
    expect(moves()).toEqual([]);
  });

  it('spec.pause: reconcile gives no placement target, so the controller stops the loop (no moves at all)', () => {
    const w = new FakeWorld(cluster({ nodes: 3 }));
    w.settle();
    expect(w.step().placement).toBeDefined();
    w.setSpec({ pause: true });
    expect(w.step().placement).toBeUndefined();
  });

  it('a target the planner cannot take is an INVALID_ARGUMENT naming the field', () => {
    const w = new FakeWorld(cluster({ nodes: 3 }));
    w.settle();
    const t = target(w);
    expect(() => plannerSpec({ ...t, split: { ...t.split, mergeBytes: t.split.splitBytes } })).toThrow(/merge.sizeBytes/);
  });
});
