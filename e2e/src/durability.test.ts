/**
 * No acknowledged write is lost: concurrent writers against a real node process on RocksDB,
 * `kill -9` in the middle, restart on the same data folder, then every acknowledged write is
 * there with its version, and every multi-key batch is all there or not there at all.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { KeyVa } from '@keyva/client';
import { afterAll, describe, expect, it } from 'vitest';

const WRITERS = 16;
const BATCH_KEYS = 4;

describe('durability under kill -9', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-durability-'));
  let node: LocalNode | undefined;
  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write and never half-applies a batch', async () => {
    node = await startLocalNode({ dataDir: dir, engine: 'rocksdb', grpcPort: 0, httpPort: 0, logLevel: 'warn' });
    const kv = await KeyVa.connect({ endpoints: [node.grpc], deadlineMs: 2000, retry: { attemptsMax: 1 } });
    const acked = new Map<string, { value: string; version: bigint }>();
    const attemptedBatches: string[][] = [];
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        try {
          if (i % 3 === 2) {
            const keys = Array.from({ length: BATCH_KEYS }, (_, j) => `{b${w}-${i}}:${j}`);
            attemptedBatches.push(keys);
            const r = await kv.batchWrite(keys.map((key) => ({ type: 'put' as const, key, value: `batch-${w}-${i}` })));
            for (const [j, k] of keys.entries()) acked.set(k, { value: `batch-${w}-${i}`, version: r.versions[j] as bigint });
          } else {
            const key = `w${w}-${i}`;
            const r = await kv.put(key, `value-${w}-${i}`);
            acked.set(key, { value: `value-${w}-${i}`, version: r.version });
          }
        } catch {
          return; // the node is gone; unacknowledged writes may or may not have landed
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    // Let the writers get going, then crash the node in the middle of their stream of writes.
    while (acked.size < 2000) await new Promise((r) => setTimeout(r, 20));
    node.process.kill('SIGKILL');
    await node.exited;
    stop = true;
    await Promise.all(writers);
    await kv.close();
    const ackedAtKill = acked.size;

    node = await startLocalNode({ dataDir: dir, engine: 'rocksdb', grpcPort: 0, httpPort: 0, logLevel: 'warn' });
    const kv2 = await KeyVa.connect({ endpoints: [node.grpc] });
    const keys = [...acked.keys()];
    let lost = 0;
    for (let i = 0; i < keys.length; i += 500) {
      const slice = keys.slice(i, i + 500);
      const got = await kv2.batchGet(slice);
      got.forEach((e, j) => {
        const want = acked.get(slice[j] as string);
        if (!e || e.value.toString() !== want?.value || e.version !== want.version) lost++;
      });
    }
    let halfBatches = 0;
    for (let i = 0; i < attemptedBatches.length; i += 100) {
      const group = attemptedBatches.slice(i, i + 100);
      const got = await kv2.batchGet(group.flat());
      for (let b = 0; b < group.length; b++) {
        const present = got.slice(b * BATCH_KEYS, (b + 1) * BATCH_KEYS).filter(Boolean).length;
        if (present !== 0 && present !== BATCH_KEYS) halfBatches++;
      }
    }
    await kv2.close();
    console.log(
      `durability: ${ackedAtKill} acknowledged writes before kill -9, ${attemptedBatches.length} batches attempted; lost ${lost}, half-applied batches ${halfBatches}`,
    );
    expect(ackedAtKill).toBeGreaterThanOrEqual(2000);
    expect(lost).toBe(0);
    expect(halfBatches).toBe(0);
  });
});
