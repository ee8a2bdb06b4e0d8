/**
 * Whole SST files of a deleted hash range dropped without a compaction (ADR 0017):
 * `keyva_delete_files_in_range`, KeyVa's addition to the RocksDB binding
 * (`node/native/rocksdb/binding.patch`), runs `rocksdb::DeleteFilesInRange`. The files of levels 1
 * and below whose keys all lie in the range leave the database in one MANIFEST write; what
 * straddles the range's ends, and L0, stays for the range tombstone and compaction to clear.
 * Call only after the range delete is durable (the writer's synced write): the rows in those
 * files are deleted already, so dropping them changes no read. Absent from the published
 * binding: `fileDropper` is then undefined and compaction alone reclaims the space.
 */
import { nativeBinding } from './rocksdb-binding.ts';

export interface FilesDropped {
  /** SST files dropped, and their bytes on disk. */
  readonly files: number;
  readonly bytes: number;
  /** Files of levels 1 and below that still overlap the range (straddling an end, or held by a compaction). */
  readonly overlapping: number;
}

/** Drops the whole SST files inside `[gte, lt)`; throws what RocksDB reports. */
export type DropFilesInRange = (gte: Buffer, lt: Buffer) => FilesDropped;

/** The file drop on the database behind `handle`, or undefined with the published binding. */
export function fileDropper(handle: bigint): DropFilesInRange | undefined {
  const b = nativeBinding();
  const drop = b.keyva_delete_files_in_range;
  if (drop === undefined) return undefined;
  const db = b.db_init(handle);
  return (gte, lt) => {
    const [files, bytes, overlapping] = drop(db, gte, lt);
    return { files: files ?? 0, bytes: bytes ?? 0, overlapping: overlapping ?? 0 };
  };
}
