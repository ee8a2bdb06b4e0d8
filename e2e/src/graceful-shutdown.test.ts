/**
 * SIGTERM is graceful: requests in flight when the signal arrives finish successfully, new
 * ones are refused with a retryable error, the node exits 0, and RocksDB reopens with every
 * acknowledged write.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { isKeyVaError, KeyVa } from '@keyva/client';
import { afterAll, describe, expect, it } from 'vitest';

describe('graceful shutdown on SIGTERM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-sigterm-'));
  let node: LocalNode | undefined;
  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes in-flight work, refuses new work, exits 0 and keeps every acknowledged write', async () => {
    node = await startLocalNode({ dataDir: dir, engine: 'rocksdb', grpcPort: 0, httpPort: 0, logLevel: 'info' });
    const kv = await KeyVa.connect({ endpoints: [node.grpc], retry: { attemptsMax: 1 }, deadlineMs: 5000 });
    const acked: string[] = [];
    const failures = new Map<string, number>();
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        try {
          await kv.put(`g${w}-${i}`, 'x'.repeat(200));
          acked.push(`g${w}-${i}`);
        } catch (e) {
          const code = isKeyVaError(e) ? e.code : 'OTHER';
          failures.set(code, (failures.get(code) ?? 0) + 1);
          return;
        }
      }
    });
    while (acked.length < 300) await new Promise((r) => setTimeout(r, 10));
    node.process.kill('SIGTERM');
    const code = await node.exited;
    stop = true;
    await Promise.all(writers);
    await kv.close();
    expect(code).toBe(0);
    // Only "node going away" answers: nothing failed half-way with an internal error.
    for (const c of failures.keys()) expect(['UNAVAILABLE', 'CANCELLED']).toContain(c);

    node = await startLocalNode({ dataDir: dir, engine: 'rocksdb', grpcPort: 0, httpPort: 0, logLevel: 'warn' });
    const kv2 = await KeyVa.connect({ endpoints: [node.grpc] });
    const got = await kv2.batchGet(acked.slice(0, 1000));
    const more = acked.length > 1000 ? await kv2.batchGet(acked.slice(1000, 2000)) : [];
    await kv2.close();
    expect([...got, ...more].every(Boolean)).toBe(true);
    console.log(`sigterm: ${acked.length} writes acknowledged, failures after the signal: ${JSON.stringify(Object.fromEntries(failures))}`);
  });
});
