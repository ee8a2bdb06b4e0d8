/**
 * Target placement: the replica set each partition should have. The ring gives every partition
 * a preference order over the live active nodes (weights = capacity); the first RF eligible
 * nodes win. Deviations from the ring, in this order:
 *  - a node that already holds the partition stays eligible (no churn from headroom or health
 *    blips: hysteresis);
 *  - a node receives a NEW replica only if it is healthy and keeps `headroomRatio` of its
 *    capacity free after the replicas already assigned to it in this pass (LESSONS #8);
 *  - replicas spread over min(RF, zones) zones when zones are configured;
 *  - `colocate` pins a merge candidate's right half onto its left neighbour's nodes;
 *  - with `moves.rebalance` off, a partition's live active voters are preferred over the ring
 *    (no balancing moves; repairs and evacuations still happen).
 * With healthy nodes, ample space and no zones the target is exactly the ring's first RF owners,
 * so adding or removing a node changes only the partitions whose ring owners change.
 */
import { ClusterView, holds } from './cluster-view.ts';
import { buildRing } from './ring.ts';
import { type ClusterSpec, type NodeId, type Observation, type PartitionId, type Refusal, RefusalCode } from './types.ts';

export interface TargetPlacement {
  /** Desired replicas per partition, best first (ring order, adjusted). */
  readonly replicas: ReadonlyMap<PartitionId, readonly NodeId[]>;
  /** Why some partition could not get RF nodes or the zone spread. */
  readonly problems: readonly Refusal[];
}

export interface TargetOptions {
  /** right -> left: give `right` the target of `left` (a merge needs co-located replicas). */
  readonly colocate?: ReadonlyMap<PartitionId, PartitionId> | undefined;
}

/** Picks `rf` nodes from `preference` honouring the zone spread; falls back to any eligible node. */
export function pickReplicas(
  preference: readonly NodeId[],
  eligible: (n: NodeId) => boolean,
  rf: number,
  zonesWanted: number,
  zoneOf: (n: NodeId) => string,
): { nodes: NodeId[]; zones: number } {
  const out: NodeId[] = [];
  const zones = new Set<string>();
  for (const n of preference) {
    if (out.length === rf) break;
    if (!eligible(n)) continue;
    const z = zoneOf(n);
    // A node in a zone we already use may only take a slot we do not need for a missing zone.
    if (zones.has(z) && rf - out.length <= zonesWanted - zones.size) continue;
    out.push(n);
    zones.add(z);
  }
  for (const n of preference) {
    if (out.length === rf) break;
    if (!out.includes(n) && eligible(n)) out.push(n);
  }
  return { nodes: out, zones: new Set(out.map(zoneOf)).size };
}

export function targetPlacement(spec: ClusterSpec, observation: Observation, nowMs: number, options: TargetOptions = {}): TargetPlacement {
  const view = new ClusterView(spec, observation, nowMs);
  const rf = spec.replicationFactor;
  const problems: Refusal[] = [];
  const members = observation.nodes.filter((n) => view.inRing(n));
  const ring = buildRing(members.map((n) => ({ id: n.id, weight: n.weight })));
  const zoneCount = new Set(members.map((n) => view.zoneOf(n.id))).size;
  const useZones = spec.zoneSpread !== 'none' && view.zonesConfigured();
  const zonesWanted = useZones ? Math.min(rf, zoneCount) : 1;
  if (useZones && spec.zoneSpread === 'required' && zoneCount < rf) {
    problems.push({
      code: RefusalCode.ZonesImpossible,
      message: `zoneSpread is required but the live active nodes span ${zoneCount} zone(s), fewer than the replication factor ${rf}`,
    });
  }
  const spare = new Map(members.map((n) => [n.id, view.spareBytes(n)]));
  const replicas = new Map<PartitionId, readonly NodeId[]>();
  const partitions = [...observation.partitions].sort((a, b) => a.id - b.id);
  for (const p of partitions) {
    const eligible = (n: NodeId) => holds(p, n) || (view.isHealthy(n) && (spare.get(n) ?? Number.NEGATIVE_INFINITY) >= p.sizeBytes);
    let preference = ring.preference(p.id);
    if (!spec.moves.rebalance) {
      // No balancing: the partition's live active voters come first (it stays where it is);
      // only slots they cannot fill (a lost, draining or removed node, RF not met) follow the ring.
      const stay = preference.filter((n) => p.replicas.some((r) => r.nodeId === n && r.role === 'voter'));
      preference = [...stay, ...preference.filter((n) => !stay.includes(n))];
    }
    const picked = pickReplicas(preference, eligible, rf, zonesWanted, (n) => view.zoneOf(n));
    for (const n of picked.nodes) if (!holds(p, n)) spare.set(n, (spare.get(n) ?? 0) - p.sizeBytes);
    if (picked.nodes.length < rf) {
      problems.push({
        code: RefusalCode.NotEnoughNodes,
        partitionId: p.id,
        message: `partition ${p.id} can be placed on ${picked.nodes.length} of ${rf} nodes: not enough live active nodes with ${p.sizeBytes} bytes to spare`,
      });
    }
    replicas.set(p.id, picked.nodes);
  }
  for (const [right, left] of options.colocate ?? []) {
    const l = replicas.get(left);
    if (l && replicas.has(right)) replicas.set(right, l);
  }
  return { replicas, problems };
}
