/**
 * Who votes in the meta group (pure; ADR 0008 amendment "Meta group voters follow the registry").
 *
 * The founders bootstrap the meta group. Without changes to its voters, retiring founders would
 * erode its quorum: after `node remove` of two of three founders the partition map could no
 * longer change (LESSONS: a cluster must never be stranded by ordinary operations). So the meta
 * leader keeps the voters on the registry's ACTIVE nodes, make-before-break, one Raft
 * configuration change at a time:
 *
 * 1. a learner on an active node is promoted once caught up; a learner on a node that is no
 *    longer active is removed;
 * 2. while fewer active nodes vote than the target (up to `votersMax`, an odd number where the
 *    active nodes allow: 3 of 4, 5 of 5 or more), one active non-member is added as a learner;
 * 3. a voter on a node that is draining, removed or unknown is removed, once the remaining
 *    voters that are reachable and caught up still form a majority of the smaller group; the
 *    leader never removes itself: it hands leadership to a healthy active voter first.
 *
 * Voters on active nodes are never removed here (a node leaves the meta group when it leaves
 * the cluster), so the set does not churn with health.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { type MetaNode, NodeState } from './meta-state.ts';

export const META_VOTERS_MAX = 5;

export interface MetaReplicaView {
  readonly nodeId: NodeId;
  readonly voter: boolean;
  /** The leader heard from it recently. */
  readonly reachable: boolean;
  /** Its log is close enough to the leader's to be promoted / count as healthy. */
  readonly caughtUp: boolean;
}

export interface MetaVotersInput {
  /** This node, the meta group's leader. */
  readonly self: NodeId;
  readonly replicas: readonly MetaReplicaView[];
  readonly nodes: readonly Pick<MetaNode, 'id' | 'state' | 'grpcAddress'>[];
  readonly votersMax?: number;
  /** Nodes not to add now (their last HostReplica failed recently: down, or unreachable). */
  readonly avoid?: ReadonlySet<NodeId>;
}

export type MetaVotersStep =
  | { readonly kind: 'promote'; readonly node: NodeId }
  | { readonly kind: 'addLearner'; readonly node: NodeId }
  | { readonly kind: 'remove'; readonly node: NodeId; readonly why: string }
  | { readonly kind: 'transferLeader'; readonly to: NodeId };

/** How many active nodes should vote: all up to `max`, and an odd number when 3 or more can. */
export function metaVotersTarget(activeNodes: number, max = META_VOTERS_MAX): number {
  const n = Math.min(activeNodes, max);
  return n >= 3 && n % 2 === 0 ? n - 1 : n;
}

export function planMetaVoters(i: MetaVotersInput): MetaVotersStep | undefined {
  const active = new Set(i.nodes.filter((n) => n.state === NodeState.Active && n.grpcAddress !== '').map((n) => n.id));
  const voters = i.replicas.filter((r) => r.voter);
  const learners = i.replicas.filter((r) => !r.voter);

  for (const l of learners) {
    if (!active.has(l.nodeId)) return { kind: 'remove', node: l.nodeId, why: 'learner on a node that is not active' };
    if (l.caughtUp) return { kind: 'promote', node: l.nodeId };
  }

  const activeVoters = voters.filter((v) => active.has(v.nodeId));
  if (learners.length === 0 && activeVoters.length < metaVotersTarget(active.size, i.votersMax)) {
    const members = new Set(i.replicas.map((r) => r.nodeId));
    const candidate = [...active].filter((id) => !members.has(id) && !i.avoid?.has(id)).sort()[0];
    if (candidate !== undefined) return { kind: 'addLearner', node: candidate };
  }

  const leaving = voters.find((v) => !active.has(v.nodeId));
  if (leaving === undefined) return undefined;
  if (leaving.nodeId === i.self) {
    const to = activeVoters.find((v) => v.nodeId !== i.self && v.reachable && v.caughtUp);
    return to === undefined ? undefined : { kind: 'transferLeader', to: to.nodeId };
  }
  const remaining = voters.filter((v) => v !== leaving);
  const healthy = remaining.filter((v) => v.nodeId === i.self || (v.reachable && v.caughtUp)).length;
  if (healthy < Math.floor(remaining.length / 2) + 1) return undefined;
  return { kind: 'remove', node: leaving.nodeId, why: 'voter on a node that is not active' };
}
