/**
 * The SST-file form of a snapshot transfer after its header (ADR 0013), as both of its receivers
 * walk it: the `SendSnapshotFiles` call's on the event loop (`snapshot-receiver.ts`) and the
 * snapshot socket's thread (`snapshot-socket-worker.ts`). Pieces come file by file, in kind
 * order; each is appended to its staged file (`SstStaging`); the `done` frame must list exactly
 * the files received, with the sizes received (their CRC-32s are checked by the staging).
 */
import type { SnapshotFrameOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { type SstStaging, type StagedSnapshotId, type StagedSstFile, sstKindOfCode } from './snapshot-staging.ts';

/** A malformed transfer (answered INVALID_ARGUMENT). */
export function invalidSnapshot(what: string): KeyVaError {
  return new KeyVaError('INVALID_ARGUMENT', `snapshot stream: ${what}`);
}

/** gRPC status codes, numeric: the socket's thread loads no grpc-js. */
export const GRPC_INVALID_ARGUMENT = 3;
export const GRPC_UNAVAILABLE = 14;

/**
 * The gRPC status a transfer that failed with `err` is answered with: INVALID_ARGUMENT for
 * malformed input, else UNAVAILABLE (the leader retries).
 */
export function snapshotFailureCode(err: Error): number {
  return err instanceof KeyVaError && err.code === 'INVALID_ARGUMENT' ? GRPC_INVALID_ARGUMENT : GRPC_UNAVAILABLE;
}

export class SstPieces {
  private readonly stage: SstStaging;
  private readonly group: number;
  private readonly id: StagedSnapshotId;
  /** The kind code of the file being received (0 before the first piece). */
  private kind = 0;
  /** Bytes received per file kind code. */
  private readonly sizes = new Map<number, number>();
  /** Bytes received in all files. */
  bytes = 0;

  constructor(stage: SstStaging, group: number, id: StagedSnapshotId) {
    this.stage = stage;
    this.group = group;
    this.id = id;
  }

  /** Stages the piece frame `f` carries (throws INVALID_ARGUMENT if it is out of order); settles once written. */
  piece(f: SnapshotFrameOut): Promise<void> {
    const kind = sstKindOfCode(f.sstKind);
    if (kind === undefined) throw invalidSnapshot(`unknown SST file kind ${f.sstKind}`);
    if (f.sstKind < this.kind) throw invalidSnapshot(`SST file ${kind} after a later one`);
    const first = f.sstKind !== this.kind;
    this.kind = f.sstKind;
    const write = this.stage.stageSst(this.group, this.id, kind, f.sstData, first);
    this.sizes.set(f.sstKind, (this.sizes.get(f.sstKind) ?? 0) + f.sstData.length);
    this.bytes += f.sstData.length;
    return write;
  }

  /** The files the `done` frame `f` lists, checked against the bytes received (throws INVALID_ARGUMENT if they differ). */
  files(f: SnapshotFrameOut): StagedSstFile[] {
    if (Number(f.totalBytes) !== this.bytes) throw invalidSnapshot(`totals ${f.totalBytes} bytes, received ${this.bytes}`);
    const files: StagedSstFile[] = [];
    for (const s of f.sstFiles) {
      const kind = sstKindOfCode(s.kind);
      if (kind === undefined) throw invalidSnapshot(`unknown SST file kind ${s.kind}`);
      if (Number(s.bytes) !== (this.sizes.get(s.kind) ?? -1))
        throw invalidSnapshot(`${kind} file: ${s.bytes} bytes listed, ${this.sizes.get(s.kind) ?? 0} received`);
      files.push({ kind, bytes: Number(s.bytes), crc32: s.crc32 });
    }
    if (files.length !== this.sizes.size) throw invalidSnapshot(`${this.sizes.size} SST files received, ${files.length} listed`);
    return files;
  }
}
