/**
 * Quorum arithmetic, free of any other Raft state: which index a majority has acknowledged,
 * and whether a set of votes wins. Joint (two-majority) variants are here for a later move to
 * joint consensus; membership today changes one replica at a time (conf-change.ts).
 */
import type { Index, ReplicaId } from './types.ts';

export const VoteResult = { Pending: 'pending', Lost: 'lost', Won: 'won' } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** The number of voters that makes a majority of `n` (1 for an empty set, never reachable). */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The largest index acknowledged by a majority of `voters`, given each voter's acknowledged
 * index (`ackedOf` returns undefined for "nothing yet", counted as 0). An empty config has no
 * constraint and returns Infinity, so it is neutral inside a joint config.
 */
export function committedIndex(voters: readonly ReplicaId[], ackedOf: (id: ReplicaId) => Index | undefined): Index {
  if (voters.length === 0) return Number.POSITIVE_INFINITY;
  const acked = voters.map((id) => ackedOf(id) ?? 0).sort((a, b) => b - a);
  return acked[majority(voters.length) - 1] ?? 0;
}

/** The outcome of an election among `voters` given the votes received so far (true = granted). */
export function voteResult(voters: readonly ReplicaId[], votes: ReadonlyMap<ReplicaId, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = majority(voters.length);
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

/** Whether the replicas marked active form a quorum of `voters`. */
export function quorumActive(voters: readonly ReplicaId[], isActive: (id: ReplicaId) => boolean): boolean {
  const votes = new Map<ReplicaId, boolean>();
  for (const id of voters) votes.set(id, isActive(id));
  return voteResult(voters, votes) === VoteResult.Won;
}

/** A joint config needs a majority of both halves; an empty half imposes nothing. */
export interface JointConfig {
  readonly incoming: readonly ReplicaId[];
  readonly outgoing: readonly ReplicaId[];
}

export function jointCommittedIndex(c: JointConfig, ackedOf: (id: ReplicaId) => Index | undefined): Index {
  return Math.min(committedIndex(c.incoming, ackedOf), committedIndex(c.outgoing, ackedOf));
}

export function jointVoteResult(c: JointConfig, votes: ReadonlyMap<ReplicaId, boolean>): VoteResult {
  const a = voteResult(c.incoming, votes);
  const b = voteResult(c.outgoing, votes);
  if (a === b) return a;
  if (a === VoteResult.Lost || b === VoteResult.Lost) return VoteResult.Lost;
  return VoteResult.Pending;
}
