/**
 * The Raft algorithm for one replica of one group, as a synchronous state machine: inputs are
 * `tick()`, `step(message)` and local requests; outputs accumulate in `msgs`, `readStates` and
 * the log's unstable part, which `RaftNode` hands to the driver as a `Ready`. No I/O, no clock,
 * no randomness but the injected one: the same inputs give the same outputs.
 *
 * A role is a pair of functions (`stepFn`, `tickFn`) swapped on every role change:
 * follower/preCandidate/candidate tick toward an election; the leader ticks heartbeats and
 * CheckQuorum. Section numbers refer to the Raft paper (§5-§8) and Ongaro's dissertation
 * (§3.10 leadership transfer, §4 membership, §6.4 ReadIndex, §9.6 PreVote).
 */
import { applyConfChange, confAfter, isLearner, isMember, isVoter, members, validateConfChange } from './conf-change.ts';
import { bytesEqual, CAMPAIGN_TRANSFER, type Message, MessageType, mergeAppends, message, voteResponseType } from './messages.ts';
import { Progress, ProgressState } from './progress.ts';
import { committedIndex, quorumActive, VoteResult, voteResult } from './quorum.ts';
import { RaftLog } from './raft-log.ts';
import { ReadOnly } from './read-only.ts';
import { type ProposeResult, Refusal, type Refused, type RequestResult } from './results.ts';
import type { RaftStorage } from './storage.ts';
import {
  BOOTSTRAP_TERM,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Index,
  type RaftRandom,
  ReadOnlyOption,
  type ReadState,
  type ReplicaId,
  Role,
  type Snapshot,
  type SoftState,
  type Term,
} from './types.ts';

export interface RaftConfig {
  readonly id: ReplicaId;
  /** Durable state written by the driver from earlier Readys; read-only to the core. */
  readonly storage: RaftStorage;
  /** Seeded randomness for election timeouts. */
  readonly random: RaftRandom;
  /** Ticks without a leader before an election; the timeout is random in [electionTick, 2*electionTick). */
  readonly electionTick: number;
  /** Ticks between leader heartbeats; must be < electionTick. */
  readonly heartbeatTick: number;
  /** PreVote (dissertation §9.6): a candidate first asks whether it could win. Default true. */
  readonly preVote?: boolean;
  /** CheckQuorum: a leader without quorum contact for an election timeout steps down. Default true. */
  readonly checkQuorum?: boolean;
  readonly readOnlyOption?: ReadOnlyOption;
  /** Unacknowledged appends in flight to one follower (flow control). Default 256. */
  readonly inflightMsgsMax?: number;
  /** Entries per append message. Default 64. */
  readonly entriesPerMsgMax?: number;
  /** Entry data bytes per append message (at least one entry is always sent). Default 1 MiB. */
  readonly bytesPerMsgMax?: number;
  /** Entries appended by the leader but not committed before proposals are refused. Default 4096. */
  readonly uncommittedEntriesMax?: number;
  /** ReadIndex requests waiting for confirmation on the leader. Default 4096. */
  readonly pendingReadsMax?: number;
  /** Committed entries handed out per Ready. Default 1024. */
  readonly committedEntriesPerReadyMax?: number;
  /** The index the state machine has durably applied; default: the snapshot index. */
  readonly applied?: Index;
  /**
   * Whether a leader tells followers about a new commit index at once (an append, empty if need
   * be, to every follower, as etcd does) or lazily: with its next append carrying entries, its
   * next heartbeat, or the answer to a follower's ReadIndex. Lazy halves the messages of a
   * steady write load (no commit-only append, no answer to it) at the cost of followers applying
   * up to a heartbeat interval later; the leader commits and applies exactly as before. Default
   * false (eager).
   */
  readonly lazyCommitBroadcast?: boolean;
  /**
   * Batched appends: an append to a follower whose previous message in the same Ready is an
   * append it continues is folded into that one (`mergeAppends`), so proposals arriving between
   * two Readys (while the last one is persisted) leave as one append per follower, answered
   * once. Default true.
   */
  readonly batchAppend?: boolean;
}

export class RaftConfigError extends Error {}

interface Limits {
  readonly inflightMsgsMax: number;
  readonly entriesPerMsgMax: number;
  readonly bytesPerMsgMax: number;
  readonly uncommittedEntriesMax: number;
  readonly pendingReadsMax: number;
  readonly committedEntriesPerReadyMax: number;
}

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isInteger(x) || x < 1) throw new RaftConfigError(`${name} must be a positive integer, got ${x}`);
  return x;
}

type CampaignKind = 'preElection' | 'election' | 'transfer';

/** Ticks of clock-phase slack a leader lease gives up (see `leaseValid`). */
const LEASE_MARGIN_TICKS = 1;

export interface ProgressView {
  readonly match: Index;
  readonly next: Index;
  readonly state: ProgressState;
  readonly recentActive: boolean;
  readonly isLearner: boolean;
  readonly inflight: number;
}

export interface RaftStatus {
  readonly id: ReplicaId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: Index;
  readonly lastIndex: Index;
  readonly firstIndex: Index;
  readonly confState: ConfState;
  readonly leadTransferee: ReplicaId | undefined;
  /** Per-replica replication progress; empty unless leader (and asked for). */
  readonly progress: ReadonlyMap<ReplicaId, ProgressView>;
}

export class Raft {
  readonly id: ReplicaId;
  readonly log: RaftLog;
  term: Term;
  vote: ReplicaId | undefined;
  lead: ReplicaId | undefined = undefined;
  role: Role = Role.Follower;
  /** Membership as of the applied index. */
  conf: ConfState;
  /** Messages to send once the Ready that carries them is persisted. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private readonly electionTick: number;
  private readonly heartbeatTick: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly readOnlyOption: ReadOnlyOption;
  private readonly limits: Limits;
  private readonly random: RaftRandom;

  private progress = new Map<ReplicaId, Progress>();
  private readonly votes = new Map<ReplicaId, boolean>();
  private readonly readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its term. */
  private pendingReads: { context: Uint8Array; from: ReplicaId }[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Ticks since this replica became leader: the leader's clock for its lease. */
  private leaderTicks = 0;
  /**
   * Lease mode: a restarted replica may have promised a leader, before crashing, not to vote
   * for an election timeout; it keeps that promise after the restart.
   */
  private restartGrace = false;
  /** Set once this leader sent TimeoutNow: the target's forced campaign ignores every lease. */
  private leaseRevoked = false;
  private randomizedElectionTimeout = 0;
  leadTransferee: ReplicaId | undefined = undefined;
  /** Index of the latest conf change this leader may have in flight; none may be proposed above applied. */
  private pendingConfIndex: Index = 0;

  /** See `RaftConfig.lazyCommitBroadcast`. */
  private readonly lazyCommitBroadcast: boolean;
  /** See `RaftConfig.batchAppend`. */
  private readonly batchAppend: boolean;

  private stepFn: (m: Message) => void = (m) => this.stepFollower(m);
  private tickFn: () => void = () => this.tickElection();

  constructor(config: RaftConfig) {
    if (!Number.isInteger(config.heartbeatTick) || config.heartbeatTick < 1) throw new RaftConfigError('heartbeatTick must be a positive integer');
    if (!Number.isInteger(config.electionTick) || config.electionTick <= config.heartbeatTick) {
      throw new RaftConfigError('electionTick must be an integer greater than heartbeatTick');
    }
    this.id = config.id;
    this.electionTick = config.electionTick;
    this.heartbeatTick = config.heartbeatTick;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.lazyCommitBroadcast = config.lazyCommitBroadcast ?? false;
    this.batchAppend = config.batchAppend ?? true;
    this.readOnlyOption = config.readOnlyOption ?? ReadOnlyOption.Safe;
    if (this.readOnlyOption === ReadOnlyOption.Lease && !this.checkQuorum) throw new RaftConfigError('lease reads require checkQuorum');
    this.random = config.random;
    this.limits = {
      inflightMsgsMax: positiveInt('inflightMsgsMax', config.inflightMsgsMax, 256),
      entriesPerMsgMax: positiveInt('entriesPerMsgMax', config.entriesPerMsgMax, 64),
      bytesPerMsgMax: positiveInt('bytesPerMsgMax', config.bytesPerMsgMax, 1 << 20),
      uncommittedEntriesMax: positiveInt('uncommittedEntriesMax', config.uncommittedEntriesMax, 4096),
      pendingReadsMax: positiveInt('pendingReadsMax', config.pendingReadsMax, 4096),
      committedEntriesPerReadyMax: positiveInt('committedEntriesPerReadyMax', config.committedEntriesPerReadyMax, 1024),
    };

    const storage = config.storage;
    const hs = storage.hardState();
    this.log = new RaftLog(storage, hs.commit, config.applied ?? 0);
    const snap = storage.snapshotMetadata();
    // Membership at the applied index: the snapshot's, plus every change applied since.
    this.conf = confAfter(snap, this.log.slice(snap.index + 1, this.log.applied + 1, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY));
    this.term = hs.term;
    this.vote = hs.vote;
    this.becomeFollower(this.term, undefined);
    this.restartGrace = this.readOnlyOption === ReadOnlyOption.Lease && hs.term > BOOTSTRAP_TERM;
  }

  // --- inspection -------------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  status(withProgress = true): RaftStatus {
    const progress = new Map<ReplicaId, ProgressView>();
    if (withProgress && this.role === Role.Leader) {
      for (const [id, pr] of this.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
          inflight: pr.inflights.count,
        });
      }
    }
    return {
      id: this.id,
      hardState: this.hardState(),
      softState: this.softState(),
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      confState: this.conf,
      leadTransferee: this.leadTransferee,
      progress,
    };
  }

  committedEntriesPerReadyMax(): number {
    return this.limits.committedEntriesPerReadyMax;
  }

  /** A voter of its own (applied) membership may campaign. */
  promotable(): boolean {
    return isVoter(this.conf, this.id);
  }

  // --- inputs -----------------------------------------------------------------------------

  tick(): void {
    this.tickFn();
  }

  step(m: Message): void {
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && (this.lead !== undefined || this.restartGrace) && this.electionElapsed < this.electionTick;
        // Dissertation §4.2.3: a replica that heard from a leader within the minimum election
        // timeout ignores vote requests, so a removed or partitioned replica cannot depose it.
        if (!force && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote request never changes our term.
      } else if (m.type === MessageType.PreVoteResponse && !m.reject) {
        // Granted pre-votes carry the future term; we bump it only once we win.
      } else if (m.type === MessageType.Append || m.type === MessageType.Heartbeat || m.type === MessageType.Snapshot) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, undefined);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Append || m.type === MessageType.Heartbeat)) {
        // A stale leader: answer with our term so it steps down. Without this, a replica whose
        // term rose while partitioned could never rejoin (the leader never learns the term).
        this.send({ type: MessageType.AppendResponse, to: m.from });
      } else if (m.type === MessageType.PreVote) {
        this.send({ type: MessageType.PreVoteResponse, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    this.stepFn(m);
  }

  /** §5.2/§5.4.1: one vote per term, only for a candidate whose log is at least as up-to-date. */
  private handleVoteRequest(m: Message): void {
    const canVote = this.vote === m.from || (this.vote === undefined && this.lead === undefined) || (m.type === MessageType.PreVote && m.term > this.term);
    const type = voteResponseType(m.type);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type, to: m.from, term: m.term });
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type, to: m.from, term: this.term, reject: true });
    }
  }

  /** Starts an election now (if this replica may): the driver's "campaign" and the election timeout. */
  hup(kind: 'normal' | 'transfer' = 'normal'): void {
    if (this.role === Role.Leader || !this.promotable()) return;
    // A committed but unapplied membership change could make this replica a non-voter.
    if (this.hasUnappliedConfChanges()) return;
    if (kind === 'transfer') this.campaign('transfer');
    else this.campaign(this.preVote ? 'preElection' : 'election');
  }

  propose(data: Uint8Array): ProposeResult {
    const refused = this.checkProposal();
    if (refused !== undefined) return refused;
    const index = this.appendEntries([{ type: 'normal', term: this.term, index: 0, data }]);
    this.bcastAppend();
    return { ok: true, index, term: this.term };
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    const refused = this.checkProposal();
    if (refused !== undefined) return refused;
    if (this.pendingConfIndex > this.log.applied) return this.refuse(Refusal.ConfChangePending);
    if (this.log.term(this.log.committed) !== this.term) return this.refuse(Refusal.LeaderNotReady);
    const invalid = validateConfChange(this.conf, change);
    if (invalid !== undefined) return this.refuse(invalid);
    const index = this.appendEntries([{ type: 'confChange', term: this.term, index: 0, change }]);
    this.pendingConfIndex = index;
    this.bcastAppend();
    return { ok: true, index, term: this.term };
  }

  /** Dissertation §3.10: hand leadership to `to` once it has caught up. */
  transferLeader(to: ReplicaId): RequestResult {
    if (this.role !== Role.Leader) return this.refuse(Refusal.NotLeader);
    if (to === this.id) {
      this.abortLeaderTransfer();
      return { ok: true };
    }
    if (!isVoter(this.conf, to)) return this.refuse(Refusal.NotVoter);
    if (this.leadTransferee === to) return { ok: true };
    this.abortLeaderTransfer();
    // The transfer is abandoned if it has not happened within an election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = to;
    const pr = this.progress.get(to);
    if (pr !== undefined && pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.maybeSendAppend(to, true);
    return { ok: true };
  }

  /** Dissertation §6.4: ask for a linearizable read point; the answer comes as a ReadState. */
  readIndex(context: Uint8Array): RequestResult {
    if (this.role === Role.Leader) return this.leaderReadIndex(context, this.id);
    if (this.role === Role.Follower && this.lead !== undefined) {
      this.send({ type: MessageType.ReadIndex, to: this.lead, context });
      return { ok: true };
    }
    return this.refuse(Refusal.NotLeader);
  }

  /** The transport could not deliver a snapshot (or did): leave the snapshot state. */
  reportSnapshot(to: ReplicaId, ok: boolean): void {
    const pr = this.role === Role.Leader ? this.progress.get(to) : undefined;
    if (pr === undefined || pr.state !== ProgressState.Snapshot) return;
    pr.becomeProbe();
    // On success wait for the follower's append response before sending more; on failure retry.
    pr.probeSent = ok;
  }

  /** The transport lost contact with `to`: stop pipelining to it until it answers a probe. */
  reportUnreachable(to: ReplicaId): void {
    const pr = this.role === Role.Leader ? this.progress.get(to) : undefined;
    if (pr !== undefined && pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  // --- driver callbacks (from RaftNode.advance) --------------------------------------------

  /** Entries up to the log's stable index are durable: the leader counts its own copy now. */
  onPersisted(): void {
    if (this.role !== Role.Leader) return;
    const self = this.progress.get(this.id);
    if (self?.maybeUpdate(this.persistedIndex()) && this.maybeCommit()) this.onCommitAdvanced();
  }

  /** A committed conf change entry was applied by the state machine: it takes effect now. */
  applyConfChange(change: ConfChange): ConfState {
    const next = applyConfChange(this.conf, change);
    if (next === this.conf) return this.conf;
    this.conf = next;
    this.syncProgress();
    if (this.role !== Role.Leader) return this.conf;
    if (!isVoter(this.conf, this.id)) {
      // Removed (the core never demotes): step down; the remaining voters elect a leader.
      this.becomeFollower(this.term, undefined);
      return this.conf;
    }
    if (this.leadTransferee !== undefined && !isVoter(this.conf, this.leadTransferee)) this.abortLeaderTransfer();
    // A smaller quorum may commit more; a new replica needs contact now.
    if (this.maybeCommit()) this.onCommitAdvanced(true);
    else this.bcastAppend();
    return this.conf;
  }

  // --- roles ------------------------------------------------------------------------------

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = undefined;
    }
    this.lead = undefined;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.leaderTicks = 0;
    this.restartGrace = false;
    this.leaseRevoked = false;
    this.randomizedElectionTimeout = this.electionTick + Math.floor(this.random.next() * this.electionTick);
    this.abortLeaderTransfer();
    this.votes.clear();
    this.progress = new Map();
    this.syncProgress();
    // Everyone must prove liveness to this term's leader before the first CheckQuorum.
    for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
    this.pendingConfIndex = 0;
    this.readOnly.reset();
    this.pendingReads = [];
  }

  becomeFollower(term: Term, lead: ReplicaId | undefined): void {
    this.stepFn = (m) => this.stepFollower(m);
    this.tickFn = () => this.tickElection();
    this.reset(term);
    this.lead = lead;
    this.role = Role.Follower;
  }

  private becomePreCandidate(): void {
    if (this.role === Role.Leader) throw new Error('invalid transition leader -> preCandidate');
    // Changes neither term nor vote: a pre-election that fails leaves no trace.
    this.stepFn = (m) => this.stepCandidate(m);
    this.tickFn = () => this.tickElection();
    this.votes.clear();
    this.lead = undefined;
    this.role = Role.PreCandidate;
  }

  private becomeCandidate(): void {
    if (this.role === Role.Leader) throw new Error('invalid transition leader -> candidate');
    this.stepFn = (m) => this.stepCandidate(m);
    this.tickFn = () => this.tickElection();
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    if (this.role === Role.Follower) throw new Error('invalid transition follower -> leader');
    this.stepFn = (m) => this.stepLeader(m);
    this.tickFn = () => this.tickHeartbeat();
    this.reset(this.term);
    this.lead = this.id;
    this.role = Role.Leader;
    const self = this.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Any conf change already in the log must apply before this leader proposes another.
    this.pendingConfIndex = this.log.lastIndex();
    // §5.4.2/§8: an entry of the new term, so earlier entries commit and ReadIndex can start.
    this.appendEntries([{ type: 'normal', term: this.term, index: 0, data: new Uint8Array(0) }]);
  }

  private campaign(kind: CampaignKind): void {
    let term: Term;
    let type: MessageType;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      type = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      type = MessageType.Vote;
      term = this.term;
    }
    this.votes.set(this.id, true);
    if (voteResult(this.conf.voters, this.votes) === VoteResult.Won) {
      // A single voter wins at once.
      if (kind === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      this.send({
        type,
        to: id,
        term,
        index: lastIndex,
        logTerm: lastTerm,
        context: kind === 'transfer' ? CAMPAIGN_TRANSFER : undefined,
      });
    }
  }

  // --- ticks ------------------------------------------------------------------------------

  /**
   * Lease reads: `ticks` of real time passed that `tick()` did not count (the driver's timer ran
   * late). Only the leader's lease clock moves (its lease ages); elections, heartbeats and
   * CheckQuorum stay on `tick()`, so a stalled driver does not step down or campaign sooner.
   */
  advanceLeaseClock(ticks: number): void {
    if (this.role === Role.Leader && ticks > 0) this.leaderTicks += ticks;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) this.restartGrace = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup();
    }
  }

  private tickHeartbeat(): void {
    this.leaderTicks++;
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        const active = (id: ReplicaId) => id === this.id || this.progress.get(id)?.recentActive === true;
        if (!quorumActive(this.conf.voters, active)) {
          this.becomeFollower(this.term, undefined);
          return;
        }
        for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
      }
      if (this.leadTransferee !== undefined) this.abortLeaderTransfer();
    }
    if (this.heartbeatElapsed >= this.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  // --- steps per role ---------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Append:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snapshot:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        // Transfers skip PreVote: the old leader asked for it, nobody is partitioned.
        this.hup('transfer');
        return;
      case MessageType.ReadIndexResponse:
        this.readStates.push({ index: m.index, context: m.context ?? new Uint8Array(0) });
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    const myResponse = this.role === Role.PreCandidate ? MessageType.PreVoteResponse : MessageType.VoteResponse;
    switch (m.type) {
      case MessageType.Append:
        // §5.2: a leader of our term exists.
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snapshot:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myResponse: {
        this.votes.set(m.from, !m.reject);
        const result = voteResult(this.conf.voters, this.votes);
        if (result === VoteResult.Won) {
          if (this.role === Role.PreCandidate) {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          this.becomeFollower(this.term, undefined);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    if (m.type === MessageType.ReadIndex) {
      this.leaderReadIndex(m.context ?? new Uint8Array(0), m.from);
      return;
    }
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.AppendResponse:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResponse:
        this.handleHeartbeatResponse(m, pr);
        return;
      default:
        return;
    }
  }

  // --- follower side of replication -------------------------------------------------------

  /** §5.3 AppendEntries. */
  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: MessageType.AppendResponse, to: m.from, index: this.log.committed });
      return;
    }
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      this.send({ type: MessageType.AppendResponse, to: m.from, index: last });
      return;
    }
    // Reject with a hint: the last index whose term could still match (fast backtracking).
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: MessageType.AppendResponse, to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(match, commit), so this never exceeds what we hold.
    this.log.commitTo(m.commit);
    this.send({ type: MessageType.HeartbeatResponse, to: m.from, index: m.index, context: m.context });
  }

  /** §7 InstallSnapshot. */
  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    const restored = this.restore(s);
    this.send({ type: MessageType.AppendResponse, to: m.from, index: restored ? this.log.lastIndex() : this.log.committed });
  }

  /**
   * Replaces the log with a snapshot newer than our commit index; returns false if it taught us
   * nothing new (at most it fast-forwards commit, when we already hold its last entry).
   * The snapshot's membership may leave us out (a learner added after the snapshot was taken):
   * we install it anyway and learn of our addition from the entries that follow.
   */
  private restore(s: Snapshot): boolean {
    const { index, term } = s.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(s);
    this.conf = s.metadata.confState;
    this.syncProgress();
    return true;
  }

  // --- leader side of replication ---------------------------------------------------------

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === ProgressState.Probe)) return;
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        if (pr.match + 1 >= this.log.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    const committed = this.maybeCommit();
    if (committed) this.onCommitAdvanced();
    if ((!committed || this.lazyCommitBroadcast) && wasPaused) this.maybeSendAppend(m.from, true);
    while (this.maybeSendAppend(m.from, false)) {
      // Fill the inflight window.
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    pr.leaseAck = Math.max(pr.leaseAck, m.index);
    if (pr.match < this.log.lastIndex() || pr.state === ProgressState.Probe) {
      // A full inflight window whose appends were all lost would stall forever: probe it with an
      // empty append at `next`; a follower missing that index rejects, and we fall back to probe.
      if (pr.state === ProgressState.Replicate && pr.isPaused()) this.sendEmptyAppend(m.from, pr);
      else this.maybeSendAppend(m.from, true);
    }
    if (m.context === undefined || m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    const votes = new Map<ReplicaId, boolean>();
    for (const id of acks) votes.set(id, true);
    if (voteResult(this.conf.voters, votes) !== VoteResult.Won) return;
    for (const req of this.readOnly.advance(m.context)) this.answerRead(req.index, req.context, req.from);
  }

  /** §5.3/§5.4.2: commit the highest index a quorum holds, but only if it is of this term. */
  private maybeCommit(): boolean {
    const index = committedIndex(this.conf.voters, (id) => this.progress.get(id)?.match);
    if (!Number.isFinite(index) || index <= this.log.committed) return false;
    if (this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    return true;
  }

  /** `broadcast`: tell every follower now (always when eager; see `RaftConfig.lazyCommitBroadcast`). */
  private onCommitAdvanced(broadcast = !this.lazyCommitBroadcast): void {
    this.releasePendingReads();
    if (broadcast) this.bcastAppend();
  }

  /**
   * Lazy commit broadcast: tells every follower the commit index now (an append, empty if need
   * be), for commits whose followers should apply soon (membership, splits, merges). No-op
   * unless leading.
   */
  broadcastCommit(): void {
    if (this.role === Role.Leader) this.bcastAppend();
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  private bcastHeartbeat(): void {
    const context = this.readOnly.lastPendingContext();
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold.
      this.send({ type: MessageType.Heartbeat, to: id, commit: Math.min(pr.match, this.log.committed), index: this.leaderTicks, context });
    }
  }

  /** Sends the entries `to` needs next (or a snapshot); false if nothing was sent. */
  private maybeSendAppend(to: ReplicaId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries = prevTerm === undefined ? undefined : this.log.entriesFrom(pr.next, this.limits.entriesPerMsgMax, this.limits.bytesPerMsgMax);
    if (prevTerm === undefined || entries === undefined) return this.maybeSendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    const m = message({ type: MessageType.Append, to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed }, this.id, this.term);
    const folded = this.foldAppend(m);
    if (!folded) this.msgs.push(m);
    pr.sentEntries(entries.length, prevIndex + entries.length, folded);
    return true;
  }

  private sendEmptyAppend(to: ReplicaId, pr: Progress): void {
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      // Compacted since: whatever the follower holds, it now needs probing (or a snapshot).
      pr.becomeProbe();
      this.maybeSendAppend(to, true);
      return;
    }
    this.send({ type: MessageType.Append, to, index: prevIndex, logTerm: prevTerm, commit: this.log.committed });
  }

  private maybeSendSnapshot(to: ReplicaId, pr: Progress): boolean {
    // Only to a replica that answers: a snapshot is expensive.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    if (snapshot === undefined) return false;
    this.send({ type: MessageType.Snapshot, to, snapshot });
    pr.becomeSnapshot(snapshot.metadata.index);
    return true;
  }

  private sendTimeoutNow(to: ReplicaId): void {
    this.leaseRevoked = true;
    this.send({ type: MessageType.TimeoutNow, to });
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = undefined;
  }

  // --- reads ------------------------------------------------------------------------------

  private leaderReadIndex(context: Uint8Array, from: ReplicaId): RequestResult {
    if (this.readOnly.size + this.pendingReads.length >= this.limits.pendingReadsMax) return this.refuse(Refusal.TooManyPendingReads);
    // §6.4 step 1: until this leader commits an entry of its term its commit index may be stale.
    if (this.log.term(this.log.committed) !== this.term) {
      this.pendingReads.push({ context, from });
      return { ok: true };
    }
    if (this.conf.voters.length === 1 || (this.readOnlyOption === ReadOnlyOption.Lease && this.leaseValid())) {
      this.answerRead(this.log.committed, context, from);
      return { ok: true };
    }
    if (this.readOnly.add(this.log.committed, context, from)) {
      this.readOnly.recvAck(this.id, context);
      this.bcastHeartbeat();
    }
    return { ok: true };
  }

  /**
   * Dissertation §6.4.1: a quorum answered a heartbeat this leader sent at tick S, and each of
   * them then ignores vote requests for electionTick of its own ticks. No other leader can exist
   * before S + electionTick, less a tick of margin for clock phase. Ticks must run at the same
   * rate everywhere: a paused or slow leader clock breaks this (the lease's clock assumption).
   */
  private leaseValid(): boolean {
    if (this.leaseRevoked) return false;
    const confirmedAt = committedIndex(this.conf.voters, (id) => (id === this.id ? this.leaderTicks : this.progress.get(id)?.leaseAck));
    return this.leaderTicks - confirmedAt < this.electionTick - LEASE_MARGIN_TICKS;
  }

  private releasePendingReads(): void {
    if (this.pendingReads.length === 0 || this.log.term(this.log.committed) !== this.term) return;
    const reads = this.pendingReads;
    this.pendingReads = [];
    for (const r of reads) this.leaderReadIndex(r.context, r.from);
  }

  private answerRead(index: Index, context: Uint8Array, from: ReplicaId): void {
    if (from === this.id) {
      this.readStates.push({ index, context });
      return;
    }
    // Lazy commit broadcast: the follower must learn a commit index up to `index` to serve the
    // read; tell it now rather than at the next heartbeat (the append goes first).
    if (this.lazyCommitBroadcast) this.maybeSendAppend(from, true);
    this.send({ type: MessageType.ReadIndexResponse, to: from, index, context });
  }

  // --- helpers ----------------------------------------------------------------------------

  private checkProposal(): Refused | undefined {
    if (this.role !== Role.Leader) return this.refuse(Refusal.NotLeader);
    if (this.leadTransferee !== undefined) return this.refuse(Refusal.LeaderTransferring);
    if (this.log.lastIndex() - this.log.committed >= this.limits.uncommittedEntriesMax) return this.refuse(Refusal.TooManyUncommitted);
    return undefined;
  }

  private refuse(reason: Refused['reason']): Refused {
    return { ok: false, reason, leader: this.lead, term: this.term };
  }

  /** Appends entries of this leader's term after the last index; returns the new last index. */
  private appendEntries(ents: readonly Entry[]): Index {
    let index = this.log.lastIndex();
    const stamped = ents.map((e) => ({ ...e, term: this.term, index: ++index }));
    return this.log.append(stamped);
  }

  /** The last index the driver has persisted (the leader's own acknowledgement). */
  private persistedIndex(): Index {
    return this.log.unstable.snapshot !== undefined ? 0 : this.log.unstable.offset - 1;
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.unstable.snapshot !== undefined) return true;
    if (this.log.committed <= this.log.applied) return false;
    const pending = this.log.slice(this.log.applied + 1, this.log.committed + 1, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
    return pending.some((e) => e.type === 'confChange');
  }

  /** Makes the progress map match the membership: new replicas start probing at the log's end. */
  private syncProgress(): void {
    const ids = members(this.conf);
    for (const id of this.progress.keys()) if (!isMember(this.conf, id)) this.progress.delete(id);
    for (const id of ids) {
      let pr = this.progress.get(id);
      if (pr === undefined) {
        pr = new Progress(this.log.lastIndex() + 1, this.limits.inflightMsgsMax, isLearner(this.conf, id));
        // A new replica counts as active until the next CheckQuorum round.
        pr.recentActive = true;
        if (id === this.id) pr.match = this.persistedIndex();
        this.progress.set(id, pr);
      }
      pr.isLearner = isLearner(this.conf, id);
    }
  }

  private send(m: Pick<Message, 'type' | 'to'> & Partial<Omit<Message, 'from'>>): void {
    this.msgs.push(message(m, this.id, this.term));
  }

  /**
   * Folds `m` (an append) into the last message queued for its follower when that one is an
   * append `m` continues (`RaftConfig.batchAppend`); false if it must leave as a message of its own.
   */
  private foldAppend(m: Message): boolean {
    if (!this.batchAppend || m.entries.length === 0) return false;
    for (let i = this.msgs.length - 1; i >= 0; i--) {
      const prev = this.msgs[i] as Message;
      if (prev.to !== m.to) continue;
      // Only into the follower's last message: what a follower receives stays in order.
      const merged = mergeAppends(prev, m, this.limits.entriesPerMsgMax, this.limits.bytesPerMsgMax);
      if (merged === undefined) return false;
      this.msgs[i] = merged;
      return true;
    }
    return false;
  }
}
