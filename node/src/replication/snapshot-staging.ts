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
 * snapshot, what nodes on RocksDB use). File staging also holds snapshots that arrive as SST
 * files (`sst`, ADR 0013): complete, they have `totals` with the files listed, and no chunks.
 */
import type { SstKind } from '../engine/types.ts';
import type { Index, Term } from '../raft/types.ts';

export interface StagedSnapshotId {
  readonly index: Index;
  readonly term: Term;
}

export interface StagedTotals {
  readonly chunks: number;
  readonly rows: number;
  readonly bytes: number;
  /** A snapshot staged as SST files: the files (then `chunks` is 0, `rows` counts keys and `bytes` file bytes). */
  readonly sst?: readonly StagedSstFile[];
}

/** The code of an SST file's kind on the wire (`SstFileSummary.kind`) and in staging trailers. */
export const SST_KIND_CODE: Readonly<Record<SstKind, number>> = { data: 1, raw: 2 };

/** The kind of code `c`, or undefined. */
export function sstKindOfCode(c: number): SstKind | undefined {
  return c === 1 ? 'data' : c === 2 ? 'raw' : undefined;
}

/** One file of a snapshot staged as SST files. */
export interface StagedSstFile {
  readonly kind: SstKind;
  readonly bytes: number;
  readonly crc32: number;
}

/** Staging of snapshots that arrive as SST files (ADR 0013). */
export interface SstStaging {
  /** The directory the files are staged in (the snapshot socket's thread stages there with a `FileSnapshotStaging` of its own). */
  readonly dir: string;
  /** Appends `bytes` to staged file `kind` of snapshot `id` (`first`: starts it anew). Calls for one snapshot land in call order. */
  stageSst(group: number, id: StagedSnapshotId, kind: SstKind, bytes: Buffer, first: boolean): Promise<void>;
  /**
   * Checks the staged files against `files` (each one listed, sizes and CRC-32s equal), makes
   * them durable, then marks snapshot `id` complete, durably (its `totals` list the files).
   */
  completeSst(group: number, id: StagedSnapshotId, files: readonly StagedSstFile[], t: { readonly rows: number; readonly bytes: number }): Promise<void>;
  /** Where staged file `kind` of snapshot `id` is. Never modify it: hard-link it to hand it on. */
  sstPath(group: number, id: StagedSnapshotId, kind: SstKind): string;
  /** A fresh path base for SST files this node exports to send (`<base>.<d|r>.sst`; leftovers go at `sweep`). */
  exportBase(group: number, id: StagedSnapshotId): Promise<string>;
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
  /** Present when snapshots can be staged as SST files. */
  readonly sst?: SstStaging;
}

export function selects(sel: StagingSelection, id: StagedSnapshotId): boolean {
  if (sel.only !== undefined && (sel.only.index !== id.index || sel.only.term !== id.term)) return false;
  if (sel.keep !== undefined && sel.keep.index === id.index && sel.keep.term === id.term) return false;
  return sel.upTo === undefined || id.index <= sel.upTo;
}
