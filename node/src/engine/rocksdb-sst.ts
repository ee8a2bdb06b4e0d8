/**
 * KeyVa's native additions to the RocksDB binding (`node/native/rocksdb/binding.patch`, built by
 * `scripts/rocksdb-native.sh`; ADR 0013): a partition's rows at an MVCC timestamp exported as
 * SST files (data rows only: the receiver derives the latest rows, which repeat every value),
 * the latest rows derived from an exported data file, and SST files checked (readable, block
 * checksums intact, every key in its bounds) and ingested. Absent from the published binding:
 * `sstNative()` is then undefined and snapshots stream as rows. All the calls are synchronous
 * and run on the engine's dump thread (`rocksdb-dump-worker.ts`), never on the main thread.
 */
import { type NativeBinding, nativeBinding } from './rocksdb-binding.ts';

/** A raw key range copied into a snapshot: rows whose big-endian u64 at `u64Offset` is at most the read timestamp. */
export interface RawExportRange {
  readonly gte: Buffer;
  readonly lt: Buffer;
  readonly u64Offset: number;
}

export interface SstExportArgs {
  /** Latest-space bounds of the hash range. */
  readonly latestGte: Buffer;
  readonly latestLt: Buffer;
  readonly readTs: bigint;
  readonly dataPath: string;
  readonly raw: RawExportRange | undefined;
  readonly rawPath: string;
}

export interface SstExportCounts {
  /** Keys exported (one data row each). */
  readonly rows: number;
  readonly rawRows: number;
  /** Key and value bytes of the data rows (what a row stream would have carried, about). */
  readonly keyValueBytes: number;
  /** Bytes of the files written. */
  readonly fileBytes: number;
}

/** A file to ingest and the key range every one of its keys must lie in. */
export interface SstIngestFile {
  readonly path: string;
  readonly gte: Buffer;
  readonly lt: Buffer;
}

export interface SstNative {
  exportPartition(handle: bigint, a: SstExportArgs): SstExportCounts;
  /** Writes the latest rows of exported data file `dataPath` to `latestPath` (none: no file); returns how many. */
  deriveLatest(handle: bigint, dataPath: string, latestPath: string): number;
  /** Throws unless every file is intact with all its keys in its bounds; changes nothing. */
  check(handle: bigint, files: readonly SstIngestFile[]): void;
  /** The same checks, then one atomic ingestion (the files are moved in). */
  ingest(handle: bigint, files: readonly SstIngestFile[]): void;
}

let loaded: SstNative | null | undefined;

/** The native SST calls, or undefined when the loaded binding is the published one. */
export function sstNative(): SstNative | undefined {
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

function load(): SstNative | null {
  const b = nativeBinding();
  const exportPartition = b.keyva_export_partition;
  const deriveLatest = b.keyva_derive_latest;
  const check = b.keyva_check_sst;
  const ingest = b.keyva_ingest_sst;
  if (exportPartition === undefined || deriveLatest === undefined || check === undefined || ingest === undefined) return null;
  const withFiles = (call: NonNullable<NativeBinding['keyva_ingest_sst']>) => (handle: bigint, files: readonly SstIngestFile[]) =>
    call(
      b.db_init(handle),
      files.map((f) => f.path),
      files.map((f) => f.gte),
      files.map((f) => f.lt),
    );
  return {
    exportPartition(handle, a) {
      const none = Buffer.alloc(0);
      const [rows, rawRows, keyValueBytes, fileBytes] = exportPartition(
        b.db_init(handle),
        a.latestGte,
        a.latestLt,
        a.readTs,
        a.dataPath,
        a.raw?.gte ?? none,
        a.raw?.lt ?? none,
        a.raw?.u64Offset ?? 0,
        a.rawPath,
      );
      return { rows: rows ?? 0, rawRows: rawRows ?? 0, keyValueBytes: keyValueBytes ?? 0, fileBytes: fileBytes ?? 0 };
    },
    deriveLatest: (handle, dataPath, latestPath) => deriveLatest(b.db_init(handle), dataPath, latestPath),
    check: withFiles(check),
    ingest: withFiles(ingest),
  };
}
