/**
 * Child process of the staging kill -9 test (`snapshot-staging.test.ts`): stages snapshot after
 * snapshot in a `FileSnapshotStaging` at argv[2] (group 1, snapshot `round + 1` / term 1,
 * `CHUNKS` chunks of `CHUNK_BYTES` each, contents from `chunkOf`), completes each, and prints
 * `ack <round>` once `complete` returned. Runs until killed.
 */
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

if (import.meta.main) {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: crash-stager.ts <dir>');
  const staging = new FileSnapshotStaging(dir);
  for (let round = 0; ; round++) {
    const id = idOf(round);
    const staged: Promise<void>[] = [];
    for (let seq = 0; seq < CHUNKS; seq++) staged.push(staging.stage(GROUP, id, seq, chunkOf(round, seq)));
    await Promise.all(staged);
    await staging.complete(GROUP, id, { chunks: CHUNKS, rows: round, bytes: CHUNKS * CHUNK_BYTES });
    process.stdout.write(`ack ${round}\n`);
  }
}
