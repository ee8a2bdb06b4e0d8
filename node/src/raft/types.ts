/**
 * Plain data of the Raft core: ids, log entries, hard state, membership, snapshots. Everything
 * here is a serialisable value (numbers, strings, Uint8Array, arrays), so the driver can persist
 * it and the transport can encode it (protobuf or JSON) without knowing the algorithm.
 *
 * Terms and indexes are plain numbers: 2^53 is out of reach of any real log.
 */

/**
 * Identity of one replica of one Raft group. It is never reused: a replica that was removed
 * and later comes back must come back under a new id (e.g. `${nodeId}/${incarnation}`), or a
 * wiped replica could vote twice in an old term (see docs/adr/0006-raft-core.md).
 */
export type ReplicaId = string & { readonly __brand: 'ReplicaId' };

/** Brands a string as a `ReplicaId`. */
export function replicaId(id: string): ReplicaId {
  return id as ReplicaId;
}

export type Term = number;
export type Index = number;

/** Membership of a group. Voters elect and count toward quorum; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly ReplicaId[];
  readonly learners: readonly ReplicaId[];
}

export const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [] };

/** The closed set of membership changes: learner first, then promote; one change at a time. */
export const ConfChangeType = {
  AddLearner: 'addLearner',
  PromoteLearner: 'promoteLearner',
  RemoveReplica: 'removeReplica',
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly replica: ReplicaId;
  /** Opaque to the core (e.g. the new replica's address), handed back when the change applies. */
  readonly context?: Uint8Array | undefined;
}

/**
 * A log entry. `normal` carries application data opaque to the core (an empty `data` on a
 * leader's first entry of its term); `confChange` carries a membership change that takes effect
 * when the entry is applied.
 */
export type Entry =
  | { readonly type: 'normal'; readonly term: Term; readonly index: Index; readonly data: Uint8Array }
  | { readonly type: 'confChange'; readonly term: Term; readonly index: Index; readonly change: ConfChange };

/** The state that must be durable before any message that depends on it is sent. */
export interface HardState {
  readonly term: Term;
  /** The candidate voted for in `term`, if any. */
  readonly vote: ReplicaId | undefined;
  readonly commit: Index;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: undefined, commit: 0 };

export interface SnapshotMetadata {
  /** The last log index the snapshot covers. */
  readonly index: Index;
  /** The term of the entry at `index`. */
  readonly term: Term;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

/** A snapshot: metadata the core understands plus state-machine data it does not. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

/**
 * A new group starts from this snapshot: index 1, term 1, its initial membership. Starting above
 * index 0 means a replica with an empty log (a new learner) can never match the leader's log at
 * index 0, so the leader always sends it a snapshot first, and with it the membership.
 */
export const BOOTSTRAP_INDEX: Index = 1;
export const BOOTSTRAP_TERM: Term = 1;

export function bootstrapSnapshot(confState: ConfState, data: Uint8Array = new Uint8Array(0)): Snapshot {
  return { metadata: { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, confState }, data };
}

/** The closed set of roles. `preCandidate` is the PreVote phase: it asks, but does not bump its term. */
export const Role = {
  Follower: 'follower',
  PreCandidate: 'preCandidate',
  Candidate: 'candidate',
  Leader: 'leader',
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** Volatile state, useful to the driver (routing, metrics); never persisted. */
export interface SoftState {
  readonly leader: ReplicaId | undefined;
  readonly role: Role;
}

/** A linearizable read point: once the state machine has applied `index`, serve the read `context`. */
export interface ReadState {
  readonly index: Index;
  readonly context: Uint8Array;
}

/** Injected randomness: `next()` returns a float in [0, 1). */
export interface RaftRandom {
  next(): number;
}

/** How a leader confirms it may serve a read at its commit index. */
export const ReadOnlyOption = {
  /** A heartbeat round to a quorum per read batch (ReadIndex). Safe without clock assumptions. */
  Safe: 'safe',
  /**
   * Leader lease: serve at once, trusting that no other leader can exist within an election
   * timeout of the last quorum contact. Requires checkQuorum and bounded clock drift.
   */
  Lease: 'lease',
} as const;
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

export function entrySize(e: Entry): number {
  return e.type === 'normal' ? e.data.byteLength : (e.change.context?.byteLength ?? 0) + 16;
}
