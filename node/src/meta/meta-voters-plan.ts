/**
 * Who votes in the meta group (pure; ADR 0008 amendment "Meta group voters follow the registry").
 *
 * The founders bootstrap the meta group. Without changes to its voters, retiring founders would
 * erode its quorum: after `node remove` of two of three founders the partition map could no
 * longer change (LESSONS: a cluster must never be stranded by ordinary operations). So the meta
 * leader keeps the voters on the registry's ACTIVE nodes, make-before-break, one Raft
 * configuration change at a time:
 *
 * 1. a learner on an active node is promoted once caught up and reachable; a learner on a node
 *    that is no longer active, or unreachable past `downGraceMs`, is removed;
 * 2. while fewer active nodes vote than the target (up to `votersMax`, an odd number where the
 *    active nodes allow: 3 of 4, 5 of 5 or more), one active non-member is added as a learner;
 * 3. a voter on a node that is draining, removed or unknown is removed, once the remaining
 *    voters that are reachable and caught up still form a majority of the smaller group; the
 *    leader never removes itself: it hands leadership to a healthy active voter first.
 *
 * 4. a voter on an active node that has been unreachable for `downGraceMs` without a break is
 *    replaced, make-before-break: a learner on another active node first (rules 1-2 promote it),
 *    then the dead voter is removed once the active voters exceed the target, again only while
 *    the rest keep a healthy majority. A dead node still listed as active would otherwise hold a
 *    meta vote forever: one more failure would then stop every map change.
 *
 * Otherwise voters on active nodes are never removed here (a node leaves the meta group when it
 * leaves the cluster), so the set does not churn with short outages.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { type MetaNode, NodeState } from './meta-state.ts';

export const META_VOTERS_MAX = 5;
/** How long a voter must be unreachable, without a break, before it is replaced (rule 4). */
export const META_VOTER_DOWN_GRACE_MS = 5 * 60_000;

export interface MetaReplicaView {
  readonly nodeId: NodeId;
  readonly voter: boolean;
  /** The leader heard from it recently. */
  readonly reachable: boolean;
  /** Its log is close enough to the leader's to be promoted / count as healthy. */
  readonly caughtUp: boolean;
  /** How long the leader has not heard from it without a break (0 or absent: reachable). */
  readonly downForMs?: number;
}

export interface MetaVotersInput {
  /** This node, the meta group's leader. */
  readonly self: NodeId;
  readonly replicas: readonly MetaReplicaView[];
  readonly nodes: readonly Pick<MetaNode, 'id' | 'state' | 'grpcAddress'>[];
  readonly votersMax?: number;
  /** Nodes not to add now (their last HostReplica failed recently: down, or unreachable). */
  readonly avoid?: ReadonlySet<NodeId>;
  /** Rule 4's grace (default `META_VOTER_DOWN_GRACE_MS`). */
  readonly downGraceMs?: number;
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

  const grace = i.downGraceMs ?? META_VOTER_DOWN_GRACE_MS;
  for (const l of learners) {
    if (!active.has(l.nodeId)) return { kind: 'remove', node: l.nodeId, why: 'learner on a node that is not active' };
    if (!l.reachable && (l.downForMs ?? 0) >= grace) return { kind: 'remove', node: l.nodeId, why: 'learner unreachable past the grace' };
    if (l.caughtUp && l.reachable) return { kind: 'promote', node: l.nodeId };
  }

  const activeVoters = voters.filter((v) => active.has(v.nodeId));
  const target = metaVotersTarget(active.size, i.votersMax);
  const dead = activeVoters
    .filter((v) => v.nodeId !== i.self && !v.reachable && (v.downForMs ?? 0) >= grace)
    .sort((a, b) => (b.downForMs ?? 0) - (a.downForMs ?? 0));
  if (learners.length === 0 && activeVoters.length - dead.length < target) {
    const members = new Set(i.replicas.map((r) => r.nodeId));
    const candidate = [...active].filter((id) => !members.has(id) && !i.avoid?.has(id)).sort()[0];
    if (candidate !== undefined) return { kind: 'addLearner', node: candidate };
  }

  const leaving = voters.find((v) => !active.has(v.nodeId));
  if (leaving !== undefined) {
    if (leaving.nodeId === i.self) {
      const to = activeVoters.find((v) => v.nodeId !== i.self && v.reachable && v.caughtUp);
      return to === undefined ? undefined : { kind: 'transferLeader', to: to.nodeId };
    }
    return removeKeepingMajority(i.self, voters, leaving, 'voter on a node that is not active');
  }
  const gone = dead[0];
  if (gone !== undefined && activeVoters.length > target)
    return removeKeepingMajority(i.self, voters, gone, `voter unreachable for ${Math.round((gone.downForMs ?? 0) / 1000)} s, replaced`);
  return undefined;
}

/** Removes `v` only if the voters left still hold a healthy majority among themselves. */
function removeKeepingMajority(self: NodeId, voters: readonly MetaReplicaView[], v: MetaReplicaView, why: string): MetaVotersStep | undefined {
  const remaining = voters.filter((x) => x !== v);
  const healthy = remaining.filter((x) => x.nodeId === self || (x.reachable && x.caughtUp)).length;
  if (healthy < Math.floor(remaining.length / 2) + 1) return undefined;
  return { kind: 'remove', node: v.nodeId, why };
}
