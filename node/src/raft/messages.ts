/**
 * Messages between replicas of one group. One flat, plain shape for every type (like etcd's
 * raftpb.Message) so the transport can encode it field by field; fields a type does not use hold
 * their zero value. Local operations (tick, propose, campaign, transfer, read) are methods of
 * `RaftNode`, never messages, so nothing local can arrive over the network.
 */
import { type Entry, entrySize, type Index, type ReplicaId, type Snapshot, type Term } from './types.ts';

export const MessageType = {
  /** Leader -> follower: entries after (index, logTerm), and the leader's commit index. */
  Append: 'append',
  /** Follower -> leader: `index` = last matching index, or on `reject` the probe index rejected. */
  AppendResponse: 'appendResponse',
  /** Candidate -> voter: request a vote for `term`, with the candidate's last (index, logTerm). */
  Vote: 'vote',
  VoteResponse: 'voteResponse',
  /** Pre-candidate -> voter: "would you vote for me at `term`?" Changes no state on the receiver. */
  PreVote: 'preVote',
  PreVoteResponse: 'preVoteResponse',
  /** Leader -> follower: install `snapshot` (the follower needs entries the leader compacted). */
  Snapshot: 'snapshot',
  /**
   * Leader -> follower: keep-alive with `commit`; `context` carries a ReadIndex round; `index`
   * is the leader's tick count at sending (its lease clock), echoed in the response.
   */
  Heartbeat: 'heartbeat',
  HeartbeatResponse: 'heartbeatResponse',
  /** Leader -> transfer target: start an election now, skipping PreVote and leases. */
  TimeoutNow: 'timeoutNow',
  /** Follower -> leader: a forwarded ReadIndex request, identified by `context`. */
  ReadIndex: 'readIndex',
  /** Leader -> follower: the read index (`index`) for the request `context`. */
  ReadIndexResponse: 'readIndexResponse',
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface Message {
  readonly type: MessageType;
  readonly from: ReplicaId;
  readonly to: ReplicaId;
  /** The sender's term; for (pre)votes the term campaigned for. */
  readonly term: Term;
  /** Append: term of the entry at `index`; vote: the candidate's last log term; reject: hint term. */
  readonly logTerm: Term;
  /** Append: index preceding `entries`; vote: candidate's last index; response: see the type. */
  readonly index: Index;
  readonly entries: readonly Entry[];
  readonly commit: Index;
  readonly reject: boolean;
  /** On a rejected append: the follower's guess of the last index that may match. */
  readonly rejectHint: Index;
  readonly snapshot?: Snapshot | undefined;
  readonly context?: Uint8Array | undefined;
}

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

/**
 * Builds a message, defaulting every field the caller does not set; `from` and `term` fall back
 * to the given sender and its current term.
 */
export function message(m: Pick<Message, 'type' | 'to'> & Partial<Message>, from?: ReplicaId, term?: Term): Message {
  const sender = m.from ?? from;
  if (sender === undefined) throw new TypeError('message without a sender');
  return {
    type: m.type,
    from: sender,
    to: m.to,
    term: m.term ?? term ?? 0,
    logTerm: m.logTerm ?? 0,
    index: m.index ?? 0,
    entries: m.entries ?? NO_ENTRIES,
    commit: m.commit ?? 0,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0,
    snapshot: m.snapshot,
    context: m.context,
  };
}

/**
 * Batched appends (raft-rs's `batch_append`): `next` folded into `prev` when both are appends of
 * one term to one follower and `next` continues `prev` (its entries start right after `prev`'s
 * last), within the per-message limits; undefined otherwise. The follower then answers once for
 * both: proposals that reach a leader between two Readys cost one append and one answer per
 * follower instead of one each. The merged message carries `next`'s (newer) commit index.
 */
export function mergeAppends(prev: Message, next: Message, entriesMax: number, bytesMax: number): Message | undefined {
  if (prev.type !== MessageType.Append || next.type !== MessageType.Append) return undefined;
  if (prev.to !== next.to || prev.term !== next.term || prev.entries.length === 0 || next.entries.length === 0) return undefined;
  if (next.index !== prev.index + prev.entries.length || prev.entries.length + next.entries.length > entriesMax) return undefined;
  let bytes = 0;
  for (const e of prev.entries) bytes += entrySize(e);
  for (const e of next.entries) bytes += entrySize(e);
  if (bytes > bytesMax) return undefined;
  return { ...prev, entries: [...prev.entries, ...next.entries], commit: Math.max(prev.commit, next.commit) };
}

export function voteResponseType(type: MessageType): MessageType {
  return type === MessageType.PreVote ? MessageType.PreVoteResponse : MessageType.VoteResponse;
}

/** `context` of a Vote sent because of TimeoutNow: voters then ignore their leader lease. */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode('CampaignTransfer');

export function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A compact string key for a byte context (ReadIndex bookkeeping). */
export function bytesKey(a: Uint8Array): string {
  let s = '';
  for (const b of a) s += b.toString(16).padStart(2, '0');
  return s;
}
