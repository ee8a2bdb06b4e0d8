/**
 * Child process of the kill -9 durability test (`rocksdb-durability.test.ts`). Opens a
 * RocksDbEngine at argv[2] and runs argv[3] concurrent writers of synced multi-key batches
 * until killed. For each ACKNOWLEDGED batch it prints one line: `ack <batchId> <commitTs>`
 * (stdout to a pipe is synchronous on Linux, so a printed line means the ack happened first).
 *
 * Batch `b` writes keys `b<b>/0`, `b<b>/1`, `b<b>/2` in three different hashes, plus the writer's
 * own key `w<writer>` (value = batch id), all at the batch's commitTs.
 */
import { RocksDbEngine } from '../rocksdb-engine.ts';
import type { Mutation } from '../types.ts';
import { CRASH_BATCH_KEYS, CRASH_WRITER_KEY_HASH, crashBatchKey } from './crash-batch.ts';

const path = process.argv[2];
const writers = Number(process.argv[3] ?? '16');
if (path === undefined) throw new Error('usage: crash-writer.ts <path> [writers]');

const engine = new RocksDbEngine({ path, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
await engine.open();
process.stdout.write('ready\n');

let nextBatch = 0;
let nextTs = 1000n;

async function writer(w: number): Promise<void> {
  for (;;) {
    const id = nextBatch++;
    const commitTs = nextTs++;
    const mutations: Mutation[] = [];
    for (let k = 0; k < CRASH_BATCH_KEYS; k++) {
      mutations.push({ type: 'put', ...crashBatchKey(id, k), value: Buffer.from(`v${id}`), expiresAtMs: 0 });
    }
    mutations.push({ type: 'put', hash: CRASH_WRITER_KEY_HASH, key: Buffer.from(`w${w}`), value: Buffer.from(String(id)), expiresAtMs: 0 });
    const r = await engine.write({ commitTs, mutations, nowMs: 0, sync: true });
    if (!r.ok) throw new Error(`batch ${id} failed`);
    process.stdout.write(`ack ${id} ${commitTs} ${w}\n`);
  }
}

await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
