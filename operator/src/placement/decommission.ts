/**
 * Node removal as a data-plane-driven state machine, one node at a time (LESSONS #1, #5, #6):
 *   active --drainNode--> draining --(replicas moved away by the membership checker)-->
 *   confirmed empty by durable id --removeNode--> removed.
 * Unsafe requests are refused up front with the reason (remaining nodes < RF, not enough free
 * capacity, zone spread impossible); "unknown" is never "safe" (LESSONS #3).
 */
import type { ClusterView } from './cluster-view.ts';
import { type NodeView, type Refusal, RefusalCode, type Step } from './types.ts';

export interface DecommissionContext {
  /** Partitions below RF voters or without a leader: repair before any topology change. */
  readonly unhealthyPartitions: number;
  readonly movesInFlight: number;
}

/** Why removing `n` now would lose data or availability, or undefined if it is safe to start. */
export function decommissionRefusal(view: ClusterView, n: NodeView): Refusal | undefined {
  const rf = view.spec.replicationFactor;
  const remaining = view.observation.nodes.filter((m) => m.id !== n.id && view.inRing(m));
  if (remaining.length < rf) {
    return {
      code: RefusalCode.BelowReplicationFactor,
      nodeId: n.id,
      message: `removing ${n.id} would leave ${remaining.length} live active node(s), fewer than the replication factor ${rf}`,
    };
  }
  if (view.spec.zoneSpread === 'required' && view.zonesConfigured()) {
    const zones = new Set(remaining.map((m) => view.zoneOf(m.id))).size;
    if (zones < rf) {
      return {
        code: RefusalCode.ZonesImpossible,
        nodeId: n.id,
        message: `removing ${n.id} would leave ${zones} zone(s), fewer than the replication factor ${rf} that zoneSpread=required needs`,
      };
    }
  }
  const bytes = view.partitionsOn(n.id).reduce((s, p) => s + p.sizeBytes, 0);
  const spare = remaining.filter((m) => m.health === 'up').reduce((s, m) => s + Math.max(0, view.spareBytes(m)), 0);
  if (bytes > spare) {
    return {
      code: RefusalCode.InsufficientCapacity,
      nodeId: n.id,
      message: `removing ${n.id} needs ${bytes} bytes elsewhere but the other nodes have ${Math.floor(spare)} bytes to spare above the ${view.spec.moves.headroomRatio * 100}% headroom`,
    };
  }
  return undefined;
}

/**
 * Is the node confirmed empty? Only by a fresh answer from the node itself under its durable id
 * AND by every partition in the map: both must say zero replicas.
 */
export function removalRefusal(view: ClusterView, n: NodeView): Refusal | undefined {
  const held = view.partitionsOn(n.id);
  if (held.length > 0) {
    return {
      code: RefusalCode.NodeHoldsReplicas,
      nodeId: n.id,
      message: `${n.id} still holds ${held.length} replica(s) (partitions ${held
        .slice(0, 8)
        .map((p) => p.id)
        .join(', ')}${held.length > 8 ? ', …' : ''})`,
    };
  }
  const r = n.report;
  if (n.health !== 'up' || r === undefined) {
    return {
      code: RefusalCode.RemovalUnconfirmed,
      nodeId: n.id,
      message: `${n.id} has not confirmed it holds no replicas (health ${n.health}); unknown is not safe`,
    };
  }
  if (r.nodeId !== n.id) {
    return {
      code: RefusalCode.RemovalUnconfirmed,
      nodeId: n.id,
      message: `the process answering for ${n.id} reports node id ${r.nodeId}; refusing to act on another identity`,
    };
  }
  if (r.replicasHosted !== 0) {
    return { code: RefusalCode.NodeHoldsReplicas, nodeId: n.id, message: `${n.id} reports ${r.replicasHosted} replica(s) hosted` };
  }
  return undefined;
}

/** The next decommission step (at most one: nodes go strictly one at a time), or why not. */
export function planDecommission(view: ClusterView, ctx: DecommissionContext): { step?: Step | undefined; refusals: Refusal[] } {
  const refusals: Refusal[] = [];
  // A node already draining (this spec's or an earlier one's) finishes first.
  const draining = view.observation.nodes.filter((n) => n.state === 'draining').sort((a, b) => (a.id < b.id ? -1 : 1));
  const queue = [...draining.map((n) => n.id), ...view.spec.decommission.filter((id) => !draining.some((d) => d.id === id))];
  for (const id of queue) {
    const n = view.nodes.get(id);
    if (!n) {
      refusals.push({ code: RefusalCode.UnknownNode, nodeId: id, message: `${id} is not in the node registry (wrong id, or never joined)` });
      continue;
    }
    if (n.state === 'removed') continue;
    if (n.state === 'draining') {
      const why = removalRefusal(view, n);
      if (why) return { refusals: [...refusals, why] };
      return {
        step: { type: 'removeNode', nodeId: id, expectedEpoch: view.observation.epoch, reason: `${id} is drained and confirmed empty by its own report` },
        refusals,
      };
    }
    const unsafe = decommissionRefusal(view, n);
    if (unsafe) return { refusals: [...refusals, unsafe] };
    if (ctx.unhealthyPartitions > 0 || ctx.movesInFlight > 0) {
      const what =
        ctx.unhealthyPartitions > 0 ? `${ctx.unhealthyPartitions} partition(s) below RF or without a leader` : `${ctx.movesInFlight} move(s) in flight`;
      return { refusals: [...refusals, { code: RefusalCode.WaitingForOperation, nodeId: id, message: `draining ${id} waits: ${what}` }] };
    }
    return { step: { type: 'drainNode', nodeId: id, expectedEpoch: view.observation.epoch, reason: `decommission requested for ${id}` }, refusals };
  }
  return { refusals };
}
