/**
 * Child process of the staging kill -9 test (`snapshot-staging.test.ts`): stages snapshot after
 * snapshot in a `FileSnapshotStaging` at argv[2] (group 1, snapshot `round + 1` / term 1,
 * `CHUNKS` chunks of `CHUNK_BYTES` each, contents from `chunkOf`), completes each, and prints
 * `ack <round>` once `complete` returned. Runs until killed. Odd rounds are staged as SST files
 * (ADR 0013) instead: the same chunks, the first half appended to a data file and the rest to a
 * raw file (`sstFilesOf`).
 */
import { crc32 } from 'node:zlib';
import type { SstKind } from '../../engine/types.ts';
import type { StagedSstFile } from '../snapshot-staging.ts';
import { FileSnapshotStaging } from '../snapshot-staging-files.ts';

export const CHUNKS = 6;
export const CHUNK_BYTES = 256 << 10;
export const GROUP = 1;

export const idOf = (round: number) => ({ index: round + 1, term: 1 });

export function chunkOf(round: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(CHUNK_BYTES);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32BE((round * 7919 + seq * 104729 + i) >>> 0, i);
  return b;
}

/** Which file chunk `seq` of an SST round goes to. */
export const sstKindOf = (seq: number): SstKind => (seq < CHUNKS / 2 ? 'data' : 'raw');

/** The files of SST round `round`, as listed at completion. */
export function sstFilesOf(round: number): StagedSstFile[] {
  return (['data', 'raw'] as const).map((kind) => {
    const bytes = Buffer.concat(Array.from({ length: CHUNKS }, (_, seq) => (sstKindOf(seq) === kind ? chunkOf(round, seq) : Buffer.alloc(0))));
    return { kind, bytes: bytes.length, crc32: crc32(bytes) };
  });
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: crash-stager.ts <dir>');
  const staging = new FileSnapshotStaging(dir);
  for (let round = 0; ; round++) {
    const id = idOf(round);
    const staged: Promise<void>[] = [];
    if (round % 2 === 1) {
      for (let seq = 0; seq < CHUNKS; seq++) {
        const first = seq === 0 || sstKindOf(seq) !== sstKindOf(seq - 1);
        staged.push(staging.sst.stageSst(GROUP, id, sstKindOf(seq), chunkOf(round, seq), first));
      }
      await Promise.all(staged);
      await staging.sst.completeSst(GROUP, id, sstFilesOf(round), { rows: round, bytes: CHUNKS * CHUNK_BYTES });
    } else {
      for (let seq = 0; seq < CHUNKS; seq++) staged.push(staging.stage(GROUP, id, seq, chunkOf(round, seq)));
      await Promise.all(staged);
      await staging.complete(GROUP, id, { chunks: CHUNKS, rows: round, bytes: CHUNKS * CHUNK_BYTES });
    }
    process.stdout.write(`ack ${round}\n`);
  }
}
