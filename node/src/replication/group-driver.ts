/**
 * The driver of one Raft group on this node: its `RaftNode` over a `DurableRaftLog`, its state
 * machine, and the callers waiting on it (proposals and ReadIndex reads). `MultiRaft` owns the
 * node-wide parts (timer, Ready loop, group commit, transport) and calls the phases here in
 * the Ready order: `takeReady` → persist (`log.stage`, one engine write for all groups) →
 * `persisted` → send → `apply` → `advance`.
 *
 * Waiters:
 * - a proposal waits at its (index, term); when the entry applies locally it resolves with the
 *   apply outcome; if this replica stops leading that term before the entry was handed to the
 *   state machine as committed, it is rejected with `ProposalOutcomeUnknownError`. Write concern
 *   (ADR 0008 §7): `leader` resolves as soon as the entry is durable in this leader's log (and
 *   the later outcome is dropped); `all` resolves only once, after the apply, every voter's match
 *   index reached the entry, or rejects with `NotOnAllReplicasError` (committed, not everywhere
 *   yet) when that takes longer than its timeout or leadership moves;
 * - a proposal refused only because leadership is changing hands HERE (a leader transfer is in
 *   progress, or this new leader has not applied an entry of its term yet) is held, not refused,
 *   for up to `holdTicks`: nothing is proposed meanwhile. When the transfer ends it is proposed
 *   (this replica still leads) or refused `notLeader` with the new leader as hint, so the caller
 *   goes straight there (the SDK without a backoff, the server by forwarding) instead of backing
 *   off and retrying blind; at `holdTicks` it is refused with the reason it was held for;
 * - a read waits for its ReadState (the leader's confirmed commit index), then for the local
 *   applied index to reach it; it is rejected (retryably) when the leader or term it asked
 *   changes before the ReadState arrives, or after `readTimeoutTicks`.
 *
 * Lease reads (`raft.readOnlyOption` = lease, `leaseClock` set; ADR 0008 "Changes"): the core
 * answers a leader's read at once while its lease holds, counted in the leader's own ticks. The
 * runtime's timer ticks once per fire, so a leader whose event loop stalled would count too few
 * ticks and trust a lease that already expired in real time (ADR 0006 §7). So in lease mode the
 * leader's lease clock follows the monotonic clock: on each timer fire, and before every read
 * and every stepped message, it is advanced by the real time the ticks did not count
 * (`RaftNode.advanceLeaseClock`). Elections, heartbeats and CheckQuorum stay on one tick per
 * fire: time lost to a stall never counts toward an election or a step-down.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import type { HybridClock } from '../clock/hybrid-clock.ts';
import type { Mutation, StorageEngine } from '../engine/types.ts';
import type { Message } from '../raft/messages.ts';
import type { RaftConfig } from '../raft/raft.ts';
import { RaftNode, type Ready } from '../raft/raw-node.ts';
import { Refusal } from '../raft/results.ts';
import { type ConfState, type Entry, type Index, type RaftRandom, ReadOnlyOption, type ReadState, type ReplicaId, Role, type Term } from '../raft/types.ts';
import type { DurableRaftLog } from './durable-raft-log.ts';
import type { AppliedEntry, AppliedState, ApplyOutcome, GroupStateMachine } from './group-state-machine.ts';
import type { GroupId } from './raft-keys.ts';
import { nodeOf, replicaOf } from './replica-id.ts';
import { type DataMutation, encodeCommand } from './replicated-command.ts';
import {
  NotOnAllReplicasError,
  notLeaderError,
  ProposalDroppedError,
  ProposalOutcomeUnknownError,
  type ProposeApplied,
  type ProposeOptions,
  ProposeRefusal,
  type ProposeRefused,
  type ProposeResult,
  WriteConcern,
} from './replication-results.ts';

/** Default wait of write concern `all` for every voter, after the entry applied on the leader. */
export const CONCERN_ALL_TIMEOUT_MS = 5000;

/** The core's tunables a runtime may set (ids, storage and randomness come from the runtime). */
export type RaftTuning = Partial<
  Pick<
    RaftConfig,
    | 'preVote'
    | 'checkQuorum'
    | 'readOnlyOption'
    | 'inflightMsgsMax'
    | 'entriesPerMsgMax'
    | 'bytesPerMsgMax'
    | 'uncommittedEntriesMax'
    | 'pendingReadsMax'
    | 'committedEntriesPerReadyMax'
    | 'lazyCommitBroadcast'
  >
>;

export interface GroupDriverOptions {
  readonly group: GroupId;
  readonly self: NodeId;
  readonly engine: StorageEngine;
  readonly log: DurableRaftLog;
  readonly sm: GroupStateMachine;
  readonly clock: HybridClock;
  readonly random: RaftRandom;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly raft?: RaftTuning;
  /** Proposals waiting for their outcome, at most; beyond, `busy`. */
  readonly pendingProposalsMax: number;
  /** Reads waiting for their read index or apply, at most; beyond, UNAVAILABLE. */
  readonly pendingReadsMax: number;
  /** A read still unanswered after this many ticks is rejected (retryable). */
  readonly readTimeoutTicks: number;
  /** How long a proposal is held while leadership changes hands here (see the file comment); 0: never held. */
  readonly holdTicks: number;
  /** Counts a proposal being held. */
  readonly onHeld?: () => void;
  /** Applied entries kept in the log before it is compacted into a snapshot. */
  readonly logEntriesMax: number;
  /** A fresh proposal id (unique on this node across restarts). */
  readonly nextProposalId: () => bigint;
  /**
   * Prefix of this run's ReadIndex contexts, unique per node and run: a late answer to a read
   * asked before a restart must never match a read asked after it.
   */
  readonly readContextPrefix: string;
  /** Something changed that the Ready loop should look at. */
  readonly kick: () => void;
  /**
   * Lease reads only: the runtime's tick period and a monotonic clock (ms). A leader is then
   * ticked by this clock (see the file comment); without it every replica ticks once per fire.
   */
  readonly leaseClock?: LeaseClock;
}

export interface LeaseClock {
  readonly tickMs: number;
  readonly nowMs: () => number;
}

export interface GroupStatus {
  readonly group: GroupId;
  readonly replica: ReplicaId;
  readonly role: Role;
  readonly leader: NodeId | undefined;
  readonly term: Term;
  readonly commit: Index;
  /** What the engine confirmed applied (may trail the core's view while writes are in flight). */
  readonly applied: AppliedState;
  readonly firstIndex: Index;
  readonly lastIndex: Index;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Leader that has applied an entry of its term: it accepts proposals. */
  readonly serving: boolean;
  readonly pendingProposals: number;
  readonly pendingReads: number;
  readonly failed: boolean;
  /** A streamed snapshot is being written into the range: local reads must wait (ADR 0008 §9). */
  readonly installingSnapshot: boolean;
}

export interface CompactionResult {
  readonly compacted: boolean;
}

interface ProposalWaiter {
  readonly index: Index;
  readonly term: Term;
  readonly id: bigint;
  readonly concern: WriteConcern;
  readonly commitTs: bigint;
  readonly mutations: number;
  /** Handed to the state machine as committed: leadership changes no longer matter. */
  committed: boolean;
  readonly resolve: (r: ProposeResult) => void;
  readonly reject: (e: Error) => void;
}

/** Write concern `all`: an applied entry waiting for every voter's match index. */
interface AllWaiter {
  readonly result: ProposeApplied;
  readonly deadlineMs: number;
  readonly resolve: (r: ProposeResult) => void;
  readonly reject: (e: Error) => void;
}

interface ReadWaiter {
  readonly term: Term;
  readonly leader: ReplicaId | undefined;
  readonly deadlineTick: number;
  index: Index | undefined;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** A proposal refused while leadership changes hands here, waiting to be proposed or redirected. */
interface HeldProposal {
  readonly mutations: readonly DataMutation[];
  readonly opts: ProposeOptions;
  readonly deadlineTick: number;
  readonly resolve: (r: ProposeResult | Promise<ProposeResult>) => void;
  /** Mutations `encodeCommand` refuses (INVALID_ARGUMENT): found only once it is tried again. */
  readonly reject: (e: Error) => void;
}

/** Refusals that end on their own within an election timeout, with a leader to go to. */
const HELD_REFUSALS: ReadonlySet<ProposeRefusal> = new Set([ProposeRefusal.LeaderTransferring, ProposeRefusal.WarmingUp]);

const REFUSAL_OF_CORE: Partial<Record<string, ProposeRefusal>> = {
  [Refusal.NotLeader]: ProposeRefusal.NotLeader,
  [Refusal.LeaderTransferring]: ProposeRefusal.LeaderTransferring,
  [Refusal.TooManyUncommitted]: ProposeRefusal.Busy,
};

export class GroupDriver {
  readonly group: GroupId;
  readonly replica: ReplicaId;
  readonly node: RaftNode;
  readonly log: DurableRaftLog;
  readonly sm: GroupStateMachine;
  private readonly o: GroupDriverOptions;
  private readonly proposals = new Map<Index, ProposalWaiter>();
  private readonly reads = new Map<string, ReadWaiter>();
  private readonly allWaiters = new Set<AllWaiter>();
  private held: HeldProposal[] = [];
  private ticks = 0;
  /** `wantFreshSnapshot`: compact even below `logEntriesMax`. */
  private freshSnapshotWanted = false;
  private readSeq = 0;
  /** Lease mode: monotonic time up to which this replica's lease clock has been advanced. */
  private tickedToMs: number;
  private readonly leaseClock: LeaseClock | undefined;
  private failedWith: Error | undefined;
  /** `raft.lazyCommitBroadcast`: followers learn most commits with the next append or heartbeat. */
  private readonly lazyCommit: boolean;

  constructor(o: GroupDriverOptions) {
    this.o = o;
    this.group = o.group;
    this.replica = replicaOf(o.self);
    this.log = o.log;
    this.sm = o.sm;
    this.node = new RaftNode({
      ...o.raft,
      id: this.replica,
      storage: o.log,
      random: o.random,
      electionTick: o.electionTick,
      heartbeatTick: o.heartbeatTick,
      applied: o.sm.applied.index,
    });
    // Membership at the applied index; the state machine follows the log from here (merge absorbs check it).
    o.sm.assumeMembership(this.node.confState());
    this.lazyCommit = o.raft?.lazyCommitBroadcast === true;
    this.leaseClock = o.raft?.readOnlyOption === ReadOnlyOption.Lease ? o.leaseClock : undefined;
    this.tickedToMs = this.leaseClock?.nowMs() ?? 0;
  }

  get failed(): Error | undefined {
    return this.failedWith;
  }

  // --- inputs -------------------------------------------------------------------------------

  tick(): void {
    this.node.tick();
    if (this.leaseClock !== undefined) this.catchUpLease(1);
    this.ticks++;
    this.releaseHeld();
    for (const [key, r] of this.reads) {
      if (r.index === undefined && this.ticks >= r.deadlineTick) {
        this.reads.delete(key);
        r.reject(new KeyVaError('UNAVAILABLE', `group ${this.group}: read index not confirmed within ${this.o.readTimeoutTicks} ticks; retry`));
      }
    }
    this.checkAll();
  }

  step(m: Message): void {
    if (this.leaseClock !== undefined) this.catchUpLease(0);
    this.node.step(m);
    this.checkAll();
  }

  /**
   * Lease mode: `counted` ticks were just given to the core; advances the lease clock by the
   * whole ticks of monotonic time beyond them. Never behind real time, so the lease never
   * outlives it; a clock ahead only shortens the lease (the accounting restarts from now).
   */
  private catchUpLease(counted: number): void {
    const lc = this.leaseClock as LeaseClock;
    const now = lc.nowMs();
    const from = Math.min(this.tickedToMs + counted * lc.tickMs, now);
    const owed = Math.floor((now - from) / lc.tickMs);
    if (owed > 0) this.node.advanceLeaseClock(owed);
    this.tickedToMs = from + owed * lc.tickMs;
  }

  /**
   * Proposes a write batch stamped with this leader's clock. Refuses (nothing proposed) unless
   * this replica leads and has applied an entry of its term, holding it first while leadership
   * changes hands here (see the file comment); otherwise resolves once the entry applied
   * locally. Throws INVALID_ARGUMENT for mutations the engine would refuse.
   */
  propose(mutations: readonly DataMutation[], opts: ProposeOptions = {}): Promise<ProposeResult> {
    const r = this.attempt(mutations, opts);
    if (r instanceof Promise) return r;
    if (!HELD_REFUSALS.has(r.reason) || this.o.holdTicks <= 0 || this.held.length >= this.o.pendingProposalsMax) return Promise.resolve(r);
    this.o.onHeld?.();
    return new Promise((resolve, reject) => {
      this.held.push({ mutations, opts, deadlineTick: this.ticks + this.o.holdTicks, resolve, reject });
    });
  }

  /**
   * Tries the held proposals again: proposed, still held (leadership still changing hands, or
   * no leader known yet), or refused (another leader leads: `notLeader` with its id; or held too
   * long).
   */
  private releaseHeld(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const h of held) {
      let r: ProposeResult | Promise<ProposeResult>;
      try {
        r = this.attempt(h.mutations, h.opts);
      } catch (e) {
        h.reject(e as Error); // never into the tick or the Ready turn that released it
        continue;
      }
      const waiting = !(r instanceof Promise) && (HELD_REFUSALS.has(r.reason) || (r.reason === ProposeRefusal.NotLeader && r.leaderHint === undefined));
      if (waiting && this.ticks < h.deadlineTick) this.held.push(h);
      else h.resolve(r);
    }
  }

  /** One attempt at proposing: the outcome's promise, or the refusal (nothing proposed). */
  private attempt(mutations: readonly DataMutation[], opts: ProposeOptions): Promise<ProposeResult> | ProposeRefused {
    const concern = opts.concern ?? WriteConcern.Majority;
    const term = this.node.term;
    if (this.failedWith) return this.refused(ProposeRefusal.Stopped, undefined, term);
    if (this.node.role !== Role.Leader) return this.refused(ProposeRefusal.NotLeader, this.node.leader, term);
    // ADR 0008 §5: until it applied its own first entry, a new leader may not have applied (and
    // so not observed the commit timestamps of) entries of earlier terms.
    if (this.sm.applied.term !== term) return this.refused(ProposeRefusal.WarmingUp, this.replica, term);
    if (this.proposals.size + this.allWaiters.size >= this.o.pendingProposalsMax) return this.refused(ProposeRefusal.Busy, this.replica, term);
    const id = this.o.nextProposalId();
    const commitTs = this.o.clock.now();
    const data = encodeCommand({ id, mutations, commitTs, nowMs: this.o.clock.nowMs(), requestId: opts.requestId });
    const r = this.node.propose(data);
    if (!r.ok) return this.refused(REFUSAL_OF_CORE[r.reason] ?? ProposeRefusal.Busy, r.leader, r.term);
    this.o.kick();
    const outcome = new Promise<ProposeResult>((resolve, reject) => {
      this.proposals.set(r.index, { index: r.index, term: r.term, id, concern, commitTs, mutations: mutations.length, committed: false, resolve, reject });
    });
    if (concern !== WriteConcern.All) return outcome;
    const timeoutMs = opts.allTimeoutMs ?? CONCERN_ALL_TIMEOUT_MS;
    return outcome.then((res) => {
      if (!res.ok) return res; // a failed condition wrote nothing anywhere: nothing to wait for
      return new Promise<ProposeResult>((resolve, reject) => {
        this.allWaiters.add({ result: res, deadlineMs: this.o.clock.nowMs() + timeoutMs, resolve, reject });
        this.checkAll();
      });
    });
  }

  /** Linearizable read barrier (ReadIndex): resolves once this replica applied the leader's confirmed commit index. */
  read(): Promise<void> {
    if (this.failedWith) return Promise.reject(new KeyVaError('UNAVAILABLE', `group ${this.group} is stopped`));
    // Lease mode: the lease is judged on a clock that has caught up with real time.
    if (this.leaseClock !== undefined) this.catchUpLease(0);
    if (this.reads.size >= this.o.pendingReadsMax) {
      return Promise.reject(new KeyVaError('UNAVAILABLE', `group ${this.group}: ${this.reads.size} reads pending`, { limit: String(this.o.pendingReadsMax) }));
    }
    const key = `${this.o.readContextPrefix}:${this.readSeq++}`;
    const term = this.node.term;
    const leader = this.node.leader;
    const r = this.node.readIndex(Buffer.from(key, 'utf8'));
    if (!r.ok) {
      if (r.reason === Refusal.TooManyPendingReads) return Promise.reject(new KeyVaError('UNAVAILABLE', `group ${this.group}: too many pending reads`));
      return Promise.reject(notLeaderError(this.group, r.leader === undefined ? undefined : nodeOf(r.leader)));
    }
    const done = new Promise<void>((resolve, reject) => {
      this.reads.set(key, {
        term,
        leader,
        deadlineTick: this.ticks + this.o.readTimeoutTicks,
        index: undefined,
        resolve,
        reject,
      });
    });
    // A lease read is answered inside readIndex: serve it now, without a Ready turn.
    if (this.leaseClock === undefined || !this.takeReadStates()) this.o.kick();
    return done;
  }

  /** Read points the core produced outside a Ready (lease reads); false if there were none. */
  private takeReadStates(): boolean {
    const states = this.node.takeReadStates();
    if (states.length === 0) return false;
    this.recordReadStates(states);
    return true;
  }

  private recordReadStates(states: readonly ReadState[]): void {
    for (const rs of states) {
      const w = this.reads.get(Buffer.from(rs.context).toString('utf8'));
      if (w !== undefined) w.index = rs.index;
    }
    this.serveReads();
  }

  // --- Ready phases, in order -----------------------------------------------------------------

  takeReady(): Ready | undefined {
    // While a streamed snapshot is written into the range, nothing else is submitted (ADR 0008 §9).
    if (this.failedWith || this.sm.installing || !this.node.hasReady()) return undefined;
    return this.node.ready();
  }

  /** The engine mutations making `rd` durable (snapshot, entries, hard state). */
  stage(rd: Ready): Mutation[] {
    return this.log.stage(rd);
  }

  /** `rd` is durable: record it in the log's in-memory copy; answer write concern `leader`. */
  persisted(rd: Ready): void {
    this.log.commit(rd);
    for (const e of rd.entries) {
      const w = this.proposals.get(e.index);
      if (w === undefined || w.concern !== WriteConcern.Leader || w.term !== e.term) continue;
      // Durable here only: the later apply outcome (or an unknown one) is not reported.
      w.resolve({ ok: true, durability: 'leader', index: w.index, term: w.term, commitTs: w.commitTs, existed: new Array<boolean>(w.mutations).fill(false) });
    }
  }

  /** Submits the snapshot and committed entries to the state machine and records read points. */
  apply(rd: Ready): void {
    if (rd.snapshot !== undefined) {
      this.sm.installSnapshot(rd.snapshot).then(
        () => {
          this.serveReads();
          this.o.kick(); // Readys held while the snapshot was installing
        },
        () => undefined, // the state machine reports the failure through onFatal
      );
    }
    if (rd.committedEntries.length > 0) {
      const applied = this.sm.apply(rd.committedEntries);
      if (this.lazyCommit && this.node.role === Role.Leader && changesStructure(rd.committedEntries, applied)) {
        // Followers apply membership changes, splits and merges at once, not at the next
        // heartbeat: a split child, for one, needs its replicas before it can elect a leader.
        this.node.broadcastCommit();
        this.o.kick();
      }
      for (const a of applied) {
        const w = this.proposals.get(a.index);
        if (w === undefined) continue;
        w.committed = true;
        a.done.then((outcome) => this.settleProposal(w, a, outcome));
      }
      applied[applied.length - 1]?.done.then(() => {
        this.serveReads();
        this.releaseHeld(); // a new leader that just applied its first entry serves them now
      });
    }
    if (rd.readStates.length > 0) this.recordReadStates(rd.readStates);
  }

  /** Tells the core `rd` is done, then drops waiters whose leader or term is gone. */
  advance(rd: Ready): void {
    this.node.advance(rd);
    const term = this.node.term;
    const leading = this.node.role === Role.Leader;
    const leader = this.node.leader;
    for (const [index, w] of this.proposals) {
      if (w.committed || (leading && w.term === term)) continue;
      // Known committed (same index and term means the same entry): it will apply here.
      if (w.index <= this.node.committed && this.node.logTerm(w.index) === w.term) {
        w.committed = true;
        continue;
      }
      this.proposals.delete(index);
      w.reject(new ProposalOutcomeUnknownError(this.group, w.index, w.term, `this replica stopped leading term ${w.term} before it committed`));
    }
    for (const [key, r] of this.reads) {
      if (r.index !== undefined || (r.term === term && r.leader === leader)) continue;
      this.reads.delete(key);
      r.reject(new KeyVaError('UNAVAILABLE', `group ${this.group}: leadership changed while confirming a read; retry`));
    }
    this.checkAll();
    this.releaseHeld();
  }

  /** Write concern `all`: settles waiters whose entry every voter holds, or that can wait no longer. */
  private checkAll(): void {
    if (this.allWaiters.size === 0) return;
    const st = this.node.status();
    const leading = st.softState.role === Role.Leader;
    const now = this.o.clock.nowMs();
    for (const w of this.allWaiters) {
      const { index, term, commitTs } = w.result;
      if (leading && st.hardState.term === term) {
        if (st.confState.voters.every((v) => (st.progress.get(v)?.match ?? 0) >= index)) {
          this.allWaiters.delete(w);
          w.resolve(w.result);
        } else if (now >= w.deadlineMs) {
          this.allWaiters.delete(w);
          const behind = st.confState.voters.filter((v) => (st.progress.get(v)?.match ?? 0) < index).map(nodeOf);
          w.reject(new NotOnAllReplicasError(this.group, index, commitTs, `still missing on ${behind.join(', ')} when the wait ended`));
        }
        continue;
      }
      this.allWaiters.delete(w);
      w.reject(new NotOnAllReplicasError(this.group, index, commitTs, `this replica stopped leading term ${term} before every replica confirmed it`));
    }
  }

  /** More than `logEntriesMax` applied entries are kept, or a fresh snapshot is wanted: `maybeCompact` has work. */
  needsCompaction(): boolean {
    return (
      this.failedWith === undefined &&
      (this.sm.applied.index - this.log.firstIndex() + 1 > this.o.logEntriesMax ||
        (this.freshSnapshotWanted && this.sm.applied.index > this.log.snapshotMetadata().index))
    );
  }

  /**
   * The stored snapshot was about to be sent but predates a split or merge this group applied
   * (`GroupStateMachine.describesCurrentRange`): compact at the applied index on the next
   * chance, so the core's next attempt sends a snapshot of the current range.
   */
  wantFreshSnapshot(): void {
    this.freshSnapshotWanted = true;
  }

  /**
   * Compacts the log into a snapshot of the applied state once more than `logEntriesMax`
   * applied entries are kept. Call only between Ready turns (nothing may be submitted to the
   * state machine meanwhile). The snapshot's data is the state machine's (`snapshotData`).
   */
  async maybeCompact(): Promise<CompactionResult> {
    const no: CompactionResult = { compacted: false };
    if (!this.needsCompaction()) return no;
    // A data group's snapshot is only a descriptor (its rows are streamed when sent), so any
    // partition size compacts (ADR 0008 §9).
    const snap = await this.sm.snapshotData();
    const { index } = snap.state;
    // The core's membership is as of its applied index, which must be the dumped state's.
    if (index <= this.log.snapshotMetadata().index || this.node.basicStatus().applied !== index) return no;
    const conf: ConfState = this.node.confState();
    const mutations = [...this.log.stageCompact(index, conf, snap.data), this.sm.stateMutation(snap.state)];
    await this.o.engine.write({ mutations, commitTs: 1n, nowMs: 0, sync: false });
    this.log.commitCompact(index, conf, snap.data);
    this.freshSnapshotWanted = false;
    return { compacted: true };
  }

  // --- inspection and shutdown ----------------------------------------------------------------

  status(): GroupStatus {
    const st = this.node.basicStatus();
    const term = st.hardState.term;
    return {
      group: this.group,
      replica: this.replica,
      role: st.softState.role,
      leader: st.softState.leader === undefined ? undefined : nodeOf(st.softState.leader),
      term,
      commit: st.hardState.commit,
      applied: this.sm.applied,
      firstIndex: st.firstIndex,
      lastIndex: st.lastIndex,
      voters: st.confState.voters.map(nodeOf),
      learners: st.confState.learners.map(nodeOf),
      serving: st.softState.role === Role.Leader && this.sm.applied.term === term && this.failedWith === undefined,
      pendingProposals: this.proposals.size,
      pendingReads: this.reads.size,
      failed: this.failedWith !== undefined,
      installingSnapshot: this.sm.installing,
    };
  }

  /**
   * Stops the group: every waiter is rejected, a proposal with an unknown outcome, except those
   * already handed to the state machine: they settle with their apply outcome (the caller lets
   * the submitted writes finish; a failed write settles them as unknown).
   */
  close(why: Error, failed: boolean): void {
    if (failed) this.failedWith ??= why;
    for (const h of this.held.splice(0)) h.resolve(this.refused(ProposeRefusal.Stopped, undefined, this.node.term));
    for (const [index, w] of this.proposals) {
      if (w.committed) continue;
      this.proposals.delete(index);
      w.reject(new ProposalOutcomeUnknownError(this.group, w.index, w.term, why.message));
    }
    for (const r of this.reads.values()) r.reject(why);
    this.reads.clear();
    for (const w of this.allWaiters) w.reject(new NotOnAllReplicasError(this.group, w.result.index, w.result.commitTs, why.message));
    this.allWaiters.clear();
  }

  private settleProposal(w: ProposalWaiter, a: AppliedEntry, outcome: ApplyOutcome): void {
    if (this.proposals.get(a.index) !== w) return;
    this.proposals.delete(a.index);
    const command = a.command;
    if (a.term !== w.term || command === undefined || command.id !== w.id) {
      w.reject(new ProposalDroppedError(this.group, w.index, w.term));
      return;
    }
    switch (outcome.kind) {
      case 'applied':
        // Deduplicated (docs/adr/0011-exactly-once-writes.md): the first application's version.
        w.resolve({
          ok: true,
          index: a.index,
          term: a.term,
          commitTs: outcome.version ?? command.commitTs,
          existed: outcome.existed,
          deduplicated: outcome.deduplicated,
        });
        return;
      case 'conditionFailed':
        w.resolve({
          ok: false,
          refused: false,
          reason: 'conditionFailed',
          index: a.index,
          term: a.term,
          commitTs: command.commitTs,
          failedIndex: outcome.failedIndex,
          currentVersion: outcome.currentVersion,
        });
        return;
      case 'noop':
        w.reject(new KeyVaError('INTERNAL', `group ${this.group}: own command at ${a.index} applied as a no-op`));
        return;
      case 'wrongPartition':
        // Its keys left this group's range by a split applied before it (docs/adr/0010-splits.md): nothing was written.
        w.reject(
          new KeyVaError('WRONG_PARTITION', `group ${this.group} no longer owns these keys (split before entry ${a.index}); nothing was written, retry`, {
            group: String(this.group),
          }),
        );
        return;
      case 'failed':
        w.reject(new ProposalOutcomeUnknownError(this.group, w.index, w.term, `the storage engine failed while applying it (${outcome.error.message})`));
        return;
    }
  }

  private serveReads(): void {
    const applied = this.sm.applied.index;
    for (const [key, r] of this.reads) {
      if (r.index === undefined || r.index > applied) continue;
      this.reads.delete(key);
      r.resolve();
    }
  }

  private refused(reason: ProposeRefusal, leader: ReplicaId | undefined, term: Term): ProposeRefused {
    return { ok: false, refused: true, reason, leaderHint: leader === undefined ? undefined : nodeOf(leader), term };
  }
}

/** Whether applied entries change the group's shape: a membership change, a split or a merge. */
function changesStructure(entries: readonly Entry[], applied: readonly AppliedEntry[]): boolean {
  return entries.some((e) => e.type === 'confChange') || applied.some((a) => a.changesRange === true);
}
