/**
 * The durable Raft log of one group on the node's storage engine. Reads (what the core asks
 * through `RaftStorage`) are served synchronously from an in-memory copy of the log since the
 * last snapshot; writes are staged as raw engine mutations so the driver can group-commit the
 * `Ready`s of many groups (and the applied data) in one synced engine write, then `commit` them
 * to the in-memory copy before calling `advance`.
 */

import type { Mutation, StorageEngine } from '../engine/types.ts';
import { MemoryRaftStorage } from '../raft/memory-storage.ts';
import type { RaftStorage } from '../raft/storage.ts';
import {
  BOOTSTRAP_INDEX,
  BOOTSTRAP_TERM,
  bootstrapSnapshot,
  type ConfState,
  type Entry,
  type HardState,
  type Index,
  type Snapshot,
  type SnapshotMetadata,
  type Term,
} from '../raft/types.ts';
import { decodeEntry, decodeHardState, decodeSnapshotMetadata, encodeEntry, encodeHardState, encodeSnapshotMetadata } from './raft-codec.ts';
import { entryKey, entryRange, type GroupId, hardStateKey, snapshotDataKey, snapshotMetaKey } from './raft-keys.ts';

/** Entries read per engine call while loading a log. */
export const LOAD_PAGE_ROWS_MAX = 1024;

export interface StagedWrite {
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | undefined;
}

/**
 * What makes an empty log a founding member of a new group with membership `confState`: the
 * durable equivalent of `MemoryRaftStorage.bootstrap` (bootstrap snapshot at index 1, term 1,
 * commit 1). Stage it, write it synced, commit it. Every founding member must use the same
 * `confState` (the snapshot is then identical everywhere).
 */
export function bootstrapWrite(confState: ConfState, data?: Uint8Array): StagedWrite {
  return {
    snapshot: bootstrapSnapshot(confState, data),
    entries: [],
    hardState: { term: BOOTSTRAP_TERM, vote: undefined, commit: BOOTSTRAP_INDEX },
  };
}

export class DurableRaftLog implements RaftStorage {
  readonly group: GroupId;
  private readonly cache: MemoryRaftStorage;

  private constructor(group: GroupId, cache: MemoryRaftStorage) {
    this.group = group;
    this.cache = cache;
  }

  /** Loads a group's log from the engine (an empty group if nothing was ever stored). */
  static async open(engine: StorageEngine, group: GroupId): Promise<DurableRaftLog> {
    const hs = await engine.getRaw(hardStateKey(group));
    const meta = await engine.getRaw(snapshotMetaKey(group));
    const data = await engine.getRaw(snapshotDataKey(group));
    const entries: Entry[] = [];
    let { lo } = entryRange(group);
    const { hi } = entryRange(group);
    for (;;) {
      const rows = await engine.scanRaw(lo, hi, LOAD_PAGE_ROWS_MAX);
      if (rows.length === 0) break;
      for (const r of rows) entries.push(decodeEntry(r.value));
      lo = Buffer.concat([(rows[rows.length - 1] as { key: Buffer }).key, Buffer.from([0])]);
    }
    const cache = new MemoryRaftStorage();
    if (meta) {
      const m = decodeSnapshotMetadata(meta);
      if (m.index > 0) cache.applySnapshot({ metadata: m, data: new Uint8Array(data ?? Buffer.alloc(0)) });
    }
    const first = cache.firstIndex();
    const live = entries.filter((e) => e.index >= first);
    if (live.length > 0) cache.append(live);
    if (hs) cache.setHardState(decodeHardState(hs));
    return new DurableRaftLog(group, cache);
  }

  /** Nothing was ever stored: no snapshot, no entries, no hard state (a replica in no group yet). */
  isEmpty(): boolean {
    const hs = this.cache.hardState();
    return this.cache.snapshotMetadata().index === 0 && this.cache.lastIndex() === 0 && hs.term === 0 && hs.vote === undefined && hs.commit === 0;
  }

  // --- RaftStorage: reads from the in-memory copy ---
  hardState(): HardState {
    return this.cache.hardState();
  }
  snapshotMetadata(): SnapshotMetadata {
    return this.cache.snapshotMetadata();
  }
  snapshot(): Snapshot | undefined {
    return this.cache.snapshot();
  }
  firstIndex(): Index {
    return this.cache.firstIndex();
  }
  lastIndex(): Index {
    return this.cache.lastIndex();
  }
  term(index: Index): Term | undefined {
    return this.cache.term(index);
  }
  entries(lo: Index, hi: Index, countMax: number, bytesMax: number): Entry[] {
    return this.cache.entries(lo, hi, countMax, bytesMax);
  }

  /**
   * The engine mutations that make a Ready's snapshot, entries and hard state durable. Apply
   * them in one synced engine write, then call `commit` with the same Ready.
   */
  stage(w: StagedWrite): Mutation[] {
    const out: Mutation[] = [];
    let last = this.cache.lastIndex();
    if (w.snapshot) {
      out.push({ type: 'rawPut', key: snapshotMetaKey(this.group), value: encodeSnapshotMetadata(w.snapshot.metadata) });
      out.push({ type: 'rawPut', key: snapshotDataKey(this.group), value: Buffer.from(w.snapshot.data) });
      for (let i = this.cache.firstIndex(); i <= last; i++) out.push({ type: 'rawDelete', key: entryKey(this.group, i) });
      last = w.snapshot.metadata.index;
    }
    const snapIndex = w.snapshot?.metadata.index ?? this.cache.snapshotMetadata().index;
    const fresh = w.entries.filter((e) => e.index > snapIndex);
    if (fresh.length > 0) {
      for (const e of fresh) out.push({ type: 'rawPut', key: entryKey(this.group, e.index), value: encodeEntry(e) });
      const newLast = (fresh[fresh.length - 1] as Entry).index;
      // A conflicting suffix beyond the new last entry is gone for good.
      for (let i = newLast + 1; i <= last; i++) out.push({ type: 'rawDelete', key: entryKey(this.group, i) });
    }
    if (w.hardState) out.push({ type: 'rawPut', key: hardStateKey(this.group), value: encodeHardState(w.hardState) });
    return out;
  }

  /** Records in memory what `stage` made durable. */
  commit(w: StagedWrite): void {
    if (w.snapshot) this.cache.applySnapshot(w.snapshot);
    if (w.entries.length > 0) this.cache.append(w.entries);
    if (w.hardState) this.cache.setHardState(w.hardState);
  }

  /**
   * Mutations that compact the log up to `index` (applied by the state machine), recording a
   * snapshot there whose data is `data`; then `commitCompact` with the same arguments.
   */
  stageCompact(index: Index, confState: ConfState, data: Uint8Array): Mutation[] {
    const term = this.cache.term(index);
    if (term === undefined) return [];
    const out: Mutation[] = [
      { type: 'rawPut', key: snapshotMetaKey(this.group), value: encodeSnapshotMetadata({ index, term, confState }) },
      { type: 'rawPut', key: snapshotDataKey(this.group), value: Buffer.from(data) },
    ];
    for (let i = this.cache.firstIndex(); i <= index; i++) out.push({ type: 'rawDelete', key: entryKey(this.group, i) });
    return out;
  }

  commitCompact(index: Index, confState: ConfState, data: Uint8Array): void {
    this.cache.compact(index, confState, data);
  }
}
