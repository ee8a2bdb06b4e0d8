/** Test helper: keys `k0, k1, …` sorted by which side of a hash they fall on. */
import { keyHash } from '@keyva/client/keyspace';

/**
 * Keys `k0, k1, …` in order, each put in `low` (hash below `at`) or `high`, until both hold at
 * least `count` (one of them usually holds more).
 */
export function keysEitherSide(at: bigint, count: number): { low: string[]; high: string[] } {
  const low: string[] = [];
  const high: string[] = [];
  for (let i = 0; low.length < count || high.length < count; i++) {
    const k = `k${i}`;
    (keyHash(Buffer.from(k)) < at ? low : high).push(k);
  }
  return { low, high };
}
