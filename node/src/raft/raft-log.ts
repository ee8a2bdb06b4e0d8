/**
 * The replica's log: the durable part (read through `RaftStorage`) plus the unstable tail that
 * the core has accepted but the driver has not yet persisted, and the commit and applied
 * cursors. Invariant: applied <= committed <= lastIndex, and firstIndex - 1 <= applied.
 */
import type { RaftStorage } from './storage.ts';
import { type Entry, entrySize, type Index, type Snapshot, type Term } from './types.ts';

/** Entries (and maybe a snapshot) accepted but not yet persisted. entries[i] has index offset + i. */
export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  offset: Index;

  constructor(offset: Index) {
    this.offset = offset;
  }

  /** First log index if the unstable snapshot defines it. */
  maybeFirstIndex(): Index | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  /** Last log index if the unstable part defines it. */
  maybeLastIndex(): Index | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  maybeTerm(index: Index): Term | undefined {
    if (index < this.offset) {
      return this.snapshot !== undefined && this.snapshot.metadata.index === index ? this.snapshot.metadata.term : undefined;
    }
    return this.entries[index - this.offset]?.term;
  }

  /** The driver persisted entries up to (index, term); drop them unless they were replaced since. */
  stableTo(index: Index, term: Term): void {
    if (index < this.offset || this.entries[index - this.offset]?.term !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: Index): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const first = ents[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      this.entries.push(...ents);
    } else if (after <= this.offset) {
      // Replaces everything unstable, and (once persisted) the durable log from `after` on.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = [...this.entries.slice(0, after - this.offset), ...ents];
    }
  }
}

export class RaftLogError extends Error {}

export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: Index;
  /** Highest index handed to the state machine (applied, or being applied by the current Ready). */
  applied: Index;

  constructor(storage: RaftStorage, committed: Index, applied: Index) {
    this.storage = storage;
    this.unstable = new Unstable(storage.lastIndex() + 1);
    const snapIndex = storage.firstIndex() - 1;
    this.committed = Math.max(committed, snapIndex);
    this.applied = Math.max(applied, snapIndex);
    if (this.committed > storage.lastIndex()) throw new RaftLogError(`commit ${this.committed} beyond last index ${storage.lastIndex()}`);
    if (this.applied > this.committed) throw new RaftLogError(`applied ${this.applied} beyond commit ${this.committed}`);
  }

  firstIndex(): Index {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): Index {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term at `index` for index in [firstIndex() - 1, lastIndex()], else undefined. */
  term(index: Index): Term | undefined {
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return undefined;
    return this.unstable.maybeTerm(index) ?? this.storage.term(index);
  }

  lastTerm(): Term {
    const t = this.term(this.lastIndex());
    if (t === undefined) throw new RaftLogError(`no term for last index ${this.lastIndex()}`);
    return t;
  }

  matchTerm(index: Index, term: Term): boolean {
    const t = this.term(index);
    return t !== undefined && t === term;
  }

  /** §5.4.1: a log ending at (index, term) is at least as up-to-date as this one. */
  isUpToDate(lastIndex: Index, term: Term): boolean {
    const myTerm = this.lastTerm();
    return term > myTerm || (term === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The index of the first entry of `ents` that is missing from this log or conflicts with it
   * (same index, other term); 0 if every entry is already here. `ents` must be contiguous.
   */
  findConflict(ents: readonly Entry[]): Index {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * For fast backtracking: the largest index <= `index` whose term is <= `term`, with its term.
   * Entries in (result, index] cannot match a log whose entry at `index` has term `term`.
   * Returns term 0 when the answer falls into the compacted prefix.
   */
  findConflictByTerm(index: Index, term: Term): { index: Index; term: Term } {
    let i = Math.min(index, this.lastIndex());
    for (; i >= 0; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /**
   * §5.3 AppendEntries on a follower: if the entry at `index` has term `logTerm`, append `ents`
   * after it (dropping any conflicting suffix), advance commit to min(`committed`, last new
   * index), and return the last new index. Undefined if the log does not match at `index`.
   */
  maybeAppend(index: Index, logTerm: Term, committed: Index, ents: readonly Entry[]): Index | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      if (conflict <= this.committed) throw new RaftLogError(`entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(conflict - index - 1));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends (or overwrites from the first entry's index on) and returns the new last index. */
  append(ents: readonly Entry[]): Index {
    const first = ents[0];
    if (first === undefined) return this.lastIndex();
    if (first.index - 1 < this.committed) throw new RaftLogError(`append at ${first.index} would overwrite committed ${this.committed}`);
    if (first.index > this.lastIndex() + 1) throw new RaftLogError(`append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Entries in [lo, hi) from durable and unstable parts, bounded by count and bytes (at least one). */
  slice(lo: Index, hi: Index, countMax: number, bytesMax: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1)
      throw new RaftLogError(`slice [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    const out: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      const stable = this.storage.entries(lo, Math.min(hi, offset), countMax, bytesMax);
      out.push(...stable);
      if (stable.length < Math.min(hi, offset) - lo) return out;
    }
    let bytes = 0;
    for (const e of out) bytes += entrySize(e);
    for (let i = Math.max(lo, offset); i < hi && out.length < countMax; i++) {
      const e = this.unstable.entries[i - offset];
      if (e === undefined) break;
      bytes += entrySize(e);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  /** Entries from `index` to the end (bounded), or undefined if `index` is compacted. */
  entriesFrom(index: Index, countMax: number, bytesMax: number): Entry[] | undefined {
    if (index < this.firstIndex()) return undefined;
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, countMax, bytesMax);
  }

  /** Committed entries not yet handed to the state machine; none while a snapshot is pending. */
  nextCommittedEntries(countMax: number): Entry[] {
    if (this.unstable.snapshot !== undefined) return [];
    return this.slice(this.applied + 1, this.committed + 1, countMax, Number.POSITIVE_INFINITY);
  }

  hasNextCommittedEntries(): boolean {
    return this.unstable.snapshot === undefined && this.committed > this.applied;
  }

  commitTo(index: Index): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) {
      throw new RaftLogError(`commit ${index} beyond last index ${this.lastIndex()}: was the durable log truncated or lost?`);
    }
    this.committed = index;
  }

  appliedTo(index: Index): void {
    if (index < this.applied || index > this.committed) throw new RaftLogError(`applied ${index} outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }

  stableTo(index: Index, term: Term): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: Index): void {
    this.unstable.stableSnapTo(index);
  }

  /** The snapshot to send a lagging follower: the pending one, else the latest durable one. */
  snapshot(): Snapshot | undefined {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with a snapshot received from the leader (persisted by the next Ready). */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
