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
 * - Every replica moves its hybrid clock past every applied commit timestamp, and on open past
 *   the stored highest one, so a leader elected later never hands out a lower version.
 * - A snapshot (from the leader, or left half-installed by a crash) replaces the partition's
 *   data range: `deleteRange`, then one write per distinct version, the last one with the
 *   applied state. If that is interrupted, the stored applied index stays below the log's
 *   snapshot index and the runtime installs the snapshot again on the next start.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { type HybridClock, maxTs } from '../clock/hybrid-clock.ts';
import type { Mutation, ScanItem, StorageEngine, Timestamp, WriteResult } from '../engine/types.ts';
import type { Entry, Index, Snapshot, Term } from '../raft/types.ts';
import { decodePartitionSnapshot, dumpPartition, encodePartitionSnapshot, type HashRange, SNAPSHOT_BYTES_MAX } from './partition-snapshot.ts';
import { appliedStateKey, type GroupId } from './raft-keys.ts';
import { decodeCommand, type ReplicatedCommand } from './replicated-command.ts';

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
  /** A command whose batch was written; `existed` per mutation, as `engine.write` says. */
  | { readonly kind: 'applied'; readonly existed: readonly boolean[] }
  /** A command whose condition did not hold: nothing was written (the same on every replica). */
  | { readonly kind: 'conditionFailed'; readonly failedIndex: number; readonly currentVersion: Timestamp }
  /** An entry without a command (empty, conf change) or with bytes that are not a command. */
  | { readonly kind: 'noop' }
  /** The engine failed: the group cannot go on (see `onFatal`). */
  | { readonly kind: 'failed'; readonly error: Error };

export interface AppliedEntry {
  readonly index: Index;
  readonly term: Term;
  /** The decoded command, for normal entries that carry one. */
  readonly command: ReplicatedCommand | undefined;
  /** Settles (never rejects) once the entry's write is done. */
  readonly done: Promise<ApplyOutcome>;
}

export interface StateMachineStats {
  entries: number;
  writes: number;
  conditionFailures: number;
  /** Normal entries whose data is not a valid command: applied as no-ops, on every replica alike. */
  corruptCommands: number;
  snapshotsInstalled: number;
}

export interface GroupStateMachineOptions {
  readonly engine: StorageEngine;
  readonly group: GroupId;
  /** The partition's data range: what snapshots dump and replace. */
  readonly range: HashRange;
  readonly clock: HybridClock;
  /** Called once when an engine write fails: the group must stop (it cannot skip an entry). */
  readonly onFatal?: (error: Error) => void;
  /** Encoded snapshot bytes at most (`snapshotData` returns undefined beyond). */
  readonly snapshotBytesMax?: number;
}

const NOOP: ApplyOutcome = { kind: 'noop' };

export class GroupStateMachine {
  readonly group: GroupId;
  readonly range: HashRange;
  readonly stats: StateMachineStats = { entries: 0, writes: 0, conditionFailures: 0, corruptCommands: 0, snapshotsInstalled: 0 };
  private readonly o: GroupStateMachineOptions;
  private readonly key: Buffer;
  /** Confirmed by the engine. */
  private confirmed: AppliedState;
  /** Submitted (written or in flight). */
  private submitted: AppliedState;
  /** Settles when the latest submitted write is done (writes finish in submission order). */
  private tail: Promise<unknown> = Promise.resolve();
  private failed: Error | undefined;

  private constructor(o: GroupStateMachineOptions, state: AppliedState) {
    this.o = o;
    this.group = o.group;
    this.range = o.range;
    this.key = appliedStateKey(o.group);
    this.confirmed = state;
    this.submitted = state;
  }

  /** Reads the group's applied state from the engine and moves the clock past it. */
  static async open(o: GroupStateMachineOptions): Promise<GroupStateMachine> {
    const raw = await o.engine.getRaw(appliedStateKey(o.group));
    const state = raw === undefined ? EMPTY_APPLIED_STATE : decodeAppliedState(raw);
    o.clock.observe(state.maxCommitTs);
    return new GroupStateMachine(o, state);
  }

  /** What the engine has confirmed applied. */
  get applied(): AppliedState {
    return this.confirmed;
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
      const command = e.type === 'normal' && e.data.byteLength > 0 ? this.decode(e.data) : undefined;
      if (command === undefined) {
        this.submitted = { ...this.submitted, index: e.index, term: e.term };
        let settle!: (o: ApplyOutcome) => void;
        const done = new Promise<ApplyOutcome>((resolve) => {
          settle = resolve;
        });
        riders.push(settle);
        out.push({ index: e.index, term: e.term, command: undefined, done });
        continue;
      }
      this.o.clock.observe(command.commitTs);
      const state: AppliedState = {
        index: e.index,
        term: e.term,
        maxCommitTs: maxTs(command.commitTs, this.submitted.maxCommitTs),
      };
      this.submitted = state;
      const mutations: Mutation[] = [...command.mutations, this.stateMutation(state)];
      const written = this.submit(mutations, command.commitTs, command.nowMs, state);
      const done = written.then(
        (r): ApplyOutcome => {
          if (r.ok) return { kind: 'applied', existed: r.existed.slice(0, command.mutations.length) };
          this.stats.conditionFailures++;
          return { kind: 'conditionFailed', failedIndex: r.failedIndex, currentVersion: r.currentVersion };
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
    const data = decodePartitionSnapshot(snapshot.data);
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
    const steps: Promise<unknown>[] = [this.o.engine.deleteRange(this.range.start, this.range.end)];
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
    steps.push(this.submit([this.stateMutation(state)], 1n, 0, state));
    this.stats.snapshotsInstalled++;
    const all = Promise.all(steps).then(
      () => undefined,
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
   * The snapshot data of the applied state (waits for in-flight writes first), or undefined if
   * the partition is larger than `snapshotBytesMax`. The caller must not submit more entries
   * until this returns.
   */
  async snapshotData(): Promise<{ state: AppliedState; data: Uint8Array } | undefined> {
    await this.idle();
    const state = this.confirmed;
    const rows = await dumpPartition(this.o.engine, this.range, this.o.snapshotBytesMax ?? SNAPSHOT_BYTES_MAX);
    if (rows === undefined) return undefined;
    return { state, data: encodePartitionSnapshot({ maxCommitTs: state.maxCommitTs, rows }) };
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

  private submit(mutations: Mutation[], commitTs: Timestamp, nowMs: number, state: AppliedState): Promise<WriteResult> {
    this.stats.writes++;
    const w = this.o.engine.write({ mutations, commitTs, nowMs, sync: false });
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
