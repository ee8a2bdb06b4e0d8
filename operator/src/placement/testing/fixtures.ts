/** Small builders for planner tests. */
import { resolveSpec } from '../spec.ts';
import { targetPlacement } from '../target.ts';
import type { ClusterSpec, PartitionId } from '../types.ts';
import { SimCluster, type SimOptions } from './sim-cluster.ts';

/** A cluster whose replicas already sit where the ring wants them (a settled cluster). */
export function settledSim(
  o: Omit<SimOptions, 'placement'>,
  spec: ClusterSpec = resolveSpec({ replicationFactor: o.replicationFactor, zoneSpread: 'none' }),
): SimCluster {
  const probe = new SimCluster({ ...o, placement: () => [] });
  const t = targetPlacement(spec, probe.observe(), probe.nowMs).replicas;
  return new SimCluster({ ...o, placement: (i) => t.get(i as PartitionId) ?? [] });
}

export const nodeList = (n: number, prefix = 'n') => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}` }));
