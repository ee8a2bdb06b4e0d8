/**
 * In-memory `RaftStorage` for tests and the simulator. Its content stands for what is durable:
 * in the simulator a crash keeps exactly this object and loses the `RaftNode`.
 */
import { type RaftStorage, RaftStorageRangeError } from './storage.ts';
import {
  BOOTSTRAP_INDEX,
  BOOTSTRAP_TERM,
  bootstrapSnapshot,
  type ConfState,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  type Entry,
  entrySize,
  type HardState,
  type Index,
  type Snapshot,
  type SnapshotMetadata,
  type Term,
} from './types.ts';

export interface MemoryRaftStorageInit {
  readonly hardState?: HardState;
  readonly snapshot?: Snapshot;
  /** Entries following the snapshot, contiguous from snapshot index + 1. */
  readonly entries?: readonly Entry[];
}

export class MemoryRaftStorage implements RaftStorage {
  private hs: HardState;
  private snap: Snapshot;
  /** entries[i] has index snap.metadata.index + 1 + i. */
  private ents: Entry[];

  /** An empty replica (no snapshot, no log), e.g. a learner about to be added. */
  constructor(init: MemoryRaftStorageInit = {}) {
    this.hs = init.hardState ?? EMPTY_HARD_STATE;
    this.snap = init.snapshot ?? { metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: new Uint8Array(0) };
    this.ents = [...(init.entries ?? [])];
    this.ents.forEach((e, i) => {
      if (e.index !== this.snap.metadata.index + 1 + i) throw new RaftStorageRangeError(`entry ${e.index} out of sequence at position ${i}`);
    });
  }

  /** A founding member of a new group with the given membership (see `bootstrapSnapshot`). */
  static bootstrap(confState: ConfState, data?: Uint8Array): MemoryRaftStorage {
    return new MemoryRaftStorage({
      hardState: { term: BOOTSTRAP_TERM, vote: undefined, commit: BOOTSTRAP_INDEX },
      snapshot: bootstrapSnapshot(confState, data),
    });
  }

  hardState(): HardState {
    return this.hs;
  }

  snapshotMetadata(): SnapshotMetadata {
    return this.snap.metadata;
  }

  snapshot(): Snapshot | undefined {
    return this.snap;
  }

  firstIndex(): Index {
    return this.snap.metadata.index + 1;
  }

  lastIndex(): Index {
    return this.snap.metadata.index + this.ents.length;
  }

  term(index: Index): Term | undefined {
    const offset = this.snap.metadata.index;
    if (index === offset) return this.snap.metadata.term;
    if (index < offset || index > this.lastIndex()) return undefined;
    return this.ents[index - offset - 1]?.term;
  }

  entries(lo: Index, hi: Index, countMax: number, bytesMax: number): Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1 || lo > hi) {
      throw new RaftStorageRangeError(`entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    }
    const out: Entry[] = [];
    let bytes = 0;
    const offset = this.snap.metadata.index + 1;
    for (let i = lo; i < hi && out.length < countMax; i++) {
      const e = this.ents[i - offset];
      if (e === undefined) break;
      bytes += entrySize(e);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  // --- writes: done by the driver, never by the core ---

  setHardState(hs: HardState): void {
    this.hs = hs;
  }

  /** Appends contiguous entries, replacing any existing entries from the first one's index on. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const snapIndex = this.snap.metadata.index;
    // Entries already covered by the snapshot are committed and identical: skip them.
    const fresh = first.index <= snapIndex ? entries.slice(snapIndex + 1 - first.index) : entries;
    const head = fresh[0];
    if (head === undefined) return;
    if (head.index > this.lastIndex() + 1) throw new RaftStorageRangeError(`append at ${head.index} leaves a gap after ${this.lastIndex()}`);
    this.ents.length = head.index - snapIndex - 1;
    for (const e of fresh) this.ents.push(e);
  }

  /** Replaces the whole log with `snapshot` (a follower catching up from its leader). */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.snap.metadata.index) {
      throw new RaftStorageRangeError(`snapshot ${snapshot.metadata.index} is not newer than ${this.snap.metadata.index}`);
    }
    this.snap = snapshot;
    this.ents = [];
  }

  /**
   * Takes a snapshot at `index` (which the state machine has applied: `data` is its state there,
   * `confState` the membership there) and drops the entries it covers.
   */
  compact(index: Index, confState: ConfState, data: Uint8Array): void {
    const term = this.term(index);
    if (index <= this.snap.metadata.index || term === undefined) {
      throw new RaftStorageRangeError(`cannot compact to ${index}: log is [${this.firstIndex()}, ${this.lastIndex()}]`);
    }
    if (index > this.hs.commit) throw new RaftStorageRangeError(`cannot compact to ${index}: only ${this.hs.commit} is committed`);
    this.ents = this.ents.slice(index - this.snap.metadata.index);
    this.snap = { metadata: { index, term, confState }, data };
  }

  /** Everything stored, for tests and fault injection. */
  dump(): { hardState: HardState; snapshot: Snapshot; entries: readonly Entry[] } {
    return { hardState: this.hs, snapshot: this.snap, entries: [...this.ents] };
  }
}
