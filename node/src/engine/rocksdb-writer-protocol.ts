/**
 * Messages between `RocksDbEngine` (main thread) and its writer thread. A write batch travels
 * as one `batch-wire` ArrayBuffer, transferred (not cloned; see `batch-wire.ts` and ADR 0004).
 * Other values are structured-cloned (Buffers arrive as plain Uint8Arrays).
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
}

export type WriterRequest =
  /** `batch` is `encodeBatch(...)` output, transferred. */
  | { readonly t: 'write'; readonly id: number; readonly batch: ArrayBuffer }
  /** `load` is `encodeLoad(...)` output (bulk-load.ts), transferred; written alone, unsynced. */
  | { readonly t: 'load'; readonly id: number; readonly load: ArrayBuffer }
  /** Removes hashes [startHash, endHash) (endHash up to HASH_SPACE_END) from the data and latest spaces. */
  | { readonly t: 'deleteRange'; readonly id: number; readonly startHash: bigint; readonly endHash: bigint }
  | { readonly t: 'gc'; readonly id: number; readonly watermark: Timestamp; readonly nowMs: number }
  | { readonly t: 'stop'; readonly id: number };

/** What the engine posts: one request, or several made in one run of the main thread, in order (transfers of all). */
export type WriterMessage = WriterRequest | { readonly t: 'batch'; readonly reqs: readonly WriterRequest[] };

export interface WireError {
  readonly code: string;
  readonly message: string;
}

export type WriterAnswer =
  | { readonly id: number; readonly ok: true; readonly result: WriteResult | number | undefined }
  | { readonly id: number; readonly ok: false; readonly error: WireError };

export type WriterEvent =
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
