/**
 * Typed outcomes of local requests (propose, conf change, transfer, read). A refusal is a value,
 * not an exception: it carries the leader hint and term so the caller can redirect a client
 * (`NOT_LEADER` with a leader hint at the API edge).
 */
import type { ConfChangeRejection } from './conf-change.ts';
import type { Index, ReplicaId, Term } from './types.ts';

export const Refusal = {
  /** This replica is not the leader; `leader` is its best guess, if any. */
  NotLeader: 'notLeader',
  /** A leadership transfer is in progress; retry on the new leader. */
  LeaderTransferring: 'leaderTransferring',
  /** Too many entries appended but not committed (`uncommittedEntriesMax`). */
  TooManyUncommitted: 'tooManyUncommitted',
  /** Too many ReadIndex requests waiting (`pendingReadsMax`). */
  TooManyPendingReads: 'tooManyPendingReads',
  /** A membership change is still being committed or applied. */
  ConfChangePending: 'confChangePending',
  /** A new leader has not yet committed an entry of its term, so it may not change membership. */
  LeaderNotReady: 'leaderNotReady',
  /** The transfer target is not a voter. */
  NotVoter: 'notVoter',
} as const;
export type Refusal = (typeof Refusal)[keyof typeof Refusal] | ConfChangeRejection;

export interface Refused {
  readonly ok: false;
  readonly reason: Refusal;
  readonly leader: ReplicaId | undefined;
  readonly term: Term;
}

export type ProposeResult = { readonly ok: true; readonly index: Index; readonly term: Term } | Refused;

/** `ok` means accepted: the outcome arrives later (a ReadState, a new leader). */
export type RequestResult = { readonly ok: true } | Refused;
