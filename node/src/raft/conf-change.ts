/**
 * Membership changes, learner first: add a learner (it receives the log, does not vote), promote
 * it to voter once caught up, remove a replica. One change at a time, each taking effect when
 * its entry is applied. Single-replica steps keep every old majority overlapping every new one
 * (Raft dissertation §4.1); the leader additionally waits until it has committed an entry of its
 * own term before proposing a change (the fix for the single-server-change bug, 2015).
 *
 * Pure functions over `ConfState`; the leader validates at proposal time, and every replica
 * re-validates at apply time so an invalid change is a no-op everywhere alike.
 */
import { type ConfChange, ConfChangeType, type ConfState, type Entry, type ReplicaId, type SnapshotMetadata } from './types.ts';

export const ConfChangeRejection = {
  AlreadyMember: 'alreadyMember',
  NotLearner: 'notLearner',
  NotMember: 'notMember',
  LastVoter: 'lastVoter',
} as const;
export type ConfChangeRejection = (typeof ConfChangeRejection)[keyof typeof ConfChangeRejection];

export function isVoter(c: ConfState, id: ReplicaId): boolean {
  return c.voters.includes(id);
}

export function isLearner(c: ConfState, id: ReplicaId): boolean {
  return c.learners.includes(id);
}

export function isMember(c: ConfState, id: ReplicaId): boolean {
  return isVoter(c, id) || isLearner(c, id);
}

/** Voters then learners, each sorted: the canonical iteration order (determinism). */
export function members(c: ConfState): ReplicaId[] {
  return [...c.voters, ...c.learners];
}

function sorted(ids: Iterable<ReplicaId>): ReplicaId[] {
  return [...new Set(ids)].sort();
}

export function confState(voters: Iterable<ReplicaId>, learners: Iterable<ReplicaId> = []): ConfState {
  return { voters: sorted(voters), learners: sorted(learners) };
}

export function confStateEqual(a: ConfState, b: ConfState): boolean {
  const eq = (x: readonly ReplicaId[], y: readonly ReplicaId[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return eq(sorted(a.voters), sorted(b.voters)) && eq(sorted(a.learners), sorted(b.learners));
}

/** Why `change` cannot apply to `c`, or undefined if it can. */
export function validateConfChange(c: ConfState, change: ConfChange): ConfChangeRejection | undefined {
  const id = change.replica;
  switch (change.type) {
    case ConfChangeType.AddLearner:
      return isMember(c, id) ? ConfChangeRejection.AlreadyMember : undefined;
    case ConfChangeType.PromoteLearner:
      return isLearner(c, id) ? undefined : ConfChangeRejection.NotLearner;
    case ConfChangeType.RemoveReplica:
      if (!isMember(c, id)) return ConfChangeRejection.NotMember;
      return isVoter(c, id) && c.voters.length === 1 ? ConfChangeRejection.LastVoter : undefined;
  }
}

/** The membership after `change`; `c` itself if the change is invalid (a no-op everywhere). */
export function applyConfChange(c: ConfState, change: ConfChange): ConfState {
  if (validateConfChange(c, change) !== undefined) return c;
  const id = change.replica;
  switch (change.type) {
    case ConfChangeType.AddLearner:
      return confState(c.voters, [...c.learners, id]);
    case ConfChangeType.PromoteLearner:
      return confState(
        [...c.voters, id],
        c.learners.filter((l) => l !== id),
      );
    case ConfChangeType.RemoveReplica:
      return confState(
        c.voters.filter((v) => v !== id),
        c.learners.filter((l) => l !== id),
      );
  }
}

/** Membership after applying every conf change in `entries` on top of a snapshot's. */
export function confAfter(snapshot: SnapshotMetadata, entries: readonly Entry[]): ConfState {
  let c = confState(snapshot.confState.voters, snapshot.confState.learners);
  for (const e of entries) if (e.type === 'confChange') c = applyConfChange(c, e.change);
  return c;
}
