/**
 * The core's read-only view of durable state: what the driver has persisted from earlier
 * `Ready`s. The core never writes through it; the driver writes (hard state, entries, snapshots,
 * compaction) and the core reads. Reads are synchronous: a real driver serves them from a cache
 * of the on-disk log.
 *
 * The log is `[firstIndex(), lastIndex()]`; the entry just before it is covered by the latest
 * snapshot, whose metadata is always known (its data may not be ready yet).
 */
import type { Entry, HardState, Index, Snapshot, SnapshotMetadata, Term } from './types.ts';

export interface RaftStorage {
  hardState(): HardState;
  /** Metadata of the latest snapshot: index = firstIndex() - 1. Index 0 = none (empty replica). */
  snapshotMetadata(): SnapshotMetadata;
  /** The latest snapshot with its data, or undefined if it is temporarily unavailable. */
  snapshot(): Snapshot | undefined;
  firstIndex(): Index;
  lastIndex(): Index;
  /** Term of the entry at `index`, for index in [firstIndex() - 1, lastIndex()]; else undefined. */
  term(index: Index): Term | undefined;
  /**
   * Entries in [lo, hi) (lo >= firstIndex(), hi <= lastIndex() + 1), at most `countMax` of them
   * and at most `bytesMax` of data, but always at least one if the range is not empty.
   */
  entries(lo: Index, hi: Index, countMax: number, bytesMax: number): Entry[];
}

/** Thrown when the core asks storage for something outside what it holds: a bug, never a fault. */
export class RaftStorageRangeError extends RangeError {}
