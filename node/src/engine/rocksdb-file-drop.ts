/**
 * Whole SST files of a deleted hash range dropped without a compaction (ADR 0017):
 * `keyva_delete_files_in_ranges`, KeyVa's addition to the RocksDB binding
 * (`node/native/rocksdb/binding.patch`), runs `rocksdb::DeleteFilesInRanges`. The files of levels
 * 1 and below whose keys all lie in one of the ranges leave the database in one MANIFEST write;
 * what straddles a range's ends, and L0, stays for the range tombstones and compaction to clear.
 * Call only after the range delete is durable (the writer's synced write): the rows in those
 * files are deleted already, so dropping them changes no read. Absent from the published
 * binding: `fileDropper` is then undefined and compaction alone reclaims the space.
 */
import { nativeBinding } from './rocksdb-binding.ts';

export interface FilesDropped {
  /** SST files dropped, and their bytes on disk. */
  readonly files: number;
  readonly bytes: number;
  /** Files of levels 1 and below that still overlap a range (straddling an end, or held by a compaction). */
  readonly overlapping: number;
}

/** Drops the whole SST files inside any of the ranges `[gte, lt)`; throws what RocksDB reports. */
export type DropFilesInRanges = (ranges: readonly { readonly gte: Buffer; readonly lt: Buffer }[]) => FilesDropped;

/** The file drop on the database behind `handle`, or undefined with the published binding. */
export function fileDropper(handle: bigint): DropFilesInRanges | undefined {
  const b = nativeBinding();
  const drop = b.keyva_delete_files_in_ranges;
  if (drop === undefined) return undefined;
  const db = b.db_init(handle);
  return (ranges) => {
    const [files, bytes, overlapping] = drop(
      db,
      ranges.map((r) => r.gte),
      ranges.map((r) => r.lt),
    );
    return { files: files ?? 0, bytes: bytes ?? 0, overlapping: overlapping ?? 0 };
  };
}
