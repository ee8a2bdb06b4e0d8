/**
 * The staging area of streamed snapshots on the receiving node (ADR 0008 §9): chunks of encoded
 * rows (`partition-snapshot.ts`) kept as they arrive, invisible to reads, until the group's
 * state machine installs a complete staged snapshot (`snapshot-install.ts`). A snapshot is
 * identified by (group, index, term). The contract, whatever holds the bytes:
 *
 * - `stage` keeps chunk `seq` (0, 1, 2, ... in order), unsynced;
 * - `complete` makes every chunk staged before it durable, then marks the snapshot complete,
 *   durably: only a complete snapshot has `totals` and can be read back (`chunks`);
 * - `clear` deletes staged snapshots (complete or not), `ids` lists them.
 *
 * Two implementations: `EngineSnapshotStaging` (`snapshot-staging-engine.ts`: raw engine rows, for
 * the memory engine and in-process tests) and `FileSnapshotStaging` (`snapshot-staging-files.ts`: one file per
 * snapshot, what nodes on RocksDB use).
 */
import type { Index, Term } from '../raft/types.ts';

export interface StagedSnapshotId {
  readonly index: Index;
  readonly term: Term;
}

export interface StagedTotals {
  readonly chunks: number;
  readonly rows: number;
  readonly bytes: number;
}

/** Which staged snapshots of a group `clear` deletes: every one, or only `only`, or those at or below index `upTo`; never `keep`. */
export interface StagingSelection {
  readonly only?: StagedSnapshotId;
  readonly keep?: StagedSnapshotId;
  readonly upTo?: number;
}

export interface SnapshotStaging {
  /** Keeps chunk `seq` of snapshot `id` (0, 1, 2, ... in order; unsynced). Calls for one snapshot may overlap: they land in call order. */
  stage(group: number, id: StagedSnapshotId, seq: number, rows: Buffer): Promise<void>;
  /** Makes the chunks staged before it durable, then marks snapshot `id` complete, durably. */
  complete(group: number, id: StagedSnapshotId, t: StagedTotals): Promise<void>;
  /** The totals of a completely staged snapshot, or undefined if it is not (completely) staged. */
  totals(group: number, id: StagedSnapshotId): Promise<StagedTotals | undefined>;
  /** The chunks of a complete snapshot, in order. */
  chunks(group: number, id: StagedSnapshotId, chunks: number): AsyncGenerator<Buffer>;
  /** Deletes the selected staged snapshots of `group` (unsynced: a leftover found later is deleted again); returns how many items (rows or files) went. */
  clear(group: number, sel?: StagingSelection): Promise<number>;
  /** Ids of the snapshots of `group` with anything staged (complete or not), by index then term. */
  ids(group: number): Promise<StagedSnapshotId[]>;
  /** Lets go of what transfers in progress hold open (their staging stays, incomplete). */
  close(): Promise<void>;
}

export function selects(sel: StagingSelection, id: StagedSnapshotId): boolean {
  if (sel.only !== undefined && (sel.only.index !== id.index || sel.only.term !== id.term)) return false;
  if (sel.keep !== undefined && sel.keep.index === id.index && sel.keep.term === id.term) return false;
  return sel.upTo === undefined || id.index <= sel.upTo;
}
