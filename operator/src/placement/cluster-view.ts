/**
 * Read-only questions about one observation, answered the same way everywhere in the planner:
 * who is a voter, who is caught up, which nodes are live, which may receive a new replica.
 */
import type { ClusterSpec, NodeId, NodeView, Observation, PartitionId, PartitionView, ReplicaView } from './types.ts';

export const HASH_SPACE_END = 1n << 64n;

export const voters = (p: PartitionView): ReplicaView[] => p.replicas.filter((r) => r.role === 'voter');
export const learners = (p: PartitionView): ReplicaView[] => p.replicas.filter((r) => r.role === 'learner');
export const holds = (p: PartitionView, n: NodeId): boolean => p.replicas.some((r) => r.nodeId === n);
export const replicaOn = (p: PartitionView, n: NodeId): ReplicaView | undefined => p.replicas.find((r) => r.nodeId === n);

export const byId = <T extends { readonly id: NodeId }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export class ClusterView {
  readonly spec: ClusterSpec;
  readonly observation: Observation;
  readonly nowMs: number;
  readonly nodes: ReadonlyMap<NodeId, NodeView>;
  readonly partitions: ReadonlyMap<PartitionId, PartitionView>;

  constructor(spec: ClusterSpec, observation: Observation, nowMs: number) {
    this.spec = spec;
    this.observation = observation;
    this.nowMs = nowMs;
    this.nodes = new Map(observation.nodes.map((n) => [n.id, n]));
    this.partitions = new Map(observation.partitions.map((p) => [p.id, p]));
  }

  /** Down (or unknown) for longer than the grace period: its replicas get re-placed. */
  isLost(n: NodeView): boolean {
    if (n.health !== 'down' && n.health !== 'unknown') return false;
    return n.downSinceMs !== undefined && this.nowMs - n.downSinceMs >= this.spec.moves.nodeDownGraceMs;
  }

  /** Nodes on the placement ring: active, and not lost. */
  inRing(n: NodeView | undefined): n is NodeView {
    return n !== undefined && n.state === 'active' && !this.isLost(n);
  }

  /** Healthy enough to lead, to count toward "RF healthy voters", to receive a replica. */
  isHealthy(id: NodeId): boolean {
    return this.nodes.get(id)?.health === 'up';
  }

  /** A replica that is healthy and within `catchUpLagMax` of the commit index. */
  isCaughtUp(p: PartitionView, r: ReplicaView): boolean {
    return this.isHealthy(r.nodeId) && r.matchIndex + this.spec.moves.catchUpLagMax >= p.commitIndex;
  }

  healthyCaughtUpVoters(p: PartitionView, except?: NodeId): ReplicaView[] {
    return voters(p).filter((r) => r.nodeId !== except && this.isCaughtUp(p, r));
  }

  /** Bytes a node may still take while keeping `headroomRatio` of its capacity free. */
  spareBytes(n: NodeView): number {
    return n.freeBytes - this.spec.moves.headroomRatio * n.capacityBytes;
  }

  /** Zones of the ring members (a node without a zone is its own zone). */
  zoneOf(id: NodeId): string {
    const n = this.nodes.get(id);
    return n?.zone ?? `node:${id}`;
  }

  zonesConfigured(): boolean {
    return this.observation.nodes.some((n) => n.zone !== undefined);
  }

  /** Partitions that list the node as a replica, voter or learner (by durable id). */
  partitionsOn(id: NodeId): PartitionView[] {
    return this.observation.partitions.filter((p) => holds(p, id));
  }
}
