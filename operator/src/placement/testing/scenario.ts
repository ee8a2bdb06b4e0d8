/** One randomized cluster history driven through the test controller (see simulation.test.ts). */
import { resolveSpec } from '../spec.ts';
import type { NodeId } from '../types.ts';
import { ControllerLoop } from './controller-loop.ts';
import { nodeList, settledSim } from './fixtures.ts';
import { Prng } from './sim-cluster.ts';

export interface Scenario {
  seed: number;
  nodes: number;
  partitions: number;
  addNodes: number;
  decommission: number;
  crash: number;
  delay: number;
  loss: number;
  grow: number;
  /** A node is down from round 40 to 70 (within the grace period): 0 none, 1 an original node, 2 an added one. */
  outage: 0 | 1 | 2;
  /** Nodes spread over three zones (zoneSpread preferred). */
  zones?: boolean | undefined;
}

export function runScenario(sc: Scenario) {
  const rng = new Prng(sc.seed);
  const base = {
    zoneSpread: sc.zones ? ('preferred' as const) : ('none' as const),
    moves: { clusterMax: 4, perNodeMax: 2, catchUpLagMax: 16, headroomRatio: 0.1, nodeDownGraceMs: 3_600_000 },
    split: { sizeBytes: 100_000, qps: 10_000, cooldownMs: 20_000, loadSplitsPerMinuteMax: 2 },
    merge: { enabled: true, partitionsMin: Math.max(1, sc.partitions - 2), sizeBytes: 10_000, qps: 100, cooldownMs: 30_000 },
    leaders: { toleranceRatio: 0.25, cooldownMs: 10_000, transfersPerPlanMax: 8 },
  };
  let spec = resolveSpec(base);
  const sim = settledSim(
    {
      nodes: nodeList(sc.nodes).map((n, i) => (sc.zones ? { ...n, zone: `z${i % 3}` } : n)),
      partitions: sc.partitions,
      replicationFactor: 3,
      sizeBytes: (i) => (i % 3 === 0 ? 2_000 : 30_000),
    },
    spec,
  );
  const loop = new ControllerLoop(spec, sim, rng);
  const faults = { crash: sc.crash, delay: sc.delay, loss: sc.loss };
  const leaving: NodeId[] = [];
  const events = 120;
  for (let r = 0; r < events; r++) {
    if (r === 10) for (let i = 0; i < sc.addNodes; i++) sim.addNode(`x${i}`, { zone: sc.zones ? `z${(i + 1) % 3}` : undefined });
    if (r === 30 && sc.decommission > 0) {
      const ids = [...sim.nodes.keys()].filter((n) => n.startsWith('n')).slice(0, sc.decommission);
      leaving.push(...ids);
      spec = resolveSpec({ ...base, decommission: ids });
      loop.spec = spec;
    }
    const down = sc.outage === 2 && sc.addNodes > 0 ? 'x0' : 'n0';
    if (r === 40 && sc.outage) sim.setHealth(down, 'down');
    if (r === 70 && sc.outage) sim.setHealth(down, 'up');
    if (r === 20 || r === 60) {
      // Some partition grows past the split threshold.
      const p = sim.partitions[rng.int(sim.partitions.length)];
      if (p) p.sizeBytes += sc.grow;
    }
    loop.round(faults);
  }
  const healed = loop.heal(1500);
  return { sim, loop, spec, healed, leaving };
}
