/**
 * What `MultiRaft.propose` and `read` answer (ADR 0008 §5, §8). Two families, kept apart
 * because clients may retry only one of them blindly:
 *
 * - **Refusals** (`ProposeRefused`): nothing was proposed. Safe to retry, here later
 *   (`warmingUp`, `busy`) or on the leader named by `leaderHint` (`notLeader`).
 * - **Outcomes** of a proposed entry: `ProposeApplied`, `ProposeConditionFailed` (the entry was
 *   applied and its condition did not hold, on every replica alike), or a rejected promise:
 *   `ProposalOutcomeUnknownError` when leadership was lost (or the node stopped) before the
 *   entry was known to commit: it may still commit under the next leader, so the caller must
 *   answer DEADLINE_EXCEEDED, never NOT_LEADER/UNAVAILABLE.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import type { Timestamp } from '../engine/types.ts';
import type { Index, Term } from '../raft/types.ts';
import type { GroupId } from './raft-keys.ts';

export const ProposeRefusal = {
  /** This replica does not lead the group; `leaderHint` is its best guess. */
  NotLeader: 'notLeader',
  /** This replica just became leader and has not applied an entry of its term yet (ADR 0008 §5). */
  WarmingUp: 'warmingUp',
  /** The leader is handing leadership over; retry on the new leader. */
  LeaderTransferring: 'leaderTransferring',
  /** Too many proposals in flight (`pendingProposalsMax` or the core's `uncommittedEntriesMax`). */
  Busy: 'busy',
  /** This node hosts no such group. */
  UnknownGroup: 'unknownGroup',
  /** The runtime (or this group) is stopped or failed. */
  Stopped: 'stopped',
} as const;
export type ProposeRefusal = (typeof ProposeRefusal)[keyof typeof ProposeRefusal];

/** Nothing was proposed. */
export interface ProposeRefused {
  readonly ok: false;
  readonly refused: true;
  readonly reason: ProposeRefusal;
  readonly leaderHint: NodeId | undefined;
  readonly term: Term;
}

/**
 * When a proposal's promise resolves (ADR 0008 §7): `majority` once the entry committed and
 * applied on the leader; `all` once, besides, every voter's match index reached it; `leader`
 * once it is durable in the leader's log only (it may still be lost on failover).
 */
export const WriteConcern = { Majority: 'majority', All: 'all', Leader: 'leader' } as const;
export type WriteConcern = (typeof WriteConcern)[keyof typeof WriteConcern];

export interface ProposeOptions {
  readonly concern?: WriteConcern;
  /** With `all`: how long to wait for every voter after the entry applied (default 5 s). */
  readonly allTimeoutMs?: number;
  /** The client's request id (16 bytes): applied at most once (docs/adr/0011-exactly-once-writes.md). */
  readonly requestId?: Buffer | undefined;
}

/**
 * The entry committed and was applied locally (write concern `majority`, `all`), or, with
 * `durability: 'leader'`, is durable in the leader's log only: not yet committed, so `existed`
 * is unknown (all false) and conditions were not evaluated yet.
 */
export interface ProposeApplied {
  readonly ok: true;
  readonly durability?: 'leader';
  readonly index: Index;
  readonly term: Term;
  /** The version every data mutation of the batch got. */
  readonly commitTs: Timestamp;
  /** Per mutation: whether a live value existed before. */
  readonly existed: readonly boolean[];
  /** The request id was already applied: nothing was written now; `commitTs` is the first application's. */
  readonly deduplicated?: true | undefined;
}

/** The entry committed and was applied; its condition failed, so it wrote nothing (anywhere). */
export interface ProposeConditionFailed {
  readonly ok: false;
  readonly refused: false;
  readonly reason: 'conditionFailed';
  readonly index: Index;
  readonly term: Term;
  readonly commitTs: Timestamp;
  readonly failedIndex: number;
  readonly currentVersion: Timestamp;
}

export type ProposeResult = ProposeApplied | ProposeConditionFailed | ProposeRefused;

/**
 * A proposed entry whose fate this replica could not learn: leadership moved on (or the runtime
 * stopped) before it was known to commit. It may or may not be applied.
 */
export class ProposalOutcomeUnknownError extends KeyVaError {
  constructor(group: GroupId, index: Index, term: Term, why: string) {
    super('DEADLINE_EXCEEDED', `outcome unknown: entry ${index} (term ${term}) of group ${group} was proposed but ${why}; it may or may not be applied`, {
      group: String(group),
      index: String(index),
      term: String(term),
    });
    this.name = 'ProposalOutcomeUnknownError';
  }
}

/** A proposed entry that is known NOT to be applied: another entry was applied at its index. */
export class ProposalDroppedError extends KeyVaError {
  constructor(group: GroupId, index: Index, term: Term) {
    super('UNAVAILABLE', `entry ${index} (term ${term}) of group ${group} was replaced by a new leader's entry; it was not applied`, {
      group: String(group),
      index: String(index),
      term: String(term),
    });
    this.name = 'ProposalDroppedError';
  }
}

/** `read` refused: this replica knows no leader to confirm a read index with. */
export function notLeaderError(group: GroupId, leaderHint: NodeId | undefined): KeyVaError {
  return new KeyVaError('NOT_LEADER', `group ${group} has no known leader here`, { partitionGroup: String(group), leaderHint: leaderHint ?? '' });
}

/**
 * Write concern `all`: the entry committed and applied on the leader (a majority has it durably),
 * but not every voter confirmed it within the wait. The write IS committed; it will reach the
 * other replicas when they catch up. Not an unknown outcome: `details.committed = 'true'`.
 */
export class NotOnAllReplicasError extends KeyVaError {
  constructor(group: GroupId, index: Index, commitTs: Timestamp, why: string) {
    super(
      'DEADLINE_EXCEEDED',
      `write committed (version ${commitTs}, entry ${index} of group ${group}) and durable on a majority, but not confirmed on all replicas: ${why}; do not write it again, it is not lost`,
      { committed: 'true', version: commitTs.toString(), group: String(group), index: String(index) },
    );
    this.name = 'NotOnAllReplicasError';
  }
}
