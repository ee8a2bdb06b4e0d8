/**
 * The Multi-Raft runtime of one node (ADR 0008 §2): hosts many Raft groups over one storage
 * engine and one transport, and is everything between the pure core (`node/src/raft`) and the
 * KV API.
 *
 * - **Ticks**: one node-wide timer (default 100 ms) ticks every group (election 10 ticks,
 *   heartbeat 2 ticks by default).
 * - **Ready loop**, one turn at a time: take the Readys of the groups that may have one (those
 *   given input since they were last looked at: messages, proposals, reads, ticks, their own
 *   kicks; every tick touches every group); stage all
 *   their snapshots, entries and hard states into ONE engine write (`sync` iff any Ready says
 *   `mustSync` or carries a snapshot) and submit it; send leaders' appends at once (they carry
 *   only durable state; `sendsEarly`); submit committed entries to the state machines (without
 *   awaiting: the engine writes in submission order, so applies land after the log write, often
 *   in the same group commit); await the log write; `commit` the Readys to the logs' in-memory
 *   copies; THEN send the other messages (votes, append responses: what they promise is durable
 *   only now); apply snapshots; THEN `advance`. Between turns, groups whose log grew past
 *   `logEntriesMax` applied entries, or that were asked to (`compactSoon`), are compacted into a
 *   snapshot. Inputs (messages, ticks, proposals) keep arriving while a turn awaits the engine;
 *   they land in the next Ready, so a busy node group-commits many groups and many proposals per
 *   fsync.
 * - **Messages** from the transport are stepped into their group at once; messages for a group
 *   this node does not host, or addressed to another replica, are dropped and counted.
 * - **Proposals and reads**: see `GroupDriver` and `replication-results.ts`.
 * - **Bootstrap**: a group is added either with its founding voters (every founding member
 *   writes the same bootstrap snapshot, like etcd's initial cluster) or empty, waiting for the
 *   leader's snapshot. Membership lives in the Raft log: once a group has state on disk, the
 *   voters passed to `addGroup` are ignored.
 * - **Groups** are partitions (group p + 1, their data is the partition's hash range) or carry a
 *   `GroupContent` of their own: the meta group (group 0, `node/src/meta`).
 * - **Failure**: an engine write that fails stops the whole runtime (it cannot skip a Ready or
 *   an entry): timers stop, waiters are rejected, the transport closes, `onFatal` is called.
 *   A core invariant broken while stepping a message (a bug or a lying peer) stops that group.
 */
import { randomInt } from 'node:crypto';
import type { NodeId } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import type { HybridClock } from '../clock/hybrid-clock.ts';
import type { Mutation, StorageEngine } from '../engine/types.ts';
import { type Message, MessageType } from '../raft/messages.ts';
import { Prng } from '../raft/prng.ts';
import type { RaftStatus } from '../raft/raft.ts';
import type { Ready } from '../raft/raw-node.ts';
import type { ProposeResult as CoreProposeResult, RequestResult } from '../raft/results.ts';
import { type ConfChange, type Entry, type ReplicaId, Role } from '../raft/types.ts';
import type { RangeRecord } from '../split/split-command.ts';
import type { SplitHooks } from '../split/split-hooks.ts';
import { bootstrapWrite, DurableRaftLog } from './durable-raft-log.ts';
import { GroupDriver, type GroupStatus, type RaftTuning } from './group-driver.ts';
import { type GroupContent, GroupStateMachine } from './group-state-machine.ts';
import type { HashRange } from './partition-snapshot.ts';
import type { GroupId } from './raft-keys.ts';
import { nodeOf, replicaOf } from './replica-id.ts';
import type { DataMutation } from './replicated-command.ts';
import { type ProposeOptions, ProposeRefusal, type ProposeResult } from './replication-results.ts';
import type { SnapshotHost } from './snapshot-sender.ts';
import type { SnapshotStaging } from './snapshot-staging.ts';
import { EngineSnapshotStaging } from './snapshot-staging-engine.ts';

/** What the runtime needs from the transport (`RaftTransport` implements it). */
export interface RaftSender {
  send(toNode: string, group: GroupId, message: Message): void;
  close(): void;
  /** Streamed snapshots (`RaftTransport`): the runtime attaches what the streams read and report to. */
  attachSnapshots?(host: SnapshotHost): void;
  /** Whether `message` leaves through a snapshot stream, which then reports its outcome itself. */
  streamsSnapshot?(message: Message): boolean;
}

/** Injected timers (a simulator can drive the runtime without real time). */
export interface RuntimeTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** Runs `fn` after pending I/O callbacks (the Ready loop's turn boundary). */
  setImmediate(fn: () => void): void;
}

export const systemTimers: RuntimeTimers = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
  setImmediate: (fn) => {
    setImmediate(fn);
  },
};

export const DEFAULT_TICK_MS = 100;
export const DEFAULT_ELECTION_TICK = 10;
export const DEFAULT_HEARTBEAT_TICK = 2;
/** Groups hosted per node, at most. */
export const GROUPS_MAX = 10_000;
/** Readys persisted per turn (one engine write), at most; the rest go in the next turn. */
export const READY_GROUPS_PER_TURN_MAX = 1024;
export const PENDING_PROPOSALS_MAX = 4096;
export const PENDING_READS_MAX = 4096;
/** Applied entries a log keeps before it is compacted into a snapshot. */
export const LOG_ENTRIES_MAX = 10_000;

export interface MultiRaftOptions {
  readonly nodeId: NodeId;
  readonly engine: StorageEngine;
  readonly transport: RaftSender;
  readonly clock: HybridClock;
  readonly timers?: RuntimeTimers;
  /** Seed of the election-timeout randomness; default: from `crypto` (pass one to replay a run). */
  readonly randomSeed?: number;
  readonly tickMs?: number;
  readonly electionTick?: number;
  readonly heartbeatTick?: number;
  readonly raft?: RaftTuning;
  readonly groupsMax?: number;
  readonly readyGroupsPerTurnMax?: number;
  readonly pendingProposalsMax?: number;
  readonly pendingReadsMax?: number;
  /** Default: 3 election timeouts. */
  readonly readTimeoutTicks?: number;
  /** How long a proposal is held while leadership changes hands (`GroupDriver`); default: an election timeout and a heartbeat. */
  readonly proposalHoldTicks?: number;
  readonly logEntriesMax?: number;
  /** Where received snapshots are staged; default: raw rows of `engine` (a node on RocksDB stages in files: `FileSnapshotStaging`). */
  readonly staging?: SnapshotStaging;
  /** Called once if the runtime stops because the engine failed. */
  readonly onFatal?: (error: Error) => void;
  /** What data groups ask of the node when they apply a split (`node/src/split`); without it a split creates no child group here. */
  readonly splits?: SplitHooks;
}

export interface GroupSpec {
  readonly group: GroupId;
  /** The partition's data range (what snapshots carry); unused by a content group. */
  readonly range: HashRange;
  /** Founding voters (this node among them) for a new group; omit to wait for a leader's snapshot. */
  readonly bootstrap?: readonly NodeId[];
  /**
   * A group whose state is not partition data (the meta group, group 0): its commands and
   * snapshots are the content's (`GroupContent`); the bootstrap snapshot is the content's empty state.
   */
  readonly content?: GroupContent;
}

/** The range of a group that holds no partition data (a content group). */
export const NO_RANGE: HashRange = { start: 0n, end: 0n };

export interface MultiRaftStats {
  turns: number;
  /** Groups a turn asked for a Ready (only those given input since a turn last looked at them). */
  readyChecks: number;
  /** Engine writes persisting Readys (each one for every group with a Ready in that turn). */
  persistWrites: number;
  syncedWrites: number;
  readiesPersisted: number;
  messagesSent: number;
  messagesReceived: number;
  snapshotsSent: number;
  /** Snapshots the core wanted to send that predate a split or merge of their group: held back (the group compacts). */
  staleSnapshotsHeld: number;
  droppedUnknownGroup: number;
  droppedMisaddressed: number;
  droppedStopped: number;
  stepErrors: number;
  compactions: number;
  proposals: number;
  refusals: number;
  /** Proposals held while leadership changed hands (then proposed, redirected or refused: `GroupDriver`). */
  proposalsHeld: number;
}

type State = 'new' | 'running' | 'stopping' | 'stopped' | 'failed';

/**
 * Whether a Ready's committed entries may be submitted before its log write completes: not if it
 * carries a snapshot (the install reads what the log persisted), nor if it commits entries it
 * also appends (a follower given entries and their commit at once): only entries that earlier,
 * durable Readys wrote are applied ahead, so even a log write that fails while a later apply
 * write succeeds leaves the applied index within the durable log.
 */
function appliesEarly(rd: Ready): boolean {
  if (rd.snapshot !== undefined) return false;
  const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
  const firstNew = rd.entries[0];
  return lastCommitted === undefined || firstNew === undefined || lastCommitted.index < firstNew.index;
}

/**
 * Whether a Ready's appends may be sent before the Ready is durable: only a leader's, and only
 * when the Ready changes neither term nor vote (the appends carry the durable term) nor
 * installs a snapshot. A crash before the write completes loses at most entries of this Ready
 * on the leader; followers that took them hold them as any follower holds an uncommitted
 * entry, and nothing was acknowledged (the leader answers after applying, which needs its own
 * durable copy or a quorum of followers').
 */
function sendsEarly(d: GroupDriver, rd: Ready): boolean {
  if (rd.snapshot !== undefined || rd.softState.role !== Role.Leader) return false;
  const durable = d.log.hardState();
  return rd.hardState === undefined || (rd.hardState.term === durable.term && rd.hardState.vote === durable.vote);
}

export class MultiRaft {
  readonly nodeId: NodeId;
  readonly stats: MultiRaftStats = {
    turns: 0,
    readyChecks: 0,
    persistWrites: 0,
    syncedWrites: 0,
    readiesPersisted: 0,
    messagesSent: 0,
    messagesReceived: 0,
    snapshotsSent: 0,
    staleSnapshotsHeld: 0,
    droppedUnknownGroup: 0,
    droppedMisaddressed: 0,
    droppedStopped: 0,
    stepErrors: 0,
    compactions: 0,
    proposals: 0,
    refusals: 0,
    proposalsHeld: 0,
  };
  private readonly o: MultiRaftOptions;
  private readonly staging: SnapshotStaging;
  private readonly timers: RuntimeTimers;
  private readonly seed: number;
  private readonly drivers = new Map<GroupId, GroupDriver>();
  private state: State = 'new';
  private tickHandle: unknown;
  private scheduled = false;
  private again = false;
  /** The turn in progress, if any. */
  private turning: Promise<void> | undefined;
  /** The groups of the last turn (the ones whose logs may have grown). */
  private lastWorked: GroupDriver[] = [];
  /** Groups asked to compact now (`compactSoon`), at the end of the next turn. */
  private readonly compactWanted = new Set<GroupDriver>();
  /**
   * Groups that may have a Ready: given input since the last turn looked at them (insertion
   * order: a turn that stops at `readyGroupsPerTurnMax` leaves the rest first in line). Polling
   * every group each turn cost more than a write's own Raft work with many groups.
   */
  private readonly dirty = new Set<GroupDriver>();
  private proposalSeq: bigint;
  /** Random per run: keeps ReadIndex contexts and proposal ids apart across restarts. */
  private readonly runId: string;

  constructor(o: MultiRaftOptions) {
    replicaOf(o.nodeId); // validates the id
    this.o = o;
    this.staging = o.staging ?? new EngineSnapshotStaging(o.engine);
    this.nodeId = o.nodeId;
    this.timers = o.timers ?? systemTimers;
    this.seed = o.randomSeed ?? randomInt(2 ** 31);
    const runRandom = new Prng(this.seed ^ 0x5bd1e995).nextUint32();
    this.runId = runRandom.toString(36);
    // Proposal ids: the run's random 32 bits, then a counter.
    this.proposalSeq = BigInt(runRandom) << 32n;
    o.transport.attachSnapshots?.({
      engine: o.engine,
      staging: this.staging,
      reportSnapshot: (group, to, ok) => this.reportSnapshot(group, to, ok),
      // The data range, also of a group frozen by a merge (its lagging replicas may still need it).
      rangeOf: (group) => this.drivers.get(group)?.sm.range,
      refusesSnapshot: (group, index) => {
        const d = this.drivers.get(group);
        if (d === undefined || d.failed || this.state !== 'running') return 'not running here';
        if (d.sm.installing) return 'installing another snapshot';
        const at = Math.max(d.sm.applied.index, d.log.snapshotMetadata().index);
        if (index <= at) return `already at index ${at}`;
        return undefined;
      },
    });
  }

  /** A snapshot stream to replica `to` of `group` ended (ok: delivered): tells the group's core. */
  reportSnapshot(group: GroupId, to: ReplicaId, ok: boolean): void {
    const d = this.drivers.get(group);
    if (d === undefined || d.failed || this.state !== 'running') return;
    d.node.reportSnapshot(to, ok);
    this.touch(d);
  }

  /** Opens (or creates) a group's replica on this node. */
  async addGroup(spec: GroupSpec): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped' || this.state === 'failed') throw new KeyVaError('UNAVAILABLE', 'replication runtime is stopped');
    if (this.drivers.has(spec.group)) throw new KeyVaError('INVALID_ARGUMENT', `group ${spec.group} is already hosted`);
    const groupsMax = this.o.groupsMax ?? GROUPS_MAX;
    if (this.drivers.size >= groupsMax) throw new KeyVaError('UNAVAILABLE', `this node hosts ${groupsMax} groups already`, { limit: String(groupsMax) });
    const engine = this.o.engine;
    const log = await DurableRaftLog.open(engine, spec.group);
    const sm = await GroupStateMachine.open({
      engine,
      staging: this.staging,
      group: spec.group,
      range: spec.range,
      clock: this.o.clock,
      onFatal: (e) => this.fail(e),
      content: spec.content,
      splits: spec.content === undefined ? this.o.splits : undefined,
    });
    if (log.isEmpty() && spec.bootstrap !== undefined) {
      if (!spec.bootstrap.includes(this.nodeId))
        throw new KeyVaError('INVALID_ARGUMENT', `node ${this.nodeId} bootstraps group ${spec.group} without being a voter`);
      const w = bootstrapWrite({ voters: spec.bootstrap.map(replicaOf), learners: [] });
      const applied = { index: w.snapshot?.metadata.index ?? 0, term: w.snapshot?.metadata.term ?? 0, maxCommitTs: sm.applied.maxCommitTs };
      await engine.write({ mutations: [...log.stage(w), sm.stateMutation(applied), ...sm.rangeMutations()], commitTs: 1n, nowMs: 0, sync: true });
      log.commit(w);
      sm.assumeWritten(applied);
    }
    // A snapshot persisted but not (fully) installed before a crash: install it now.
    const snapshot = log.snapshot();
    const pending = snapshot !== undefined && snapshot.metadata.index > sm.applied.index ? snapshot : undefined;
    // Staged snapshot rows (ADR 0008 §9) other than the pending install's are left over from transfers cut off.
    const keep = pending === undefined ? undefined : { index: pending.metadata.index, term: pending.metadata.term };
    if (spec.content === undefined) await this.staging.clear(spec.group, keep === undefined ? {} : { keep });
    if (pending !== undefined) await sm.installSnapshot(pending);
    if (this.drivers.has(spec.group)) throw new KeyVaError('INVALID_ARGUMENT', `group ${spec.group} is already hosted`);
    let self: GroupDriver | undefined;
    const driver = new GroupDriver({
      group: spec.group,
      self: this.nodeId,
      engine,
      log,
      sm,
      clock: this.o.clock,
      random: new Prng(this.seed ^ Math.imul(spec.group + 1, 0x9e3779b1)),
      electionTick: this.o.electionTick ?? DEFAULT_ELECTION_TICK,
      heartbeatTick: this.o.heartbeatTick ?? DEFAULT_HEARTBEAT_TICK,
      // Data groups: followers learn commits lazily (fewer messages per write); the meta group
      // keeps every replica's map fresh at once.
      raft: { lazyCommitBroadcast: spec.content === undefined, ...this.o.raft },
      pendingProposalsMax: this.o.pendingProposalsMax ?? PENDING_PROPOSALS_MAX,
      pendingReadsMax: this.o.pendingReadsMax ?? PENDING_READS_MAX,
      readTimeoutTicks: this.o.readTimeoutTicks ?? 3 * (this.o.electionTick ?? DEFAULT_ELECTION_TICK),
      // A transfer the core gives up on ends within an election timeout; a heartbeat more of margin.
      holdTicks: this.o.proposalHoldTicks ?? (this.o.electionTick ?? DEFAULT_ELECTION_TICK) + (this.o.heartbeatTick ?? DEFAULT_HEARTBEAT_TICK),
      onHeld: () => {
        this.stats.proposalsHeld++;
      },
      logEntriesMax: this.o.logEntriesMax ?? LOG_ENTRIES_MAX,
      nextProposalId: () => ++this.proposalSeq,
      readContextPrefix: `${this.nodeId}:${this.runId}`,
      kick: () => {
        if (self !== undefined) this.touch(self);
      },
      // Used only with lease reads (raft.readOnlyOption 'lease'): the leader ticks by this clock.
      leaseClock: { tickMs: this.o.tickMs ?? DEFAULT_TICK_MS, nowMs: () => performance.now() },
    });
    self = driver;
    this.drivers.set(spec.group, driver);
    this.touch(driver);
  }

  /** Starts ticking and processing. */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.tickHandle = this.timers.setInterval(() => this.tick(), this.o.tickMs ?? DEFAULT_TICK_MS);
    this.kick();
  }

  /** Entry point for the transport: a message from `fromNode` for `group`. */
  receive(_fromNode: string, group: GroupId, m: Message): void {
    if (this.state !== 'running') {
      this.stats.droppedStopped++;
      return;
    }
    const d = this.drivers.get(group);
    if (d === undefined || d.failed) {
      this.stats.droppedUnknownGroup++;
      return;
    }
    if (m.to !== d.replica) {
      this.stats.droppedMisaddressed++;
      return;
    }
    this.stats.messagesReceived++;
    try {
      d.step(m);
    } catch (e) {
      this.stats.stepErrors++;
      d.close(new KeyVaError('INTERNAL', `group ${group} stopped: ${(e as Error).message}`, {}, { cause: e }), true);
    }
    this.touch(d);
  }

  /** Proposes a write batch to `group` (see `GroupDriver.propose`). */
  propose(group: GroupId, mutations: readonly DataMutation[], opts?: ProposeOptions): Promise<ProposeResult> {
    const d = this.drivers.get(group);
    if (d === undefined || this.state !== 'running') {
      this.stats.refusals++;
      const reason = d === undefined ? ProposeRefusal.UnknownGroup : ProposeRefusal.Stopped;
      return Promise.resolve({ ok: false, refused: true, reason, leaderHint: undefined, term: 0 });
    }
    this.stats.proposals++;
    return d.propose(mutations, opts).then((r) => {
      if (!r.ok && r.refused) this.stats.refusals++;
      return r;
    });
  }

  /** Linearizable read barrier for `group` (see `GroupDriver.read`). */
  read(group: GroupId): Promise<void> {
    const d = this.drivers.get(group);
    if (d === undefined) return Promise.reject(new KeyVaError('WRONG_PARTITION', `group ${group} is not hosted on node ${this.nodeId}`));
    if (this.state !== 'running') return Promise.reject(new KeyVaError('UNAVAILABLE', 'replication runtime is not running'));
    return d.read();
  }

  status(group: GroupId): GroupStatus | undefined {
    return this.drivers.get(group)?.status();
  }

  groups(): GroupId[] {
    return [...this.drivers.keys()];
  }

  /** Whether this node's replica of `group` is its leader now (in its own view). */
  leads(group: GroupId): boolean {
    const d = this.drivers.get(group);
    return d !== undefined && d.failed === undefined && d.node.role === Role.Leader;
  }

  /** Asks the leader of `group` on this node to hand leadership to `to`. */
  transferLeader(group: GroupId, to: NodeId): RequestResult | undefined {
    const d = this.drivers.get(group);
    if (d === undefined) return undefined;
    const r = d.node.transferLeader(replicaOf(to));
    this.touch(d);
    return r;
  }

  /** Starts an election of `group` on this node now (a split's new group, on the parent's leader); false if not hosted. */
  campaign(group: GroupId): boolean {
    const d = this.drivers.get(group);
    if (d === undefined || d.failed || this.state !== 'running') return false;
    d.node.campaign();
    this.touch(d);
    return true;
  }

  // --- membership (node/src/membership) ---------------------------------------------------

  /** Proposes a membership change to `group` (one at a time; see `RaftNode.proposeConfChange`); undefined if not hosted. */
  proposeConfChange(group: GroupId, change: ConfChange): CoreProposeResult | undefined {
    const d = this.drivers.get(group);
    if (d === undefined || d.failed || this.state !== 'running') return undefined;
    // A group frozen by a merge keeps the membership every replica confirmed the freeze with.
    if (d.sm.frozen !== undefined) return { ok: false, reason: 'confChangePending', leader: undefined, term: d.status().term };
    const r = d.node.proposeConfChange(change);
    this.touch(d);
    return r;
  }

  /** The core's status of `group`, with the leader's per-replica progress; undefined if not hosted. */
  raftStatus(group: GroupId): RaftStatus | undefined {
    return this.drivers.get(group)?.node.status();
  }

  /** Term of the entry at `index` of `group`'s log (index in [firstIndex - 1, lastIndex]); undefined otherwise or if not hosted. */
  logTerm(group: GroupId, index: number): number | undefined {
    return this.drivers.get(group)?.log.term(index);
  }

  /** The partition range of a hosted group (what its snapshots carry). */
  rangeOf(group: GroupId): HashRange | undefined {
    const sm = this.drivers.get(group)?.sm;
    // A group frozen by a merge (docs/adr/0010-splits.md) owns nothing: the KV store refuses it.
    return sm === undefined ? undefined : sm.frozen === undefined ? sm.range : { start: sm.range.start, end: sm.range.start };
  }

  /** A data group's range record (its range, splits, merges) at the latest submitted entry; undefined if not hosted. */
  rangeRecordOf(group: GroupId): RangeRecord | undefined {
    return this.drivers.get(group)?.sm.rangeRecord;
  }

  /** Index of `group`'s latest snapshot (its log holds the entries after it); undefined if not hosted. */
  snapshotIndex(group: GroupId): number | undefined {
    return this.drivers.get(group)?.log.snapshotMetadata().index;
  }

  /**
   * Compacts `group`'s log into a snapshot of its applied state at the end of the next turn,
   * however short the log (e.g. before adding a learner, which then gets one snapshot instead of
   * a replay of the log). False if not hosted.
   */
  compactSoon(group: GroupId): boolean {
    const d = this.drivers.get(group);
    if (d === undefined || d.failed || this.state !== 'running') return false;
    d.wantFreshSnapshot();
    this.compactWanted.add(d);
    this.touch(d);
    return true;
  }

  /** Durable log entries of `group` in [lo, hi) (clamped to what the log holds). */
  logEntries(group: GroupId, lo: number, hi: number): Entry[] {
    const d = this.drivers.get(group);
    if (d === undefined) return [];
    const from = Math.max(lo, d.log.firstIndex());
    const to = Math.min(hi, d.log.lastIndex() + 1);
    return from < to ? d.log.entries(from, to, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY) : [];
  }

  /**
   * Stops hosting `group` on this node: the driver leaves the loop (the turn in progress, which
   * may hold its Ready, finishes first), its submitted apply writes finish, its waiters are
   * rejected. The group's data stays on disk (the caller deletes it). False if not hosted.
   */
  async removeGroup(group: GroupId): Promise<boolean> {
    const d = this.drivers.get(group);
    if (d === undefined) return false;
    this.drivers.delete(group);
    this.dirty.delete(d);
    await this.turning;
    await d.sm.idle().catch(() => undefined);
    d.close(new KeyVaError('WRONG_PARTITION', `group ${group} is no longer hosted on node ${this.nodeId}`), false);
    // Nothing staged for it is of use now (hosted again later, it gets a new transfer); a leftover is swept at the next start.
    await this.staging.clear(group).catch(() => undefined);
    return true;
  }

  /**
   * Stops timers, lets the turn in progress and the submitted apply writes finish, rejects every
   * waiter (proposals with an unknown outcome) and closes the transport. The engine stays open.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    const wasFailed = this.state === 'failed';
    this.state = 'stopping';
    if (this.tickHandle !== undefined) this.timers.clearInterval(this.tickHandle);
    await this.turning;
    for (const d of this.drivers.values()) await d.sm.idle().catch(() => undefined);
    const why = new KeyVaError('UNAVAILABLE', `replication runtime of node ${this.nodeId} stopped`);
    for (const d of this.drivers.values()) d.close(why, false);
    this.o.transport.close();
    await this.staging.close().catch(() => undefined);
    this.state = wasFailed ? 'failed' : 'stopped';
  }

  // --- the loop -------------------------------------------------------------------------------

  private tick(): void {
    if (this.state !== 'running') return;
    for (const d of this.drivers.values()) {
      if (d.failed) continue;
      d.tick();
      this.dirty.add(d);
    }
    this.kick();
  }

  /** `d` was given input: look at it in the next turn. */
  private touch(d: GroupDriver): void {
    this.dirty.add(d);
    this.kick();
  }

  private kick(): void {
    if (this.state !== 'running') return;
    if (this.turning !== undefined) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.timers.setImmediate(() => {
      this.scheduled = false;
      if (this.state !== 'running' || this.turning !== undefined) return;
      this.turning = this.runTurn();
    });
  }

  private async runTurn(): Promise<void> {
    let worked = false;
    try {
      worked = await this.turn();
      const wanted = [...this.compactWanted];
      this.compactWanted.clear();
      if (worked || wanted.length > 0) await this.compact(worked ? [...this.lastWorked, ...wanted] : wanted);
    } catch (e) {
      this.fail(e as Error);
    } finally {
      this.turning = undefined;
    }
    if (worked || this.again) {
      this.again = false;
      this.kick();
    }
  }

  /** One Ready turn over every group that has work; false if none had. */
  private async turn(): Promise<boolean> {
    const max = this.o.readyGroupsPerTurnMax ?? READY_GROUPS_PER_TURN_MAX;
    const work: { d: GroupDriver; rd: Ready }[] = [];
    for (const d of this.dirty) {
      if (work.length >= max) break;
      this.dirty.delete(d);
      if (this.drivers.get(d.group) !== d) continue;
      this.stats.readyChecks++;
      const rd = d.takeReady();
      if (rd !== undefined) work.push({ d, rd });
    }
    if (work.length === 0) return false;
    this.stats.turns++;
    this.lastWorked = work.map((w) => w.d);

    // 1. Persist every Ready in one engine write: submitted now, awaited below.
    const mutations: Mutation[] = [];
    let sync = false;
    for (const { d, rd } of work) {
      for (const m of d.stage(rd)) mutations.push(m);
      if (rd.mustSync || rd.snapshot !== undefined) sync = true;
    }
    const persisting = mutations.length > 0 ? this.o.engine.write({ mutations, commitTs: 1n, nowMs: 0, sync }) : undefined;
    // Awaited below; should anything in between throw, its failure must not go unhandled.
    persisting?.catch(() => undefined);

    // 2a. A leader's appends leave while its own copy is being written (Raft thesis §10.2.1, as
    // etcd does): the entries they carry from earlier Readys are durable already, and the leader
    // counts its own copy toward commit only after `advance` (ADR 0006 §4). See `sendsEarly`.
    const early = new Set<Message>();
    for (const { d, rd } of work) {
      if (!sendsEarly(d, rd)) continue;
      for (const m of rd.messages) {
        if (m.type !== MessageType.Append) continue;
        early.add(m);
        this.o.transport.send(nodeOf(m.to), d.group, m);
        this.stats.messagesSent++;
      }
    }

    // 3a. Committed entries go to the state machines now: the engine writes in submission order,
    // so every apply write lands after (or in the same group commit as) the log write above
    // (ADR 0008 "Changes"). See `appliesEarly` for the Readys that wait for the write.
    const late: { d: GroupDriver; rd: Ready }[] = [];
    for (const w of work) {
      if (appliesEarly(w.rd)) w.d.apply(w.rd);
      else late.push(w);
    }

    if (persisting !== undefined) {
      await persisting;
      this.stats.persistWrites++;
      if (sync) this.stats.syncedWrites++;
    }
    for (const { d, rd } of work) d.persisted(rd);
    this.stats.readiesPersisted += work.length;
    if (this.state !== 'running' && this.state !== 'stopping') return false;

    // 2b. Send the rest: only now is what they promise (votes, acknowledged entries) durable.
    for (const { d, rd } of work) {
      for (const m of rd.messages) {
        if (early.has(m)) continue;
        if (m.type === MessageType.Snapshot && m.snapshot !== undefined && !d.sm.describesCurrentRange(m.snapshot.data)) {
          // Taken before a split or merge applied since (docs/adr/0010-splits.md "Replica
          // divergence found by digests"): never sent. The group compacts now; the core retries.
          this.stats.staleSnapshotsHeld++;
          d.wantFreshSnapshot();
          d.node.reportSnapshot(m.to, false);
          continue;
        }
        this.o.transport.send(nodeOf(m.to), d.group, m);
        this.stats.messagesSent++;
        if (m.type === MessageType.Snapshot) {
          this.stats.snapshotsSent++;
          // Handed to the transport: wait for the follower's answer (a lost snapshot is retried
          // after the next heartbeat response shows the follower still behind). A streamed
          // snapshot reports its own outcome when the stream ends.
          if (this.o.transport.streamsSnapshot?.(m) !== true) d.node.reportSnapshot(m.to, true);
        }
      }
    }

    // 3b. The other Readys apply now, 4. advance (which may leave more work: look again next turn).
    for (const { d, rd } of late) d.apply(rd);
    for (const { d, rd } of work) {
      d.advance(rd);
      this.dirty.add(d);
    }
    return true;
  }

  /** Compacts the logs that grew past `logEntriesMax` among `drivers` (the last turn's: only they applied anything). */
  private async compact(drivers: readonly GroupDriver[]): Promise<void> {
    for (const d of drivers) {
      if (!d.needsCompaction() || this.drivers.get(d.group) !== d) continue;
      const r = await d.maybeCompact();
      if (!r.compacted) continue;
      this.stats.compactions++;
      this.dirty.add(d); // a snapshot the core was waiting for may be there now
    }
  }

  private fail(e: Error): void {
    if (this.state === 'failed' || this.state === 'stopped') return;
    this.state = 'failed';
    if (this.tickHandle !== undefined) this.timers.clearInterval(this.tickHandle);
    const why = new KeyVaError('STORAGE_ERROR', `replication runtime of node ${this.nodeId} failed: ${e.message}`, {}, { cause: e });
    for (const d of this.drivers.values()) d.close(why, true);
    this.o.transport.close();
    this.o.onFatal?.(e);
  }
}
