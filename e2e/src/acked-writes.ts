/**
 * The read-back that ends a test under load: every write the clients saw acknowledged must be
 * readable with its acknowledged value.
 */
import type { KeyVa } from '@keyva/client';

/** Keys of `acked` (key → acknowledged value) that read back missing or with another value, in order. */
export async function unreadableAcked(kv: KeyVa, acked: ReadonlyMap<string, string>): Promise<string[]> {
  const missing: string[] = [];
  for (const [k, v] of acked) {
    const e = await kv.get(k);
    if (e === undefined || Buffer.from(e.value).toString() !== v) missing.push(k);
  }
  return missing;
}
