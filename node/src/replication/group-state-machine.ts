/**
 * The state machine of one data group (ADR 0008 §3-§4): applies the group's committed entries
 * to the node's storage engine and keeps the group's applied state next to the data.
 *
 * - A normal entry with data is a `ReplicatedCommand`: ONE engine write of its mutations plus the
 *   applied state (`appliedStateKey(group)`: index, term, highest commit timestamp), at the
 *   command's `commitTs` and `nowMs`, unsynced (the Raft log is already durable; after a crash
 *   replay starts after the stored applied index).
 * - Empty entries (a new leader's first entry) and conf changes only move the applied index (the
 *   core applies conf changes itself in `advance`); a run of them shares one write, or rides on
 *   the next data entry's write.
 * - Writes are submitted in log order without waiting (the engine applies in submission order);
 *   each entry's outcome (`applied` + existed[], `conditionFailed`, `noop`, `failed`) arrives on
 *   its own promise, for the proposer waiting on the leader.
 * - A write whose condition fails writes nothing, the applied state included. Replaying it
 *   after a crash is harmless: it meets the same state (everything after it that succeeded
 *   wrote a higher applied index) and fails the same way.
 * - Exactly-once writes (docs/adr/0011-exactly-once-writes.md): a command carrying a client
 *   request id is written together with the id's record (`request-record.ts`), as the batch's
 *   first mutation, conditioned on the record being absent. If the id is already recorded the
 *   engine writes nothing and the entry's outcome is the FIRST application's (`applied`, with its
 *   commit timestamp as `version` and `deduplicated`): decided by the engine state at the entry's
 *   log position, so the same on every replica and on replay.
 * - Every replica moves its hybrid clock past every applied commit timestamp, and on open past
 *   the stored highest one, so a leader elected later never hands out a lower version.
 * - A snapshot (from the leader, or left half-installed by a crash) replaces the partition's
 *   data range: `deleteRange`, then one write per distinct version, the last one with the
 *   applied state. A data group's snapshot is streamed (ADR 0008 §9): its rows were staged on
 *   this node before the core saw the message, and stay staged until the applied state is
 *   written (`snapshot-install.ts`); meanwhile `installing` is true and the group submits and
 *   serves nothing. If that is interrupted, the stored applied index stays below the log's
 *   snapshot index and the runtime installs the snapshot again, from the staging, on the next
 *   start: the range ends as the old state or the new one, never a mix that anything reads.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { type HybridClock, maxTs } from '../clock/hybrid-clock.ts';
import type { Mutation, ScanItem, StorageEngine, Timestamp, WriteResult } from '../engine/types.ts';
import { applyConfChange } from '../raft/conf-change.ts';
import type { ConfState, Entry, Index, Snapshot, Term } from '../raft/types.ts';
import { afterMerge, mergeCommandOf, mergeFits } from '../split/merge-command.ts';
import {
  afterSplit,
  decodeRangeRecord,
  encodeRangeRecord,
  type RangeRecord,
  rangeRecordKey,
  snapshotRangeOf,
  splitCommandOf,
  splitFits,
  unwrapSnapshot,
  wrapSnapshot,
} from '../split/split-command.ts';
import type { SplitHooks } from '../split/split-hooks.ts';
import { decodePartitionSnapshot, decodeSnapshotDescriptor, encodeSnapshotDescriptor, type HashRange, isStreamedSnapshot } from './partition-snapshot.ts';
import { appliedStateKey, type GroupId } from './raft-keys.ts';
import { decodeCommand, type ReplicatedCommand } from './replicated-command.ts';
import { recordIndexPut, requestRecordOf } from './request-record.ts';
import { writeStagedRows } from './snapshot-install.ts';
import type { SnapshotStaging } from './snapshot-staging.ts';
import { EngineSnapshotStaging } from './snapshot-staging-engine.ts';

/**
 * The content of a group that is not a partition (the meta group, `node/src/meta`): what its
 * commands do and what its snapshots hold. Without one, a group's content is its partition's
 * data (the command's own mutations, snapshots of the hash range). Everything else (applied
 * state, write order, outcomes, the clock) is the same.
 */
export interface GroupContent {
  /**
   * Applies `command` (entry `index`) to the content's in-memory state and returns the engine
   * mutations persisting it, written atomically with the applied state. Deterministic: called
   * in log order, once per entry (also on replay after a restart).
   */
  apply(command: ReplicatedCommand, index: Index): Mutation[];
  /** The snapshot data of the current state (called when no write is in flight). */
  snapshot(): Uint8Array;
  /** Replaces the state with a snapshot's; returns the mutations persisting it. Throws if the data is corrupt. */
  install(data: Uint8Array): Mutation[];
}

/** What the engine holds for a group: everything up to `index` is applied. */
export interface AppliedState {
  readonly index: Index;
  /** Term of the entry at `index`. */
  readonly term: Term;
  /** Highest commit timestamp of any applied command (0n if none). */
  readonly maxCommitTs: Timestamp;
}

export const EMPTY_APPLIED_STATE: AppliedState = { index: 0, term: 0, maxCommitTs: 0n };

export function encodeAppliedState(s: AppliedState): Buffer {
  const b = Buffer.allocUnsafe(24);
  b.writeDoubleBE(s.index, 0);
  b.writeDoubleBE(s.term, 8);
  b.writeBigUInt64BE(s.maxCommitTs, 16);
  return b;
}

export function decodeAppliedState(b: Buffer): AppliedState {
  if (b.length !== 24) throw new KeyVaError('STORAGE_ERROR', 'corrupt applied state record');
  return { index: b.readDoubleBE(0), term: b.readDoubleBE(8), maxCommitTs: b.readBigUInt64BE(16) };
}

/** The outcome of applying one entry. */
export type ApplyOutcome =
  /**
   * A command whose batch was written; `existed` per mutation, as `engine.write` says. With
   * `deduplicated`, its request id was already recorded: nothing was written now, `version` is
   * the first application's commit timestamp and `existed` what that application found when this
   * replica still remembers it (all false otherwise).
   */
  | {
      readonly kind: 'applied';
      readonly existed: readonly boolean[];
      readonly version?: Timestamp | undefined;
      readonly deduplicated?: true | undefined;
    }
  /** A command whose condition did not hold: nothing was written (the same on every replica). */
  | { readonly kind: 'conditionFailed'; readonly failedIndex: number; readonly currentVersion: Timestamp }
  /** An entry without a command (empty, conf change) or with bytes that are not a command. */
  | { readonly kind: 'noop' }
  /**
   * A command for hashes outside the group's range at its log position (the range was split
   * before it), or a split that does not fit the range: nothing written, on every replica alike.
   */
  | { readonly kind: 'wrongPartition' }
  /** The engine failed: the group cannot go on (see `onFatal`). */
  | { readonly kind: 'failed'; readonly error: Error };

export interface AppliedEntry {
  readonly index: Index;
  readonly term: Term;
  /** The decoded command, for normal entries that carry one. */
  readonly command: ReplicatedCommand | undefined;
  /** Settles (never rejects) once the entry's write is done. */
  readonly done: Promise<ApplyOutcome>;
  /** A split or a merge: the entry changes the group's range. */
  readonly changesRange?: true;
}

export interface StateMachineStats {
  entries: number;
  writes: number;
  conditionFailures: number;
  /** Normal entries whose data is not a valid command: applied as no-ops, on every replica alike. */
  corruptCommands: number;
  snapshotsInstalled: number;
  /** Commands whose request id was already recorded: answered with the first result, not applied again. */
  duplicates: number;
}

/** Request ids whose `existed` flags a replica keeps in memory, to answer a resent delete with them. */
const RECENT_RESULTS_MAX = 4096;

export interface GroupStateMachineOptions {
  readonly engine: StorageEngine;
  /** Where this node stages received snapshots (data groups install from it); default: rows of `engine`. */
  readonly staging?: SnapshotStaging;
  readonly group: GroupId;
  /** The partition's data range: what snapshots dump and replace. */
  readonly range: HashRange;
  readonly clock: HybridClock;
  /** Called once when an engine write fails: the group must stop (it cannot skip an entry). */
  readonly onFatal?: (error: Error) => void;
  /** A group whose content is not partition data (the meta group); `range` is then unused. */
  readonly content?: GroupContent;
  /** Data groups: what applying a split asks of the node (docs/adr/0010-splits.md). */
  readonly splits?: SplitHooks;
}

const NOOP: ApplyOutcome = { kind: 'noop' };

export class GroupStateMachine {
  readonly group: GroupId;
  readonly stats: StateMachineStats = { entries: 0, writes: 0, conditionFailures: 0, corruptCommands: 0, snapshotsInstalled: 0, duplicates: 0 };
  private readonly o: GroupStateMachineOptions;
  private readonly staging: SnapshotStaging;
  private readonly key: Buffer;
  /** Confirmed by the engine. */
  private confirmed: AppliedState;
  /** Submitted (written or in flight). */
  private submitted: AppliedState;
  /** Settles when the latest submitted write is done (writes finish in submission order). */
  private tail: Promise<unknown> = Promise.resolve();
  private failed: Error | undefined;
  private installingSnapshot = false;
  /** The range at the submitted position in the log (splits narrow it) and the children split off (docs/adr/0010-splits.md). */
  private record: RangeRecord;
  /** `existed` of recently applied request ids (hex), oldest first: only for answers, never for decisions. */
  private readonly recentResults = new Map<string, readonly boolean[]>();
  /**
   * The group's Raft membership at the submitted position (merges check an absorb against it):
   * the core's at open (`assumeMembership`), then every conf-change entry and snapshot in log
   * order, as the core applies them. Undefined until the driver sets it.
   */
  private conf: ConfState | undefined;

  private constructor(o: GroupStateMachineOptions, state: AppliedState, record: RangeRecord | undefined) {
    this.o = o;
    this.staging = o.staging ?? new EngineSnapshotStaging(o.engine);
    this.group = o.group;
    // A group created before range records existed: the range it was opened with (the map's).
    this.record = record ?? { start: o.range.start, end: o.range.end, children: [] };
    this.key = appliedStateKey(o.group);
    this.confirmed = state;
    this.submitted = state;
  }

  /** Reads the group's applied state from the engine and moves the clock past it. */
  static async open(o: GroupStateMachineOptions): Promise<GroupStateMachine> {
    const raw = await o.engine.getRaw(appliedStateKey(o.group));
    const state = raw === undefined ? EMPTY_APPLIED_STATE : decodeAppliedState(raw);
    o.clock.observe(state.maxCommitTs);
    const rec = o.content === undefined ? await o.engine.getRaw(rangeRecordKey(o.group)) : undefined;
    return new GroupStateMachine(o, state, rec === undefined ? undefined : decodeRangeRecord(rec));
  }

  /** The partition's hash range at the latest submitted entry (narrowed by the splits applied). */
  get range(): HashRange {
    return { start: this.record.start, end: this.record.end };
  }

  /** Merges (docs/adr/0010-splits.md): the group is frozen into another one and owns nothing any more. */
  get frozen(): { readonly into: number; readonly index: number } | undefined {
    return this.record.frozen;
  }

  /** The range at the latest submitted entry with the groups this one absorbed and whether it is frozen. */
  get rangeRecord(): RangeRecord {
    return this.record;
  }

  /** What the engine has confirmed applied. */
  get applied(): AppliedState {
    return this.confirmed;
  }

  /**
   * A streamed snapshot is being written into the partition's range: its data is neither the
   * old state nor the new one, so nothing may read it locally, and nothing is submitted.
   */
  get installing(): boolean {
    return this.installingSnapshot;
  }

  /** The engine error that stopped this group, if any. */
  get failure(): Error | undefined {
    return this.failed;
  }

  /**
   * Mutation recording the applied state `state`, for a write the caller makes (e.g. the
   * bootstrap write, or a compaction).
   */
  stateMutation(state: AppliedState): Mutation {
    return { type: 'rawPut', key: this.key, value: encodeAppliedState(state) };
  }

  /**
   * Data groups: the mutation recording the group's hash range durably (`r | group | 'g'`), also
   * for the bootstrap write: from then on the group's own record, not the map, says what it owns.
   */
  rangeMutations(): Mutation[] {
    return this.o.content === undefined ? [{ type: 'rawPut', key: rangeRecordKey(this.group), value: encodeRangeRecord(this.record) }] : [];
  }

  /**
   * The group's membership at the submitted index (the driver passes the core's when it starts,
   * which is the membership at the applied index); from then on conf-change entries and snapshots
   * keep it in step with the log.
   */
  assumeMembership(conf: ConfState): void {
    this.conf = conf;
  }

  /** The membership at the latest submitted entry (undefined until `assumeMembership`). */
  get membership(): ConfState | undefined {
    return this.conf;
  }

  /** Records that the caller wrote `state` durably with `stateMutation` (bootstrap). */
  assumeWritten(state: AppliedState): void {
    this.confirmed = state;
    this.submitted = state;
  }

  /** Submits committed entries (in log order, contiguous after what was applied); does not wait. */
  apply(entries: readonly Entry[]): AppliedEntry[] {
    this.checkUsable();
    const out: AppliedEntry[] = [];
    /** Entries without a write of their own, settled by the next write. */
    let riders: ((o: ApplyOutcome) => void)[] = [];
    for (const e of entries) {
      if (e.index !== this.submitted.index + 1) {
        throw new KeyVaError('INTERNAL', `group ${this.group}: entry ${e.index} applied after ${this.submitted.index}`);
      }
      this.stats.entries++;
      // The same pure function the core applies the entry with (at `advance`), at the same position.
      if (e.type === 'confChange' && this.conf !== undefined) this.conf = applyConfChange(this.conf, e.change);
      const command = e.type === 'normal' && e.data.byteLength > 0 ? this.decode(e.data) : undefined;
      const split = command !== undefined && this.o.content === undefined ? splitCommandOf(command) : undefined;
      // Merges (docs/adr/0010-splits.md): a frozen group applies nothing but no-ops.
      const merge = command !== undefined && this.o.content === undefined && split === undefined ? mergeCommandOf(command) : undefined;
      const misplaced =
        command !== undefined &&
        this.o.content === undefined &&
        (merge !== undefined
          ? merge === 'invalid' || !mergeFits(merge, this.record, this.group, this.conf)
          : split === undefined
            ? this.record.frozen !== undefined || command.mutations.some((m) => m.hash < this.record.start || m.hash >= this.record.end)
            : split === 'invalid' || !splitFits(split, this.record));
      if (command === undefined || misplaced) {
        // No write of its own; a misplaced command writes nothing and says so (the same everywhere).
        this.submitted = { ...this.submitted, index: e.index, term: e.term };
        let settle!: (o: ApplyOutcome) => void;
        const done = new Promise<ApplyOutcome>((resolve) => {
          settle = resolve;
        });
        riders.push(misplaced ? (o) => settle(o.kind === 'noop' ? { kind: 'wrongPartition' } : o) : settle);
        out.push({ index: e.index, term: e.term, command, done });
        continue;
      }
      // Every command with a write of its own moves the applied state with that write.
      this.o.clock.observe(command.commitTs);
      const state: AppliedState = { index: e.index, term: e.term, maxCommitTs: maxTs(command.commitTs, this.submitted.maxCommitTs) };
      this.submitted = state;
      if (merge !== undefined && merge !== 'invalid') {
        // A freeze (right group) or an absorb (left group): the range record changes with the applied state.
        this.record = afterMerge(this.record, merge, e.index);
        const written = this.submit([...this.rangeMutations(), this.stateMutation(state)], command.commitTs, command.nowMs, state);
        out.push(rangeChangeApplied(e, command, written, riders, () => this.o.splits?.mergeApplied?.(this.group, merge)));
        riders = [];
        continue;
      }
      if (split !== undefined && split !== 'invalid') {
        // A split (docs/adr/0010-splits.md): narrow the range, create the child, atomically with the applied state.
        const cutOff: HashRange = { start: split.at, end: split.childEnd };
        this.record = afterSplit(this.record, split);
        const mutations: Mutation[] = [
          { type: 'rawPut', key: rangeRecordKey(this.group), value: encodeRangeRecord(this.record) },
          ...(this.o.splits?.childMutations(this.group, split, command.commitTs) ?? []),
          this.stateMutation(state),
        ];
        const written = this.submit(mutations, command.commitTs, command.nowMs, state);
        const child = { group: split.childGroup, start: split.at, end: split.childEnd };
        out.push(rangeChangeApplied(e, command, written, riders, () => this.o.splits?.childrenReady(this.group, [child], cutOff)));
        riders = [];
        continue;
      }
      // Exactly-once: the request id's record goes first, conditioned on its absence.
      const dedup = this.o.content === undefined ? requestRecordOf(command) : undefined;
      const first = dedup === undefined ? 0 : 1;
      const content = this.o.content === undefined ? command.mutations : this.o.content.apply(command, e.index);
      const mutations: Mutation[] =
        dedup === undefined || dedup.type !== 'put'
          ? [...content, this.stateMutation(state)]
          : [
              dedup,
              ...content,
              recordIndexPut({ group: this.group, version: command.commitTs, hash: dedup.hash, requestId: command.requestId as Buffer }),
              this.stateMutation(state),
            ];
      const written = this.submit(mutations, command.commitTs, command.nowMs, state);
      const rid = command.requestId?.toString('hex');
      const done = written.then(
        (r): ApplyOutcome => {
          if (r.ok) {
            const existed = r.existed.slice(first, first + content.length);
            if (rid !== undefined) this.remember(rid, existed);
            return { kind: 'applied', existed };
          }
          if (dedup !== undefined && r.failedIndex === 0) {
            this.stats.duplicates++;
            const existed = (rid === undefined ? undefined : this.recentResults.get(rid)) ?? content.map(() => false);
            return { kind: 'applied', existed, version: r.currentVersion, deduplicated: true };
          }
          this.stats.conditionFailures++;
          return { kind: 'conditionFailed', failedIndex: r.failedIndex - first, currentVersion: r.currentVersion };
        },
        (error: Error): ApplyOutcome => ({ kind: 'failed', error }),
      );
      settleRiders(riders, written);
      riders = [];
      out.push({ index: e.index, term: e.term, command, done });
    }
    if (riders.length > 0) {
      // Trailing entries without data: one write moves the applied state past them.
      settleRiders(riders, this.submit([this.stateMutation(this.submitted)], 1n, 0, this.submitted));
    }
    return out;
  }

  /**
   * Replaces the partition's data with a snapshot's (see the file comment); the applied state
   * becomes the snapshot's index and term. Submits in order and returns when done.
   */
  installSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkUsable();
    const { index, term } = snapshot.metadata;
    this.conf = snapshot.metadata.confState;
    if (this.o.content !== undefined) return this.installContent(this.o.content, snapshot);
    const before = this.record;
    this.adoptSnapshotRange(snapshot.data);
    // Streamed (ADR 0008 §9): the rows are staged on this node (`snapshot-install.ts`).
    const payload = unwrapSnapshot(snapshot.data).inner;
    const streamed = isStreamedSnapshot(payload) ? decodeSnapshotDescriptor(payload) : undefined;
    const data = streamed === undefined ? decodePartitionSnapshot(payload) : { maxCommitTs: streamed.maxCommitTs, rows: [] };
    const byVersion = new Map<Timestamp, ScanItem[]>();
    for (const r of data.rows) {
      if (r.hash < this.range.start || r.hash >= this.range.end) throw new KeyVaError('STORAGE_ERROR', `snapshot row outside group ${this.group}'s range`);
      const rows = byVersion.get(r.version);
      if (rows === undefined) byVersion.set(r.version, [r]);
      else rows.push(r);
    }
    const maxCommitTs = maxTs(data.maxCommitTs, this.submitted.maxCommitTs);
    this.o.clock.observe(maxCommitTs);
    const state: AppliedState = { index, term, maxCommitTs };
    this.submitted = state;
    // A streamed snapshot deletes the range itself, once it found its rows staged.
    const steps: Promise<unknown>[] = streamed === undefined ? [this.o.engine.deleteRange(this.range.start, this.range.end)] : [];
    for (const version of [...byVersion.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      const mutations: Mutation[] = (byVersion.get(version) ?? []).map((r) => ({
        type: 'put',
        hash: r.hash,
        key: r.key,
        value: r.value,
        expiresAtMs: r.expiresAtMs,
      }));
      steps.push(this.o.engine.write({ mutations, commitTs: version, nowMs: 0, sync: false }));
    }
    const recordWrite = this.rangeMutations();
    if (streamed === undefined) steps.push(this.submit([...recordWrite, this.stateMutation(state)], 1n, 0, state));
    else {
      // The rows are read from staging after the range delete; the applied state comes last. The
      // driver takes no Ready (so submits nothing) while `installing`.
      const range = this.range;
      const id = { index, term };
      this.installingSnapshot = true;
      const rows = writeStagedRows(this.o.engine, this.staging, this.group, range, id);
      steps.push(
        rows
          // Synced: the staging may live outside the engine (files), so the install must be
          // durable before the staging goes.
          .then(() => this.submit([...recordWrite, this.stateMutation(state)], 1n, 0, state, true))
          // This snapshot's staging and any older one (a transfer the core then ignored as stale).
          .then(() => this.staging.clear(this.group, { upTo: index }))
          .finally(() => {
            this.installingSnapshot = false;
          }),
      );
    }
    this.stats.snapshotsInstalled++;
    const narrowed = this.record.end < before.end ? { start: this.record.end, end: before.end } : undefined;
    const all = Promise.all(steps).then(
      () => {
        if (narrowed !== undefined) this.o.splits?.narrowedBySnapshot(this.group, narrowed);
      },
      (e: Error) => {
        this.fail(e);
        throw e;
      },
    );
    this.tail = all.catch(() => undefined);
    return all;
  }

  /** Settles when every write submitted so far is done; rejects if the group failed. */
  async idle(): Promise<void> {
    await this.tail;
    if (this.failed) throw this.failed;
  }

  /**
   * The snapshot data of the applied state: a data group's is the descriptor of a streamed
   * snapshot (any size) at the latest SUBMITTED entry, a content group's its content's (after
   * the in-flight writes). The caller must not submit more entries until this returns, and must
   * write what it builds from it (a log compaction) after the submitted writes: the engine
   * applies writes in submission order and a crash loses only a suffix of them, so a compaction
   * that survived a crash comes with every apply before it. A data group does not wait for its
   * in-flight writes, which would hold the node's Raft turns for a storage round trip.
   */
  async snapshotData(): Promise<{ state: AppliedState; data: Uint8Array }> {
    if (this.o.content !== undefined) {
      await this.idle();
      return { state: this.confirmed, data: this.o.content.snapshot() };
    }
    if (this.failed) throw this.failed;
    const state = this.submitted;
    // Streamed (ADR 0008 §9): only the descriptor; the leader streams the rows when it sends it.
    const data = encodeSnapshotDescriptor({ maxCommitTs: state.maxCommitTs, range: this.range });
    const r = this.record;
    return { state, data: r.children.length > 0 || r.frozen !== undefined || r.absorbed !== undefined ? wrapSnapshot(r, data) : data };
  }

  /**
   * Whether snapshot data of this group (the log's stored snapshot, about to be sent) describes
   * the group's current range record. A snapshot taken before a split or merge this group has
   * applied since does not: sent now, the receiver would delete and rewrite the whole old range
   * (the rows a child hosted on the same node owns included) from the sender's rows at the old
   * timestamp, which the sender may no longer hold (docs/adr/0010-splits.md "Replica divergence
   * found by digests"). Such a snapshot must not be sent; the group compacts first. Content
   * groups (the meta group) have no range: always true.
   */
  describesCurrentRange(data: Uint8Array): boolean {
    if (this.o.content !== undefined) return true;
    const r = this.record;
    const { record } = unwrapSnapshot(data);
    if (record !== undefined) return encodeRangeRecord(record).equals(encodeRangeRecord(r));
    // Not wrapped: taken while the group had never split or merged; a descriptor names its range,
    // the bootstrap snapshot (empty or inline) the range the group was founded with.
    if (r.children.length > 0 || r.frozen !== undefined || r.absorbed !== undefined) return false;
    const range = snapshotRangeOf(data);
    return range === undefined || (range.start === r.start && range.end === r.end);
  }

  /**
   * Splits (docs/adr/0010-splits.md): a snapshot taken after splits the replica has not applied
   * (it skips them) carries the narrower range (its descriptor's, or the wrapped range record
   * with the children); the replica adopts it, so it
   * refuses later entries for the part it no longer owns like every other replica, and the
   * install (deleteRange, rows, applied state) covers only that range. Call first in
   * `installSnapshot`; the range record is written with the install's applied state.
   */
  private adoptSnapshotRange(data: Uint8Array): void {
    // A wrapped record is the group's whole record at the snapshot's index (frozen or absorbed groups included).
    const wrapped = unwrapSnapshot(data).record;
    if (wrapped !== undefined) {
      this.record = wrapped;
      return;
    }
    const r = snapshotRangeOf(data);
    if (r === undefined || (r.start === this.record.start && r.end === this.record.end)) return;
    // The snapshot is the group's state at its index, its range included (an empty replica may
    // have been hosted with the range a stale map showed).
    this.record = unwrapSnapshot(data).record ?? { start: r.start, end: r.end, children: this.record.children };
  }

  /** A content group's snapshot: one write of the content's mutations and the applied state. */
  private installContent(content: GroupContent, snapshot: Snapshot): Promise<void> {
    const { index, term } = snapshot.metadata;
    const mutations = content.install(snapshot.data);
    const state: AppliedState = { index, term, maxCommitTs: this.submitted.maxCommitTs };
    this.submitted = state;
    this.stats.snapshotsInstalled++;
    return this.submit([...mutations, this.stateMutation(state)], 1n, 0, state).then(() => undefined);
  }

  private remember(rid: string, existed: readonly boolean[]): void {
    this.recentResults.set(rid, existed);
    if (this.recentResults.size > RECENT_RESULTS_MAX) {
      const oldest = this.recentResults.keys().next().value;
      if (oldest !== undefined) this.recentResults.delete(oldest);
    }
  }

  private decode(data: Uint8Array): ReplicatedCommand | undefined {
    try {
      return decodeCommand(data);
    } catch {
      // The same bytes fail the same way on every replica: skipping them keeps replicas equal,
      // and a bad proposal cannot stop the group. Counted, for an alert.
      this.stats.corruptCommands++;
      return undefined;
    }
  }

  private submit(mutations: Mutation[], commitTs: Timestamp, nowMs: number, state: AppliedState, sync = false): Promise<WriteResult> {
    this.stats.writes++;
    const w = this.o.engine.write({ mutations, commitTs, nowMs, sync });
    this.tail = w.then(
      () => {
        // Writes finish in submission order, so this only moves forward.
        if (state.index >= this.confirmed.index) this.confirmed = state;
      },
      (e: Error) => this.fail(e),
    );
    return w;
  }

  private fail(e: Error): void {
    if (this.failed !== undefined) return;
    this.failed = e;
    this.o.onFatal?.(e);
  }

  private checkUsable(): void {
    if (this.failed) throw this.failed;
  }
}

function settleRiders(riders: readonly ((o: ApplyOutcome) => void)[], write: Promise<WriteResult>): void {
  if (riders.length === 0) return;
  write.then(
    () => {
      for (const r of riders) r(NOOP);
    },
    (error: Error) => {
      for (const r of riders) r({ kind: 'failed', error });
    },
  );
}

/**
 * The applied entry of a split or a merge: `written` carries the range change with the applied
 * state; once it is done, `after` tells the node (child groups ready, merge applied). The riders
 * before it settle with the same write.
 */
function rangeChangeApplied(
  e: Entry,
  command: ReplicatedCommand,
  written: Promise<WriteResult>,
  riders: readonly ((o: ApplyOutcome) => void)[],
  after: () => void,
): AppliedEntry {
  const done = written.then(
    (): ApplyOutcome => {
      after();
      return { kind: 'applied', existed: [false] };
    },
    (error: Error): ApplyOutcome => ({ kind: 'failed', error }),
  );
  settleRiders(riders, written);
  return { index: e.index, term: e.term, command, done, changesRange: true };
}
