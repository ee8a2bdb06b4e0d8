/**
 * The decision of an unsafe quorum-loss recovery (docs/adr/0012-unsafe-quorum-recovery.md), as a
 * pure function: given what this replica knows of its group and what the other members answered,
 * either refuse (with the reason and a message that says what to do) or say how to rewrite the
 * group's membership here: which members to remove and under which new term.
 *
 * The rewrite itself (`quorum-recovery.ts`) appends one committed RemoveReplica entry per removed
 * member after this replica's last entry, under a term above every term any survivor has seen, so
 * no survivor can hold a different entry at the same index and term (Log Matching), and the
 * survivors' own logs are then overwritten by this one's wherever they differ.
 */
import type { NodeId } from '@keyva/client/keyspace';

/** This replica's view of its group, before the recovery. */
export interface LocalGroupView {
  readonly self: NodeId;
  /** Membership as of the last log entry (the applied membership plus changes still in the log). */
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** The leader this replica knows now, if any. */
  readonly leader: NodeId | undefined;
  readonly term: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly commit: number;
  readonly applied: number;
}

/** What another member answered about its replica (undefined: it did not answer or does not host it). */
export interface PeerGroupView {
  readonly leader: NodeId | undefined;
  readonly term: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
}

export interface RecoveryRequest {
  readonly survivors: readonly NodeId[];
  readonly confirmDataLoss: boolean;
}

export const RecoveryRefusal = {
  ConfirmationRequired: 'confirmationRequired',
  SelfNotSurvivor: 'selfNotSurvivor',
  NotVoter: 'notVoter',
  LeaderPresent: 'leaderPresent',
  QuorumLive: 'quorumLive',
  VoterReachable: 'voterReachable',
  SurvivorUnreachable: 'survivorUnreachable',
  NotMostUpToDate: 'notMostUpToDate',
} as const;
export type RecoveryRefusal = (typeof RecoveryRefusal)[keyof typeof RecoveryRefusal];

export type RecoveryDecision =
  | { readonly kind: 'refuse'; readonly reason: RecoveryRefusal; readonly message: string; readonly details: Readonly<Record<string, string>> }
  /** The membership already is the survivors and a leader is known: a repeated call after success. */
  | { readonly kind: 'done' }
  | {
      readonly kind: 'recover';
      /** Members (voters and learners) to remove, sorted. */
      readonly removed: readonly NodeId[];
      /** Term of the recovery entries: above every term a survivor has seen. */
      readonly newTerm: number;
      /** Entries this replica holds but never saw committed (kept, and committed by the recovery). */
      readonly uncommittedKept: number;
    };

function refuse(reason: RecoveryRefusal, message: string, details: Record<string, string> = {}): RecoveryDecision {
  return { kind: 'refuse', reason, message, details: { reason, ...details } };
}

/** A voter majority of `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** Whether log (lastTerm a, lastIndex a) is strictly ahead of log b (Raft's "more up to date"). */
function ahead(a: { lastTerm: number; lastIndex: number }, b: { lastTerm: number; lastIndex: number }): boolean {
  return a.lastTerm > b.lastTerm || (a.lastTerm === b.lastTerm && a.lastIndex > b.lastIndex);
}

/**
 * Decides a recovery on replica `local.self`. `peers` holds the answer of every other member
 * that was asked (voters and listed survivors); a member missing from it did not answer.
 */
export function decideRecovery(
  local: LocalGroupView,
  peers: ReadonlyMap<NodeId, PeerGroupView | undefined>,
  req: RecoveryRequest,
  what: string,
): RecoveryDecision {
  const survivors = [...new Set(req.survivors)].sort();
  if (!req.confirmDataLoss)
    return refuse(
      RecoveryRefusal.ConfirmationRequired,
      `unsafe recovery of ${what} may lose writes that only the lost replicas held; it runs only with confirm_data_loss (CLI: --i-understand-data-loss); nothing changed`,
    );
  if (!survivors.includes(local.self))
    return refuse(
      RecoveryRefusal.SelfNotSurvivor,
      `node ${local.self} is not listed among the survivors (${survivors.join(',')}) of ${what}: send the recovery to a surviving replica; nothing changed`,
      { nodeId: local.self },
    );
  const notVoters = survivors.filter((s) => !local.voters.includes(s));
  if (notVoters.length > 0)
    return refuse(
      RecoveryRefusal.NotVoter,
      `${notVoters.join(',')} ${notVoters.length === 1 ? 'is not a voter' : 'are not voters'} of ${what} (voters: ${local.voters.join(',')}); nothing changed`,
      { nodeIds: notVoters.join(','), voters: local.voters.join(',') },
    );
  const sameMembers = local.learners.length === 0 && local.voters.length === survivors.length && local.voters.every((v) => survivors.includes(v));
  const leaders = new Set<NodeId>();
  if (local.leader !== undefined) leaders.add(local.leader);
  for (const p of peers.values()) if (p?.leader !== undefined && p.leader !== '') leaders.add(p.leader);
  if (sameMembers && leaders.size > 0) return { kind: 'done' };
  if (leaders.size > 0)
    return refuse(
      RecoveryRefusal.LeaderPresent,
      `${what} has a leader (${[...leaders].join(',')}): its quorum is not lost; use RemoveReplica for dead members instead; nothing changed`,
      { leader: [...leaders].join(',') },
    );
  const reachableVoters = local.voters.filter((v) => v === local.self || peers.get(v) !== undefined);
  const quorum = majority(local.voters.length);
  if (reachableVoters.length >= quorum)
    return refuse(
      RecoveryRefusal.QuorumLive,
      `${reachableVoters.length} of ${local.voters.length} voters of ${what} answer (${reachableVoters.join(',')}), a quorum of ${quorum}: it can elect a leader by itself; nothing changed`,
      { reachable: reachableVoters.join(','), voters: local.voters.join(','), quorum: String(quorum) },
    );
  const reachableLost = reachableVoters.filter((v) => !survivors.includes(v));
  if (reachableLost.length > 0)
    return refuse(
      RecoveryRefusal.VoterReachable,
      `voter ${reachableLost.join(',')} of ${what} answers but is not listed as a survivor: list every live replica as a survivor; nothing changed`,
      { nodeIds: reachableLost.join(',') },
    );
  const missing = survivors.filter((s) => s !== local.self && peers.get(s) === undefined);
  if (missing.length > 0)
    return refuse(
      RecoveryRefusal.SurvivorUnreachable,
      `survivor ${missing.join(',')} of ${what} does not answer: a survivor must be alive (list only live replicas); nothing changed`,
      { nodeIds: missing.join(',') },
    );
  let newTerm = Math.max(local.term, local.lastTerm);
  for (const s of survivors) {
    if (s === local.self) continue;
    const p = peers.get(s) as PeerGroupView;
    if (ahead(p, local))
      return refuse(
        RecoveryRefusal.NotMostUpToDate,
        `survivor ${s} holds a newer log of ${what} (last index ${p.lastIndex}, term ${p.lastTerm}) than node ${local.self} (last index ${local.lastIndex}, term ${local.lastTerm}): run the recovery on ${s}; nothing changed`,
        { nodeId: s, lastIndex: String(p.lastIndex), lastTerm: String(p.lastTerm) },
      );
    newTerm = Math.max(newTerm, p.term, p.lastTerm);
  }
  const removed = [...local.voters, ...local.learners].filter((m) => !survivors.includes(m)).sort();
  return { kind: 'recover', removed, newTerm: newTerm + 1, uncommittedKept: Math.max(0, local.lastIndex - local.commit) };
}
