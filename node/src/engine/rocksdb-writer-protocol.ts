/**
 * Messages between `RocksDbEngine` (main thread) and its writer thread. Write requests and the
 * answers of a group commit travel packed (`writer-wire.ts`): one transferred ArrayBuffer per
 * hand-off, each batch in `batch-wire` form. Other values are structured-cloned (Buffers arrive
 * as plain Uint8Arrays).
 */
import { isErrorCode, KeyVaError } from '@keyva/proto/errors';
import type { Timestamp, WriteResult } from './types.ts';

/** Limits of one group commit (one RocksDB write): batches and approximate bytes. */
export interface GroupLimits {
  readonly groupBatchesMax: number;
  readonly groupBytesMax: number;
  /** Rows read per GC chunk (between chunks, queued writes run). */
  readonly gcChunkRowsMax: number;
}

export interface WriterInit {
  readonly handle: bigint;
  readonly limits: GroupLimits;
  /** Use the binding's packed write when it has one (`rocksdb-packed-write.ts`). */
  readonly packedWrites: boolean;
}

export type WriterRequest =
  /** `batch` is `encodeBatch(...)` output (a view into a packed hand-off: `writer-wire.ts`). */
  | { readonly t: 'write'; readonly id: number; readonly batch: Uint8Array }
  /** `load` is `encodeLoad(...)` output (bulk-load.ts), transferred; written alone, unsynced. */
  | { readonly t: 'load'; readonly id: number; readonly load: ArrayBuffer }
  /** Removes hashes [startHash, endHash) (endHash up to HASH_SPACE_END) from the data and latest spaces. */
  | { readonly t: 'deleteRange'; readonly id: number; readonly startHash: bigint; readonly endHash: bigint }
  | { readonly t: 'gc'; readonly id: number; readonly watermark: Timestamp; readonly nowMs: number }
  | { readonly t: 'stop'; readonly id: number };

/** What the engine posts: a request other than a write, or the packed writes (`packWrites`) of one run of the main thread. */
export type WriterMessage = Exclude<WriterRequest, { t: 'write' }> | ArrayBuffer;

export interface WireError {
  readonly code: string;
  readonly message: string;
}

export type WriterAnswer =
  | { readonly id: number; readonly ok: true; readonly result: WriteResult | number | undefined }
  | { readonly id: number; readonly ok: false; readonly error: WireError };

/** What the writer posts; the answers of a group commit travel packed (`packAnswers`) when they can. */
export type WriterEvent =
  | ArrayBuffer
  | { readonly t: 'ready' }
  | {
      readonly t: 'answers';
      readonly answers: readonly WriterAnswer[];
      /** Write batches in the group commit that produced these answers (0 for other work). */
      readonly groupBatches: number;
      /** Whether that group made a RocksDB write call. */
      readonly wrote: boolean;
    }
  | { readonly t: 'fatal'; readonly error: WireError };

export function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function toWireError(e: unknown): WireError {
  const code = (e as { code?: unknown })?.code;
  const message = (e as Error)?.message ?? String(e);
  return { code: typeof code === 'string' && isErrorCode(code) ? code : 'STORAGE_ERROR', message };
}

export function fromWireError(w: WireError): KeyVaError {
  return new KeyVaError(isErrorCode(w.code) ? w.code : 'STORAGE_ERROR', w.message);
}
