/**
 * The membership checker: looks at ONE partition and returns its next step, or nothing
 * (PD's checker shape). Every rule here comes from the field lessons:
 *  - make before break: a replica is removed only when RF healthy, caught-up voters remain
 *    without it (LESSONS #4, #12); a replacement is a learner first and is promoted only once it
 *    has caught up;
 *  - one membership change per partition at a time (a learner or a voter surplus blocks the next);
 *  - a leader is transferred away before its replica is removed;
 *  - learners that are no longer wanted are removed first (they never count toward quorum).
 */
import { type ClusterView, learners, voters } from './cluster-view.ts';
import type { MoveBudget } from './move-budget.ts';
import type { NodeId, PartitionView, ReplicaView, Step } from './types.ts';

export interface MembershipDecision {
  readonly step?: Step | undefined;
  /** A move is under way (learner present or voter surplus). */
  readonly inFlight: boolean;
  /** Why nothing can happen now (for status), if something should. */
  readonly waiting?: string | undefined;
}

/** Nodes that take part in a partition's running move: learners and surplus voters. */
export function moveParticipants(p: PartitionView, target: readonly NodeId[]): NodeId[] {
  const out = learners(p).map((r) => r.nodeId);
  for (const r of voters(p)) if (!target.includes(r.nodeId)) out.push(r.nodeId);
  return out;
}

export function isMoveInFlight(p: PartitionView, rf: number): boolean {
  return learners(p).length > 0 || voters(p).length > rf;
}

/** Lower = better to keep; used to pick which surplus voter goes. */
function keepScore(view: ClusterView, p: PartitionView, r: ReplicaView, target: readonly NodeId[]): number {
  const n = view.nodes.get(r.nodeId);
  if (!n || n.state === 'removed') return 0;
  if (n.state === 'draining') return 1;
  if (view.isLost(n)) return 2;
  if (!target.includes(r.nodeId)) return view.isHealthy(r.nodeId) ? 4 : 3;
  return 10 + (target.length - target.indexOf(r.nodeId)) + (view.isCaughtUp(p, r) ? 0 : -5);
}

/** The best voter to hand leadership to: healthy, caught up, in the target, not `except`. */
export function leaderCandidate(view: ClusterView, p: PartitionView, target: readonly NodeId[], except: NodeId): NodeId | undefined {
  const ok = view.healthyCaughtUpVoters(p, except).filter((r) => view.nodes.get(r.nodeId)?.state === 'active');
  const ranked = ok.sort((a, b) => rank(target, a.nodeId) - rank(target, b.nodeId) || (a.nodeId < b.nodeId ? -1 : 1));
  return ranked[0]?.nodeId;
}

const rank = (target: readonly NodeId[], n: NodeId) => (target.includes(n) ? target.indexOf(n) : target.length);

export function checkMembership(view: ClusterView, p: PartitionView, target: readonly NodeId[], budget: MoveBudget): MembershipDecision {
  const rf = view.spec.replicationFactor;
  const vs = voters(p);
  const inFlight = isMoveInFlight(p, rf);
  const gen = p.generation;
  if (p.leader === undefined || !vs.some((r) => r.nodeId === p.leader)) {
    return { inFlight, waiting: `partition ${p.id} has no leader; its membership cannot change` };
  }
  const leader = p.leader;

  // 1. Learners: drop unwanted ones (always safe), promote a caught-up wanted one.
  const ls = learners(p).sort((a, b) => rank(target, a.nodeId) - rank(target, b.nodeId));
  for (const l of ls) {
    const n = view.nodes.get(l.nodeId);
    if (!target.includes(l.nodeId) || !view.inRing(n)) {
      return {
        inFlight,
        step: {
          type: 'removeReplica',
          partitionId: p.id,
          nodeId: l.nodeId,
          expectedGeneration: gen,
          reason: `learner on ${l.nodeId} is no longer in the target`,
        },
      };
    }
  }
  const wanted = ls[0];
  if (wanted) {
    if (view.isCaughtUp(p, wanted)) {
      return {
        inFlight,
        step: {
          type: 'promoteLearner',
          partitionId: p.id,
          nodeId: wanted.nodeId,
          expectedGeneration: gen,
          reason: `learner on ${wanted.nodeId} caught up (match ${wanted.matchIndex}, commit ${p.commitIndex})`,
        },
      };
    }
    return { inFlight, waiting: `learner on ${wanted.nodeId} is catching up (match ${wanted.matchIndex}, commit ${p.commitIndex})` };
  }

  // 2. Voter surplus: remove the least wanted voter, only if RF healthy caught-up voters remain.
  if (vs.length > rf) {
    const victim = [...vs].sort((a, b) => keepScore(view, p, a, target) - keepScore(view, p, b, target) || (a.nodeId < b.nodeId ? -1 : 1))[0] as ReplicaView;
    const remaining = view.healthyCaughtUpVoters(p, victim.nodeId).length;
    if (remaining < rf) {
      return { inFlight, waiting: `removing ${victim.nodeId} would leave ${remaining} healthy caught-up voters, fewer than RF ${rf}` };
    }
    if (victim.nodeId === leader) {
      const to = leaderCandidate(view, p, target, leader);
      if (to === undefined) return { inFlight, waiting: `no healthy caught-up voter to take over leadership from ${leader}` };
      return { inFlight, step: { type: 'transferLeader', partitionId: p.id, to, reason: `leader ${leader} is leaving the partition` } };
    }
    return {
      inFlight,
      step: {
        type: 'removeReplica',
        partitionId: p.id,
        nodeId: victim.nodeId,
        expectedGeneration: gen,
        reason: `replaced voter on ${victim.nodeId}; ${remaining} healthy caught-up voters remain`,
      },
    };
  }

  // 3. Missing target replicas: add a learner (repair below RF first, else a move within limits).
  const missing = target.filter((n) => !p.replicas.some((r) => r.nodeId === n));
  const receiver = missing[0];
  if (receiver !== undefined) {
    const repair = vs.length < rf;
    const senders = repair ? [] : vs.filter((r) => !target.includes(r.nodeId)).map((r) => r.nodeId);
    const participants = [receiver, ...senders.slice(0, 1)];
    if (!budget.canStart(participants, repair)) {
      return { inFlight, waiting: `move of partition ${p.id} to ${receiver} waits for the move limits` };
    }
    budget.start(participants, repair);
    const reason = repair
      ? `partition ${p.id} has ${vs.length} of ${rf} voters`
      : `target placement moves partition ${p.id} from ${senders[0] ?? '?'} to ${receiver}`;
    return { inFlight: true, step: { type: 'addLearner', partitionId: p.id, nodeId: receiver, expectedGeneration: gen, reason } };
  }

  // 4. Leadership on a node that should not lead (draining, removed, unhealthy): hand it over.
  const ln = view.nodes.get(leader);
  if (ln?.state !== 'active' || ln.health !== 'up') {
    const to = leaderCandidate(view, p, target, leader);
    if (to !== undefined)
      return {
        inFlight,
        step: { type: 'transferLeader', partitionId: p.id, to, reason: `leader ${leader} is ${ln?.state ?? 'unknown'}/${ln?.health ?? 'unknown'}` },
      };
  }
  return { inFlight };
}
