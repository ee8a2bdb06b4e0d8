/**
 * Deterministic simulation of one Raft group (FoundationDB/TigerBeetle style): N replicas of
 * the real `RaftNode`, each with a `MemoryRaftStorage` standing for its disk, a network that
 * drops, delays, reorders, duplicates and partitions messages, crashes that lose everything
 * not persisted, pauses, clients, membership changes, compaction and snapshots, leader
 * transfers and ReadIndex reads. One 32-bit seed decides everything, so one seed replays one
 * run exactly.
 *
 * Faults are biased per run: each seed turns some fault sites on, at its own intensity. After
 * the fault phase a heal phase (no faults) must elect a leader and commit a new entry on every
 * member within `healTicksMax`. Invariants (invariants.ts) are checked after every step.
 */
import { confState, isMember, members } from '../conf-change.ts';
import { MemoryRaftStorage } from '../memory-storage.ts';
import { type Message, MessageType } from '../messages.ts';
import { Prng } from '../prng.ts';
import { RaftNode, type Ready } from '../raw-node.ts';
import { ConfChangeType, type Index, ReadOnlyOption, type ReplicaId, Role, replicaId, type Snapshot, type Term } from '../types.ts';
import { entryHash, FNV_OFFSET, InvariantChecker, InvariantViolation, mix, type ReplicaView } from './invariants.ts';

/** Test-only disk bugs, to prove the checker catches what they break. */
export interface DiskBugs {
  /** On crash, the disk loses this many of its last log entries (fsync lied), commit clamped. */
  readonly forgetEntriesOnCrash?: number;
  /** On crash, the disk loses the persisted vote (fsync of the hard state lied). */
  readonly forgetVoteOnCrash?: boolean;
}

export interface SimulationOptions {
  readonly seed: number;
  /** Founding voters (3 or 5). */
  readonly voters: number;
  /** Ticks of the fault phase. */
  readonly steps: number;
  /** Liveness bound: ticks the heal phase may take to commit a new entry everywhere. */
  readonly healTicksMax?: number;
  readonly electionTick?: number;
  readonly heartbeatTick?: number;
  readonly readOnlyOption?: ReadOnlyOption;
  /** Followers learn commits lazily (RaftConfig.lazyCommitBroadcast, what the node runtime uses). */
  readonly lazyCommitBroadcast?: boolean;
  /** Membership changes (add learner, promote, remove) during the fault phase. Default true. */
  readonly membership?: boolean;
  readonly bugs?: DiskBugs;
  /** Fixes some fault intensities instead of drawing them from the seed. */
  readonly profile?: Partial<FaultProfile>;
  /** Record a human-readable trace (slower); used to explain a failing seed. */
  readonly trace?: boolean;
}

export interface SimulationStats {
  ticks: number;
  delivered: number;
  dropped: number;
  crashes: number;
  partitions: number;
  elections: number;
  maxTerm: Term;
  committed: Index;
  proposals: number;
  confChanges: number;
  snapshotsSent: number;
  compactions: number;
  reads: number;
  transfers: number;
  checks: number;
  healTicks: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly ok: boolean;
  /** The first invariant violation, core assertion or liveness failure. */
  readonly failure?: string;
  /** A hash of every observable event: equal for equal seeds. */
  readonly traceHash: string;
  readonly stats: SimulationStats;
  readonly profile: FaultProfile;
  readonly trace: readonly string[];
}

/** Per-run fault intensities (biased: many are zero in any one run). */
export interface FaultProfile {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayMax: number;
  readonly partitionRate: number;
  readonly healRate: number;
  readonly crashRate: number;
  readonly crashMidReadyRate: number;
  /** Chance that a new leader crashes within a few ticks (leader churn mid-replication). */
  readonly newLeaderCrashRate: number;
  readonly pauseRate: number;
  readonly proposeRate: number;
  readonly confChangeRate: number;
  readonly compactRate: number;
  readonly transferRate: number;
  readonly readRate: number;
  /** Core limits vary per run too: tiny batches and windows shake out flow-control bugs. */
  readonly entriesPerMsgMax: number;
  readonly inflightMsgsMax: number;
}

function chooseProfile(rng: Prng, membership: boolean): FaultProfile {
  const on = (p: number) => rng.chance(p);
  return {
    dropRate: on(0.5) ? rng.pick([0.01, 0.05, 0.15, 0.3]) : 0,
    duplicateRate: on(0.4) ? rng.pick([0.01, 0.05, 0.15]) : 0,
    delayMax: rng.pick([1, 2, 3, 6, 10]),
    partitionRate: on(0.5) ? rng.pick([0.005, 0.02, 0.05]) : 0,
    healRate: rng.pick([0.02, 0.05, 0.15]),
    crashRate: on(0.5) ? rng.pick([0.002, 0.01, 0.03]) : 0,
    crashMidReadyRate: on(0.3) ? rng.pick([0.001, 0.005]) : 0,
    newLeaderCrashRate: on(0.3) ? rng.pick([0.1, 0.3, 0.6]) : 0,
    pauseRate: on(0.3) ? rng.pick([0.005, 0.02]) : 0,
    proposeRate: rng.pick([0.1, 0.3, 0.7, 1]),
    confChangeRate: membership && on(0.6) ? rng.pick([0.01, 0.03, 0.08]) : 0,
    compactRate: on(0.6) ? rng.pick([0.01, 0.05, 0.15]) : 0,
    transferRate: on(0.3) ? rng.pick([0.002, 0.01]) : 0,
    readRate: on(0.5) ? rng.pick([0.05, 0.2]) : 0,
    entriesPerMsgMax: rng.pick([1, 2, 8, 64]),
    inflightMsgsMax: rng.pick([1, 2, 4, 32]),
  };
}

const NO_FAULTS: Omit<FaultProfile, 'readRate' | 'entriesPerMsgMax' | 'inflightMsgsMax'> = {
  proposeRate: 0,
  dropRate: 0,
  duplicateRate: 0,
  delayMax: 1,
  partitionRate: 0,
  healRate: 1,
  crashRate: 0,
  crashMidReadyRate: 0,
  newLeaderCrashRate: 0,
  pauseRate: 0,
  confChangeRate: 0,
  compactRate: 0,
  transferRate: 0,
};

/** The state machine: the applied index and a digest of everything applied up to it. */
interface StateMachine {
  index: Index;
  digest: number;
}

function encodeState(s: StateMachine): Uint8Array {
  return UTF8.encode(`${s.index}:${s.digest}`);
}

function decodeState(data: Uint8Array): StateMachine {
  const [index, digest] = UTF8_DECODER.decode(data).split(':').map(Number);
  if (index === undefined || digest === undefined || !Number.isFinite(index) || !Number.isFinite(digest)) {
    throw new InvariantViolation('Snapshot integrity', 'snapshot data does not decode');
  }
  return { index, digest };
}

interface SimReplica {
  readonly id: ReplicaId;
  storage: MemoryRaftStorage;
  node: RaftNode | undefined;
  sm: StateMachine;
  /** Highest commit index already checked against the committed record. */
  commitChecked: Index;
  lastRole: Role;
  pausedUntil: number;
  restartAt: number;
  /** A scheduled crash (new-leader churn); Infinity if none. */
  crashAt: number;
  /** Removed from the group (applied by the leader): no longer expected to make progress. */
  retired: boolean;
}

interface InFlight {
  readonly at: number;
  readonly seq: number;
  readonly msg: Message;
}

interface PendingRead {
  /** Every index committed anywhere when the read was issued: the read must see them. */
  readonly floor: Index;
  readonly issuedAt: number;
}

const READY_ROUNDS_MAX = 64;
const UTF8 = new TextEncoder();
const UTF8_DECODER = new TextDecoder();
const MEMBERSHIP_CHANGES_MAX = 6;
const MESSAGE_TYPE_CODE: Record<string, number> = Object.fromEntries(Object.values(MessageType).map((t, i) => [t, i + 1]));

export class Simulation {
  readonly options: SimulationOptions;
  private readonly rng: Prng;
  private profile: FaultProfile;
  private readonly checker = new InvariantChecker();
  private readonly replicas = new Map<ReplicaId, SimReplica>();
  /** In-flight messages by delivery tick. */
  private network = new Map<number, InFlight[]>();
  private seq = 0;
  private now = 0;
  private hash = FNV_OFFSET;
  private readonly traceLines: string[] = [];
  private groups = new Map<ReplicaId, number>();
  private readonly reads = new Map<string, PendingRead>();
  private readSeq = 0;
  private proposalSeq = 0;
  private nextReplica: number;
  private confChanges = 0;
  readonly initialProfile: FaultProfile;
  readonly stats: SimulationStats = {
    ticks: 0,
    delivered: 0,
    dropped: 0,
    crashes: 0,
    partitions: 0,
    elections: 0,
    maxTerm: 0,
    committed: 0,
    proposals: 0,
    confChanges: 0,
    snapshotsSent: 0,
    compactions: 0,
    reads: 0,
    transfers: 0,
    checks: 0,
    healTicks: 0,
  };

  constructor(options: SimulationOptions) {
    this.options = options;
    this.rng = new Prng(options.seed);
    this.profile = { ...chooseProfile(this.rng, options.membership ?? true), ...options.profile };
    this.initialProfile = this.profile;
    const founders = Array.from({ length: options.voters }, (_, i) => replicaId(`r${i + 1}`));
    this.nextReplica = options.voters + 1;
    const conf = confState(founders);
    const initial = encodeState({ index: 1, digest: FNV_OFFSET });
    for (const id of founders) this.addReplica(id, MemoryRaftStorage.bootstrap(conf, initial));
  }

  // --- the run ----------------------------------------------------------------------------

  run(): SimulationResult {
    let failure: string | undefined;
    try {
      for (let i = 0; i < this.options.steps; i++) this.step(true);
      this.healPhase();
    } catch (err) {
      failure = err instanceof InvariantViolation ? err.message : `core assertion: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
      this.trace(`FAILURE ${failure}`);
    }
    this.stats.checks = this.checker.checks;
    this.stats.committed = this.checker.maxCommittedIndex();
    const result: SimulationResult = {
      seed: this.options.seed,
      ok: failure === undefined,
      traceHash: this.hash.toString(16).padStart(8, '0'),
      stats: this.stats,
      profile: this.initialProfile,
      trace: this.traceLines,
    };
    return failure === undefined ? result : { ...result, failure };
  }

  /** One tick of simulated time. */
  private step(faults: boolean): void {
    this.now++;
    this.stats.ticks++;
    if (faults) this.injectFaults();
    this.restartDue();
    this.clientActivity();
    for (const r of this.replicas.values()) if (this.running(r)) r.node?.tick();
    this.deliverDue();
    this.processAll();
    this.checker.checkLeaders(this.views());
  }

  /**
   * Liveness: with every fault off, a leader must commit a new entry within `healTicksMax`
   * ticks, and every member must then apply it within a bound proportional to how far the
   * slowest member has to catch up at the configured batch size and window.
   */
  private healPhase(): void {
    this.profile = { ...this.profile, ...NO_FAULTS };
    this.groups.clear();
    for (const r of this.replicas.values()) {
      r.pausedUntil = 0;
      r.crashAt = Number.POSITIVE_INFINITY;
      if (r.node === undefined) r.restartAt = this.now;
    }
    const commitDeadline = this.options.healTicksMax ?? 40 * (this.options.electionTick ?? 10);
    let target: { index: Index; term: Term } | undefined;
    let committedAt: number | undefined;
    let deadline = commitDeadline;
    for (let t = 0; t < deadline; t++) {
      this.stats.healTicks++;
      const leader = this.currentLeader();
      if (leader !== undefined && target === undefined) {
        const res = leader.node?.propose(UTF8.encode(`final-${this.options.seed}`));
        if (res?.ok) target = { index: res.index, term: res.term };
      }
      this.step(false);
      if (target === undefined) continue;
      const committedTerm = this.checker.committedTerm(target.index);
      const now = this.currentLeader()?.node;
      const lost =
        (committedTerm !== undefined && committedTerm !== target.term) ||
        (committedTerm === undefined && now !== undefined && now.logTerm(target.index) !== target.term);
      if (lost) {
        target = undefined; // lost to a leader change: propose again
        continue;
      }
      if (committedAt === undefined && committedTerm === target.term) {
        committedAt = t;
        // Catching up moves at most entriesPerMsgMax * inflightMsgsMax entries per round trip.
        const finalIndex = target.index;
        const behind = Math.max(0, ...[...this.replicas.values()].filter((r) => !r.retired).map((r) => finalIndex - r.sm.index));
        const perRoundTrip = this.profile.entriesPerMsgMax * this.profile.inflightMsgsMax;
        deadline = t + 1 + commitDeadline + 4 * Math.ceil(behind / perRoundTrip);
        this.trace(`final entry ${target.index}@${target.term} committed after ${t + 1} healing ticks; catch-up bound ${deadline - t - 1}`);
      }
      if (this.convergedAt(target.index)) {
        this.trace(`healed after ${t + 1} ticks: entry ${target.index} applied by every member`);
        return;
      }
    }
    const leader = this.currentLeader();
    throw new InvariantViolation(
      'Liveness',
      `${committedAt === undefined ? `no new entry committed within ${commitDeadline} ticks` : `not every member applied the new entry within ${deadline - committedAt - 1} ticks of its commit`} after healing (leader: ${leader?.id ?? 'none'}, target: ${
        target === undefined ? 'none' : `${target.index}@${target.term}`
      }, applied: ${[...this.replicas.values()].map((r) => `${r.id}${r.retired ? '(retired)' : ''}=${r.sm.index}`).join(' ')})`,
    );
  }

  /** Every member of the leader's membership has applied `index`. */
  private convergedAt(index: Index): boolean {
    const leader = this.currentLeader();
    const conf = leader?.node?.confState();
    if (conf === undefined) return false;
    return members(conf).every((id) => (this.replicas.get(id)?.sm.index ?? 0) >= index);
  }

  // --- faults and workload ----------------------------------------------------------------

  private injectFaults(): void {
    const p = this.profile;
    const rng = this.rng;
    const all = [...this.replicas.values()];
    if (p.partitionRate > 0 && rng.chance(p.partitionRate)) {
      this.groups = new Map(all.map((r) => [r.id, rng.int(rng.range(2, 3))]));
      this.stats.partitions++;
      this.trace(`partition ${[...this.groups].map(([id, g]) => `${id}:${g}`).join(' ')}`);
    } else if (this.groups.size > 0 && rng.chance(p.healRate)) {
      this.groups.clear();
      this.trace('heal partition');
    }
    for (const r of all) {
      if (r.crashAt > this.now) continue;
      r.crashAt = Number.POSITIVE_INFINITY;
      if (r.node !== undefined) this.crash(r, rng.range(1, 40));
    }
    if (p.crashRate > 0 && rng.chance(p.crashRate)) {
      const live = all.filter((r) => r.node !== undefined);
      if (live.length > 0) this.crash(rng.pick(live), rng.range(1, 60));
    }
    if (p.pauseRate > 0 && rng.chance(p.pauseRate)) {
      const r = rng.pick(all);
      r.pausedUntil = this.now + rng.range(1, 30);
      this.trace(`pause ${r.id} until ${r.pausedUntil}`);
    }
    if (p.confChangeRate > 0 && rng.chance(p.confChangeRate)) this.membershipChange();
    if (p.transferRate > 0 && rng.chance(p.transferRate)) {
      const leader = this.currentLeader();
      const conf = leader?.node?.confState();
      if (leader?.node !== undefined && conf !== undefined) {
        const to = rng.pick(conf.voters);
        const res = leader.node.transferLeader(to);
        this.stats.transfers++;
        this.trace(`transfer ${leader.id} -> ${to}: ${res.ok ? 'started' : res.reason}`);
      }
    }
  }

  private clientActivity(): void {
    const p = this.profile;
    const live = [...this.replicas.values()].filter((r) => this.running(r));
    if (live.length === 0) return;
    if (this.rng.chance(p.proposeRate)) {
      // Clients mostly find the leader, sometimes ask a random replica.
      const target = (this.rng.chance(0.8) ? this.currentLeader() : undefined) ?? this.rng.pick(live);
      const data = UTF8.encode(`v${++this.proposalSeq}`);
      const res = target.node?.propose(data);
      if (res?.ok) this.stats.proposals++;
    }
    if (p.readRate > 0 && this.rng.chance(p.readRate)) {
      const target = this.rng.pick(live);
      const context = UTF8.encode(`read-${++this.readSeq}`);
      const res = target.node?.readIndex(context);
      if (res?.ok) {
        this.reads.set(`read-${this.readSeq}`, { floor: this.checker.maxCommittedIndex(), issuedAt: this.now });
        this.stats.reads++;
      }
    }
  }

  /** An operator doing learner-first changes: add a learner, promote it, remove an old voter. */
  private membershipChange(): void {
    if (this.confChanges >= MEMBERSHIP_CHANGES_MAX) return;
    const leader = this.currentLeader();
    const node = leader?.node;
    if (leader === undefined || node === undefined) return;
    const conf = node.confState();
    let change: { type: ConfChangeType; replica: ReplicaId } | undefined;
    const learner = conf.learners[0];
    if (learner !== undefined) {
      change = { type: ConfChangeType.PromoteLearner, replica: learner };
    } else if (conf.voters.length > this.options.voters) {
      change = { type: ConfChangeType.RemoveReplica, replica: this.rng.pick(conf.voters) };
    } else {
      // A spare that was never a member (a removed id is never reused).
      let spare = [...this.replicas.values()].find((r) => !r.retired && !isMember(conf, r.id) && r.storage.lastIndex() === 0);
      if (spare === undefined) {
        const id = replicaId(`r${this.nextReplica++}`);
        spare = this.addReplica(id, new MemoryRaftStorage());
        this.trace(`spare ${id} started (empty)`);
      }
      change = { type: ConfChangeType.AddLearner, replica: spare.id };
    }
    const res = node.proposeConfChange(change);
    this.trace(`conf change ${change.type} ${change.replica} on ${leader.id}: ${res.ok ? `index ${res.index}` : res.reason}`);
    if (res.ok) {
      this.confChanges++;
      this.stats.confChanges++;
    }
  }

  private crash(r: SimReplica, downFor: number): void {
    r.node = undefined;
    r.restartAt = this.now + downFor;
    this.stats.crashes++;
    this.trace(`crash ${r.id} (restart at ${r.restartAt})`);
    this.applyDiskBugs(r);
  }

  private applyDiskBugs(r: SimReplica): void {
    const bugs = this.options.bugs;
    if (bugs === undefined) return;
    const { hardState, snapshot, entries } = r.storage.dump();
    const forget = Math.min(bugs.forgetEntriesOnCrash ?? 0, entries.length);
    const kept = entries.slice(0, entries.length - forget);
    const lastIndex = snapshot.metadata.index + kept.length;
    r.storage = new MemoryRaftStorage({
      hardState: {
        term: hardState.term,
        vote: bugs.forgetVoteOnCrash ? undefined : hardState.vote,
        commit: Math.min(hardState.commit, lastIndex),
      },
      snapshot,
      entries: kept,
    });
  }

  private restartDue(): void {
    for (const r of this.replicas.values()) {
      if (r.node !== undefined || r.restartAt > this.now) continue;
      r.node = this.newNode(r.id, r.storage);
      // The state machine is rebuilt from the durable snapshot; the log replays the rest.
      const snap = r.storage.snapshot();
      r.sm = snap === undefined || snap.data.byteLength === 0 ? { index: 0, digest: FNV_OFFSET } : decodeState(snap.data);
      r.lastRole = Role.Follower;
      this.trace(`restart ${r.id} (term ${r.storage.hardState().term}, log ${r.storage.firstIndex()}..${r.storage.lastIndex()})`);
    }
  }

  // --- replicas ---------------------------------------------------------------------------

  private addReplica(id: ReplicaId, storage: MemoryRaftStorage): SimReplica {
    const snap = storage.snapshot();
    const r: SimReplica = {
      id,
      storage,
      node: this.newNode(id, storage),
      sm: snap === undefined || snap.data.byteLength === 0 ? { index: 0, digest: FNV_OFFSET } : decodeState(snap.data),
      commitChecked: storage.hardState().commit,
      lastRole: Role.Follower,
      pausedUntil: 0,
      restartAt: 0,
      crashAt: Number.POSITIVE_INFINITY,
      retired: false,
    };
    this.replicas.set(id, r);
    return r;
  }

  private newNode(id: ReplicaId, storage: MemoryRaftStorage): RaftNode {
    return new RaftNode({
      id,
      storage,
      random: this.rng.fork(),
      electionTick: this.options.electionTick ?? 10,
      heartbeatTick: this.options.heartbeatTick ?? 2,
      readOnlyOption: this.options.readOnlyOption ?? ReadOnlyOption.Safe,
      lazyCommitBroadcast: this.options.lazyCommitBroadcast ?? false,
      inflightMsgsMax: this.profile.inflightMsgsMax,
      entriesPerMsgMax: this.profile.entriesPerMsgMax,
      uncommittedEntriesMax: 64,
    });
  }

  private running(r: SimReplica): boolean {
    return r.node !== undefined && r.pausedUntil <= this.now;
  }

  private currentLeader(): SimReplica | undefined {
    let best: SimReplica | undefined;
    let bestTerm = -1;
    for (const r of this.replicas.values()) {
      const st = r.node?.basicStatus();
      if (st?.softState.role === Role.Leader && st.hardState.term > bestTerm && this.running(r)) {
        best = r;
        bestTerm = st.hardState.term;
      }
    }
    return best;
  }

  private *views(): Iterable<ReplicaView> {
    for (const r of this.replicas.values()) {
      const node = r.node;
      if (node === undefined) continue;
      const st = node.basicStatus();
      yield {
        id: r.id,
        term: () => st.hardState.term,
        isLeader: () => st.softState.role === Role.Leader,
        firstIndex: () => st.firstIndex,
        lastIndex: () => st.lastIndex,
        logTerm: (i) => node.logTerm(i),
      };
    }
  }

  // --- network ----------------------------------------------------------------------------

  private send(msg: Message): void {
    const p = this.profile;
    if (p.dropRate > 0 && this.rng.chance(p.dropRate)) {
      this.drop(msg, 'lost');
      return;
    }
    const copies = p.duplicateRate > 0 && this.rng.chance(p.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) this.enqueue({ at: this.now + this.rng.range(1, p.delayMax), seq: this.seq++, msg });
  }

  private enqueue(f: InFlight): void {
    const bucket = this.network.get(f.at);
    if (bucket === undefined) this.network.set(f.at, [f]);
    else bucket.push(f);
  }

  private drop(msg: Message, why: string): void {
    this.stats.dropped++;
    if (this.options.trace) this.trace(`drop(${why}) ${describe(msg)}`);
    if (msg.type === MessageType.Snapshot) this.replicas.get(msg.from)?.node?.reportSnapshot(msg.to, false);
  }

  private deliverDue(): void {
    const due = this.network.get(this.now) ?? [];
    this.network.delete(this.now);
    due.sort((a, b) => a.seq - b.seq);
    for (const { msg } of due) {
      const to = this.replicas.get(msg.to);
      if (to?.node === undefined) {
        this.drop(msg, 'down');
        continue;
      }
      if (to.pausedUntil > this.now) {
        // A paused replica's messages wait in its socket buffer.
        this.enqueue({ at: this.now + 1, seq: this.seq++, msg });
        continue;
      }
      if (this.groups.size > 0 && this.groups.get(msg.from) !== this.groups.get(msg.to)) {
        this.drop(msg, 'partition');
        continue;
      }
      this.stats.delivered++;
      this.hash = mix(mix(mix(mix(mix(this.hash, MESSAGE_TYPE_CODE[msg.type] ?? 0), msg.term), msg.index), msg.entries.length), msg.commit);
      if (this.options.trace) this.trace(`deliver ${describe(msg)}`);
      to.node.step(msg);
      if (msg.type === MessageType.Snapshot) {
        this.stats.snapshotsSent++;
        this.replicas.get(msg.from)?.node?.reportSnapshot(msg.to, true);
      }
    }
  }

  // --- Ready processing -------------------------------------------------------------------

  private processAll(): void {
    for (let round = 0; round < READY_ROUNDS_MAX; round++) {
      let busy = false;
      for (const r of this.replicas.values()) {
        if (!this.running(r) || r.node?.hasReady() !== true) continue;
        this.processReady(r, r.node);
        busy = true;
      }
      if (!busy) return;
    }
    throw new Error(`Ready processing did not quiesce in ${READY_ROUNDS_MAX} rounds`);
  }

  private processReady(r: SimReplica, node: RaftNode): void {
    const rd = node.ready();
    this.observeRole(r, rd);
    this.persist(r, rd);
    if (this.profile.crashMidReadyRate > 0 && this.rng.chance(this.profile.crashMidReadyRate)) {
      // Durable, but nothing sent or applied: the messages die with the process.
      this.trace(`crash ${r.id} after persisting, before sending`);
      this.crash(r, this.rng.range(1, 30));
      return;
    }
    for (const m of rd.messages) this.send(m);
    this.apply(r, rd);
    node.advance(rd);
    this.maybeCompact(r, node);
  }

  private observeRole(r: SimReplica, rd: Ready): void {
    const role = rd.softState.role;
    if (role === r.lastRole) return;
    r.lastRole = role;
    const term = rd.hardState?.term ?? r.storage.hardState().term;
    if (role === Role.Leader) {
      this.stats.elections++;
      this.stats.maxTerm = Math.max(this.stats.maxTerm, term);
      if (this.profile.newLeaderCrashRate > 0 && this.rng.chance(this.profile.newLeaderCrashRate)) r.crashAt = this.now + this.rng.range(0, 6);
    }
    this.hash = mix(mix(this.hash, r.id.charCodeAt(1)), role.length);
    this.trace(`${r.id} is ${role} (term ${term}, leader ${rd.softState.leader ?? '-'})`);
  }

  private persist(r: SimReplica, rd: Ready): void {
    const s = r.storage;
    if (rd.snapshot !== undefined) s.applySnapshot(rd.snapshot);
    s.append(rd.entries);
    for (const e of rd.entries) this.checker.observePersisted(r.id, e, s.term(e.index - 1));
    if (rd.hardState !== undefined) {
      s.setHardState(rd.hardState);
      const commit = rd.hardState.commit;
      if (commit > r.commitChecked) {
        this.checker.observeCommit(r.id, r.commitChecked, commit, (i) => s.term(i));
        r.commitChecked = commit;
      }
    }
  }

  private apply(r: SimReplica, rd: Ready): void {
    if (rd.snapshot !== undefined) this.applySnapshot(r, rd.snapshot);
    for (const e of rd.committedEntries) {
      if (e.index !== r.sm.index + 1) throw new InvariantViolation('State Machine Safety', `${r.id} applies ${e.index} after ${r.sm.index}: a gap`);
      r.sm = { index: e.index, digest: mix(r.sm.digest, entryHash(e)) };
      this.checker.observeApplied(r.id, e.index, r.sm.digest, `applying entry ${e.index}@${e.term}`);
      this.hash = mix(mix(this.hash, e.index), e.term);
      if (e.type === 'confChange') this.onConfChangeApplied(r, e.change.type, e.change.replica);
    }
    for (const rs of rd.readStates) this.checkRead(r, rs.index, UTF8_DECODER.decode(rs.context));
  }

  private applySnapshot(r: SimReplica, snap: Snapshot): void {
    const state = decodeState(snap.data);
    if (state.index !== snap.metadata.index)
      throw new InvariantViolation('Snapshot integrity', `${r.id} got snapshot ${snap.metadata.index} holding state ${state.index}`);
    this.checker.observeApplied(r.id, state.index, state.digest, `restoring snapshot ${snap.metadata.index}@${snap.metadata.term}`);
    r.sm = state;
    this.trace(`${r.id} restored snapshot ${snap.metadata.index}@${snap.metadata.term}`);
  }

  private onConfChangeApplied(r: SimReplica, type: ConfChangeType, replica: ReplicaId): void {
    if (type === ConfChangeType.RemoveReplica && r.node?.basicStatus().softState.role === Role.Leader) {
      const removed = this.replicas.get(replica);
      if (removed !== undefined && !removed.retired) {
        removed.retired = true;
        this.trace(`${replica} retired`);
      }
    }
  }

  /** Linearizable reads: a read point covers everything committed anywhere before the read began. */
  private checkRead(r: SimReplica, index: Index, context: string): void {
    const read = this.reads.get(context);
    if (read === undefined) return;
    this.reads.delete(context);
    if (index < read.floor) {
      throw new InvariantViolation(
        'Linearizable reads',
        `${r.id} got read point ${index} for ${context} issued at tick ${read.issuedAt}, but ${read.floor} was already committed`,
      );
    }
  }

  private maybeCompact(r: SimReplica, node: RaftNode): void {
    if (this.profile.compactRate === 0 || !this.rng.chance(this.profile.compactRate)) return;
    const s = r.storage;
    const index = r.sm.index;
    if (index <= s.snapshotMetadata().index || index > s.hardState().commit || index > s.lastIndex()) return;
    s.compact(index, node.confState(), encodeState(r.sm));
    this.stats.compactions++;
    this.trace(`${r.id} compacted to ${index}`);
  }

  private trace(line: string): void {
    if (this.options.trace) this.traceLines.push(`[${this.now}] ${line}`);
  }
}

function describe(m: Message): string {
  const extra =
    m.type === MessageType.Append
      ? ` prev=${m.index}@${m.logTerm} n=${m.entries.length} commit=${m.commit}`
      : m.type === MessageType.AppendResponse
        ? ` index=${m.index}${m.reject ? ` reject hint=${m.rejectHint}@${m.logTerm}` : ''}`
        : m.type === MessageType.Snapshot
          ? ` snap=${m.snapshot?.metadata.index}@${m.snapshot?.metadata.term}`
          : m.reject
            ? ' reject'
            : '';
  return `${m.type} ${m.from}->${m.to} t${m.term}${extra}`;
}

export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

/** The one-line command that replays one run exactly (same seed, size and overrides). */
export function replayCommand(
  seed: number,
  voters: number,
  options: Partial<Pick<SimulationOptions, 'readOnlyOption' | 'profile' | 'steps' | 'lazyCommitBroadcast'>> = {},
): string {
  const env = [`RAFT_SEED=${seed}`, `RAFT_VOTERS=${voters}`];
  if (options.steps !== undefined) env.push(`RAFT_STEPS=${options.steps}`);
  if (options.readOnlyOption === ReadOnlyOption.Lease) env.push('RAFT_READS=lease');
  if (options.lazyCommitBroadcast === true) env.push('RAFT_LAZY_COMMIT=1');
  if (options.profile !== undefined && Object.keys(options.profile).length > 0) env.push(`RAFT_PROFILE='${JSON.stringify(options.profile)}'`);
  return `${env.join(' ')} npx vitest run node/src/raft/simulation.test.ts`;
}
