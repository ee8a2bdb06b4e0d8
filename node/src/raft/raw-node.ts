/**
 * `RaftNode`: the driver-facing API of one replica (etcd's RawNode). The driver feeds it ticks,
 * messages and requests, and drains its work as `Ready`s:
 *
 * ```
 * while (node.hasReady()) {
 *   const rd = node.ready();
 *   // 1. persist rd.snapshot, then rd.entries, then rd.hardState (fsync if rd.mustSync)
 *   // 2. send rd.messages (never before step 1: they promise what step 1 made durable)
 *   // 3. apply rd.snapshot (if any), then rd.committedEntries in order; serve rd.readStates
 *   //    once the state machine has applied their index
 *   node.advance(rd);
 * }
 * ```
 *
 * Between `ready()` and `advance()` the driver may keep calling `tick`, `step` and the request
 * methods (their output lands in the next Ready), but may not ask for another Ready.
 */

import type { Message } from './messages.ts';
import { Raft, type RaftConfig, type RaftStatus } from './raft.ts';
import type { ProposeResult, RequestResult } from './results.ts';
import type { ConfChange, ConfState, Entry, HardState, Index, ReadState, ReplicaId, Role, Snapshot, SoftState, Term } from './types.ts';

export type RaftNodeConfig = RaftConfig;

/** One batch of work for the driver; the field order is the order to do it in. */
export interface Ready {
  /** Who leads and in which role this replica is now. Informational: nothing to persist. */
  readonly softState: SoftState;
  /** 1a. A snapshot from the leader to persist (replacing the whole log) and then apply. */
  readonly snapshot: Snapshot | undefined;
  /** 1b. Entries to append to the durable log, replacing any durable entries from entries[0].index on. */
  readonly entries: readonly Entry[];
  /** 1c. Term, vote and commit to persist; undefined if unchanged. */
  readonly hardState: HardState | undefined;
  /** Whether step 1 must be synced to disk before step 2 (a vote, a term or entries changed). */
  readonly mustSync: boolean;
  /** 2. Messages to send after step 1 is durable. */
  readonly messages: readonly Message[];
  /** 3. Committed entries to apply to the state machine, in order. */
  readonly committedEntries: readonly Entry[];
  /** 3. Read points for ReadIndex requests: serve each once `applied >= index`. */
  readonly readStates: readonly ReadState[];
}

export class RaftNodeError extends Error {}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export class RaftNode {
  private readonly raft: Raft;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private outstanding: Ready | undefined = undefined;

  constructor(config: RaftNodeConfig) {
    this.raft = new Raft(config);
    this.prevHardState = this.raft.hardState();
    this.prevSoftState = this.raft.softState();
  }

  get id(): ReplicaId {
    return this.raft.id;
  }

  /** This replica's role now (cheaper than `basicStatus()` for a per-message check). */
  get role(): Role {
    return this.raft.role;
  }

  /** Advances logical time by one tick (the driver calls it on a fixed interval). */
  tick(): void {
    this.raft.tick();
  }

  /** Lease reads: ages a leader's lease by `ticks` of real time its `tick()` calls missed (see `Raft.advanceLeaseClock`). */
  advanceLeaseClock(ticks: number): void {
    this.raft.advanceLeaseClock(ticks);
  }

  /** Feeds a message received from another replica. */
  step(m: Message): void {
    if (m.to !== this.raft.id) throw new RaftNodeError(`message for ${m.to} stepped into ${this.raft.id}`);
    this.raft.step(m);
  }

  /** Starts an election now (e.g. the first replica of a new group, or a health-aware driver). */
  campaign(): void {
    this.raft.hup();
  }

  /** Appends `data` to the log if this replica leads; the entry is committed when it is applied. */
  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose(data);
  }

  /** Proposes a membership change (one at a time; takes effect when applied). */
  proposeConfChange(change: ConfChange): ProposeResult {
    return this.raft.proposeConfChange(change);
  }

  /** Hands leadership to `to` once it has caught up; abandoned after an election timeout. */
  transferLeader(to: ReplicaId): RequestResult {
    return this.raft.transferLeader(to);
  }

  /** Requests a linearizable read point for `context` (unique per request); answered by a ReadState. */
  readIndex(context: Uint8Array): RequestResult {
    return this.raft.readIndex(context);
  }

  /**
   * Takes the read points produced so far without waiting for a Ready (a lease read is answered
   * inside `readIndex`). Safe out of Ready order: a read point is an index already committed;
   * the caller still serves the read only once it applied that index.
   */
  takeReadStates(): ReadState[] {
    const rs = this.raft.readStates;
    if (rs.length === 0) return [];
    this.raft.readStates = [];
    return rs;
  }

  /** A leader tells every follower its commit index now (see `RaftConfig.lazyCommitBroadcast`). */
  broadcastCommit(): void {
    this.raft.broadcastCommit();
  }

  /** The transport's verdict on a snapshot sent to `to`. */
  reportSnapshot(to: ReplicaId, ok: boolean): void {
    this.raft.reportSnapshot(to, ok);
  }

  /** The transport could not reach `to`. */
  reportUnreachable(to: ReplicaId): void {
    this.raft.reportUnreachable(to);
  }

  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    // Field by field (no state objects): the runtime asks every group on every turn.
    const hs = this.prevHardState;
    return (
      r.lead !== this.prevSoftState.leader ||
      r.role !== this.prevSoftState.role ||
      r.term !== hs.term ||
      r.vote !== hs.vote ||
      r.log.committed !== hs.commit ||
      r.log.unstable.snapshot !== undefined ||
      r.log.unstable.entries.length > 0 ||
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.hasNextCommittedEntries()
    );
  }

  /** Takes the pending work; call `advance` with it once done. */
  ready(): Ready {
    if (this.outstanding !== undefined) throw new RaftNodeError('ready() called again before advance()');
    const r = this.raft;
    const hs = r.hardState();
    const hardState = sameHardState(hs, this.prevHardState) ? undefined : hs;
    const entries = [...r.log.unstable.entries];
    const rd: Ready = {
      softState: r.softState(),
      snapshot: r.log.unstable.snapshot,
      entries,
      hardState,
      mustSync: entries.length > 0 || (hardState !== undefined && (hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote)),
      messages: r.msgs,
      committedEntries: r.log.nextCommittedEntries(r.committedEntriesPerReadyMax()),
      readStates: r.readStates,
    };
    r.msgs = [];
    r.readStates = [];
    this.prevSoftState = rd.softState;
    if (hardState !== undefined) this.prevHardState = hardState;
    this.outstanding = rd;
    return rd;
  }

  /** Reports that `rd` was persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new RaftNodeError('advance() with a Ready that is not the outstanding one');
    this.outstanding = undefined;
    const log = this.raft.log;
    if (rd.snapshot !== undefined) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      log.appliedTo(Math.max(log.applied, rd.snapshot.metadata.index));
    }
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) log.stableTo(last.index, last.term);
    this.raft.onPersisted();
    const applied = rd.committedEntries[rd.committedEntries.length - 1];
    if (applied !== undefined) {
      log.appliedTo(applied.index);
      for (const e of rd.committedEntries) if (e.type === 'confChange') this.raft.applyConfChange(e.change);
    }
  }

  /** Everything the driver may want to know, including the leader's per-replica progress. */
  status(): RaftStatus {
    return this.raft.status(true);
  }

  /** Current term, known leader and commit index: cheap views for per-request checks (no status object). */
  get term(): Term {
    return this.raft.term;
  }
  get leader(): ReplicaId | undefined {
    return this.raft.lead;
  }
  get committed(): Index {
    return this.raft.log.committed;
  }

  /** `status()` without progress: cheap enough to call on every tick. */
  basicStatus(): RaftStatus {
    return this.raft.status(false);
  }

  /** Membership as of the applied index (what a snapshot taken now must record). */
  confState(): ConfState {
    return this.raft.conf;
  }

  /** Term of the entry at `index` in this replica's log (durable or not), if held. */
  logTerm(index: Index): Term | undefined {
    return this.raft.log.term(index);
  }
}
