/**
 * Size and load splits on a local cluster (`keyva dev --nodes 3 --split-size N`): the partitions' leaders
 * report the live data they hold (GetPartitionReplicas: size, key count, the hash at half the
 * bytes) and the control loop splits every partition that grew past the threshold, at that hash,
 * while a client keeps writing. Every acknowledged write stays readable. Likewise for load: the
 * leaders report keys read and written per second, and the loop splits the hot partitions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { isKeyVaError, type KeyVa } from '@keyva/client';
import { unary } from '@keyva/node/testing/test-node';
import { type AdminClient, keyvaV1, type PartitionReplicasResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevClusterHarness } from './dev-cluster-harness.ts';
import { connectRetrying } from './faults/workload.ts';

const SPLIT_BYTES = 200_000;
const VALUE = 'v'.repeat(1000);
const KEYS = 600;

/** A `keyva dev --nodes 3 --partitions 2 <flags>` cluster and an SDK client for one describe block. */
function twoPartitionCluster(flags: string[]): { readonly dev: DevClusterHarness; readonly kv: KeyVa } {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-auto-split-'));
  const c = {} as { dev: DevClusterHarness; kv: KeyVa };
  beforeAll(async () => {
    c.dev = await DevClusterHarness.start({ nodes: 3, partitions: 2, dataDir: dir, extraArgs: flags });
    c.kv = await connectRetrying({ endpoints: [...c.dev.endpoints], deadlineMs: 10_000, retry: { attemptsMax: 12 } });
    await c.dev.settled('founders', (s) => s.partitions === 2, 60_000);
  }, 120_000);
  afterAll(async () => {
    await c.kv?.close();
    await c.dev?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
  return c;
}

describe('size splits (keyva dev --nodes 3 --partitions 2 --split-size 200000)', () => {
  const c = twoPartitionCluster(['--split-size', String(SPLIT_BYTES)]);

  it('reports partition sizes and splits the partitions that outgrew the threshold', { timeout: 240_000 }, async () => {
    const acked: string[] = [];
    for (let i = 0; i < KEYS; i++) {
      await c.kv.put(`key-${i}`, VALUE);
      acked.push(`key-${i}`);
    }
    // The leaders' measure (cached up to 10 s): about KEYS x 1 KB over the two partitions.
    let reported = 0;
    const until = Date.now() + 30_000;
    while (reported <= SPLIT_BYTES && Date.now() < until) {
      reported = 0;
      for (const partitionId of [0, 1]) {
        const r = await retry(() => fromLeader(c.dev.endpoints, partitionId), 20_000);
        if (r.sizeExact && Number(r.keys) >= 2) expect(BigInt(r.splitHint)).toBeGreaterThan(0n);
        reported += Number(r.sizeBytes);
      }
      if (reported <= SPLIT_BYTES) await new Promise((r) => setTimeout(r, 1000));
    }
    // (A split may already have moved part of a range away: then less is reported, never more.)
    expect(reported).toBeGreaterThan(SPLIT_BYTES);
    expect(reported).toBeLessThanOrEqual(KEYS * (VALUE.length + 16));

    // Both partitions hold ~300 KB > 200 KB: each splits once (the halves stay below, and cool down for 10 min).
    const s = await c.dev.settled('size splits', (x) => x.partitions >= 4, 180_000);
    expect(s.partitions).toBe(4);
    expect(s.nodes.reduce((sum, n) => sum + n.partitions, 0)).toBe(4 * 3);
    expect(s.loop.violations).toEqual([]);
    for (const k of acked) expect((await c.kv.get(k))?.value.toString(), k).toBe(VALUE);
    console.log(`size splits: ${reported} bytes reported over 2 partitions; ${s.partitions} partitions after the loop split them`);
  });
});

/** GetPartitionReplicas from whichever node leads the partition (the others answer NOT_LEADER). */
async function fromLeader(endpoints: readonly string[], partitionId: number): Promise<PartitionReplicasResponseOut> {
  let last: unknown;
  for (const address of endpoints) {
    const admin = new keyvaV1.Admin(address, grpc.credentials.createInsecure()) as unknown as AdminClient;
    try {
      return await unary<object, PartitionReplicasResponseOut>(admin, 'GetPartitionReplicas', { partitionId });
    } catch (e) {
      last = e;
    } finally {
      admin.close();
    }
  }
  throw last;
}

async function retry<T>(fn: () => Promise<T>, boundMs: number): Promise<T> {
  const end = Date.now() + boundMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

describe('load splits (keyva dev --nodes 3 --partitions 2 --split-qps 60)', () => {
  const c = twoPartitionCluster(['--split-qps', '60']);

  it('reports per-partition load and splits the hot partitions (capped per minute, then cooled down)', { timeout: 240_000 }, async () => {
    for (let i = 0; i < 20; i++) await c.kv.put(`hot-${i}`, `v${i}`);
    // Readers over 20 keys in both partitions until the loop has split both (a few hundred reads/s here).
    // A read may time out while a new half elects its first leader on a loaded machine: counted
    // and shown; a read that answers must answer right.
    let reading = true;
    let reads = 0;
    const failures = new Map<string, number>();
    const readers = Array.from({ length: 8 }, async (_, r) => {
      for (let i = r; reading; i += 8) {
        try {
          const e = await c.kv.get(`hot-${i % 20}`);
          expect(e?.value.toString()).toBe(`v${i % 20}`);
          reads++;
        } catch (err) {
          if (!isKeyVaError(err)) throw err;
          failures.set(err.code, (failures.get(err.code) ?? 0) + 1);
        }
      }
    });
    let qps = 0;
    try {
      const deadline = Date.now() + 20_000;
      while (qps === 0 && Date.now() < deadline) {
        qps = Math.max(...(await Promise.all([0, 1].map(async (p) => (await retry(() => fromLeader(c.dev.endpoints, p), 10_000)).qps))));
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(qps, 'a leader reports the load on its partition').toBeGreaterThan(0);
      const s = await c.dev.settled('load splits', (x) => x.partitions >= 4, 180_000);
      expect(s.partitions).toBe(4);
      expect(s.loop.violations).toEqual([]);
    } finally {
      reading = false;
      await Promise.all(readers);
    }
    // Cooled down: the hot halves are not split again right away (they would pass the threshold).
    expect((await c.dev.status()).partitions).toBe(4);
    console.log(
      `load splits: ${reads} reads answered, failed: ${JSON.stringify(Object.fromEntries(failures))}; a leader reported ${qps} keys/s; 4 partitions after the loop split both`,
    );
  });
});
