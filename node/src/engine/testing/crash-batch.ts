/** The batch shape shared by `crash-writer.ts` and the kill -9 durability test. */

/** Keys per batch, each in its own hash. */
export const CRASH_BATCH_KEYS = 3;
/** Hash of each writer's own key `w<writer>`. */
export const CRASH_WRITER_KEY_HASH = 500n;

/** Hash and key of the k-th key of batch `id`. */
export function crashBatchKey(id: number, k: number): { hash: bigint; key: Buffer } {
  return { hash: BigInt((id * 7 + k * 13) % 101), key: Buffer.from(`b${id}/${k}`) };
}
