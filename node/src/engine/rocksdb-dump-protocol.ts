/**
 * Messages between the RocksDB engine and its dump thread (`rocksdb-dump-worker.ts`), which
 * reads whole hash ranges at an MVCC timestamp (streamed snapshots) off the main thread.
 * Credit-based: the thread produces a dump's next chunk only while it holds credit for it, so at
 * most `credit` chunks per dump wait unread. The thread also runs the native SST calls
 * (`rocksdb-sst.ts`): a partition exported as SST files, SST files ingested (ADR 0013); Buffers
 * arrive as Uint8Arrays (structured clone).
 */
import type { SstExportArgs, SstExportCounts, SstIngestFile } from './rocksdb-sst.ts';
import type { WireError } from './rocksdb-writer-protocol.ts';
import type { Timestamp } from './types.ts';

export interface DumpInit {
  /** Native handle of the main thread's database (shared, never closed by the dump thread). */
  readonly handle: bigint;
  /** The thread's nice value (`thread-priority.ts`): it reads, exports and ingests for no waiting client. */
  readonly nice: number;
}

export type DumpRequest =
  | {
      readonly t: 'start';
      readonly id: number;
      /** Data-space bounds `[lo, hi)` of the hash range (`hashRangeBounds`). */
      readonly lo: Uint8Array;
      readonly hi: Uint8Array;
      readonly readTs: Timestamp;
      /** Row bytes per chunk, at most (a single larger row goes alone). */
      readonly chunkBytes: number;
      /** Chunks it may produce before more credit arrives. */
      readonly credit: number;
    }
  | { readonly t: 'credit'; readonly id: number; readonly n: number }
  | { readonly t: 'cancel'; readonly id: number }
  | { readonly t: 'exportSst'; readonly id: number; readonly args: SstExportArgs }
  | { readonly t: 'deriveLatest'; readonly id: number; readonly dataPath: string; readonly latestPath: string }
  /** `checkOnly`: the checks of an ingestion, nothing ingested. */
  | { readonly t: 'ingestSst'; readonly id: number; readonly files: readonly SstIngestFile[]; readonly checkOnly: boolean };

export type DumpEvent =
  | { readonly t: 'ready' }
  | { readonly t: 'fatal'; readonly error: WireError }
  /** Encoded rows (`row-codec.ts`): the first `length` bytes of `data` (transferred). */
  | { readonly t: 'chunk'; readonly id: number; readonly data: ArrayBuffer; readonly length: number; readonly rows: number }
  | { readonly t: 'end'; readonly id: number }
  | { readonly t: 'exported'; readonly id: number; readonly counts: SstExportCounts }
  | { readonly t: 'ingested'; readonly id: number }
  | { readonly t: 'derived'; readonly id: number; readonly rows: number }
  | { readonly t: 'error'; readonly id: number; readonly error: WireError };
