/** A seeded random source for workloads and fault schedules: the same seed replays the same run (the Raft core's mulberry32 `Prng`). */
import { Prng } from '@keyva/node/raft/prng';

export function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.next();
}
