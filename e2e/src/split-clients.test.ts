/**
 * Issue #4 item 7, "clients never notice", with the SDK's DEFAULT options (no retry or deadline
 * tuning, unlike the other e2e suites): on a local cluster (`keyva dev --nodes 3`, RocksDB),
 * clients write and read while partitions split one after another. The group a split creates
 * must elect its first leader before it serves (1-2 s), and clients must ride that out inside
 * their retry policy: no operation may fail, and every acknowledged write reads back.
 *
 * With the SDK's former default of 5 attempts (backoffs adding up to ~0.15 s) clients failed
 * through splits (session 8: 87 failed operations in three splits of a hand-run cluster).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyVa } from '@keyva/client';
import { afterAll, describe, expect, it } from 'vitest';
import { unreadableAcked } from './acked-writes.ts';
import { DevClusterHarness, runCli } from './dev-cluster-harness.ts';
import { connectRetrying } from './faults/workload.ts';

const PARTITIONS = 2;
const CLIENTS = 8;
const SETTLE_MS = 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('clients on the SDK defaults through splits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-split-clients-'));
  let dev: DevClusterHarness | undefined;
  let kv: KeyVa | undefined;

  afterAll(async () => {
    await kv?.close();
    await dev?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('no operation fails and every acknowledged write reads back while three partitions split under load', { timeout: 300_000 }, async () => {
    dev = await DevClusterHarness.start({ nodes: 3, partitions: PARTITIONS, dataDir: dir });
    const cluster = dev;
    await cluster.settled('founders', (s) => s.partitions === PARTITIONS && s.nodes.every((n) => n.partitions === PARTITIONS), SETTLE_MS);
    kv = await connectRetrying({ endpoints: [...cluster.endpoints] }); // the defaults: nothing else
    const client = kv;

    const acked = new Map<string, string>();
    const failures: string[] = [];
    // When things happened (ms since the load began), printed with the nodes' log tails if an operation fails.
    const t0 = Date.now();
    const timeline: string[] = [];
    const at = (what: string) => timeline.push(`${Date.now() - t0} ms ${what}`);
    let running = true;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (running) {
        const i = next++;
        const key = `s-${i}`;
        const value = `v-${i}`;
        try {
          await client.put(key, value);
          acked.set(key, value);
          await client.get(`s-${Math.floor(i / 2)}`);
        } catch (e) {
          failures.push(`${key}: ${(e as Error).message}`);
          at(`${key} failed: ${(e as Error).message}`);
        }
      }
    };
    const workers = Array.from({ length: CLIENTS }, worker);

    await sleep(1000);
    let partitions = PARTITIONS;
    for (const id of [0, 1, PARTITIONS]) {
      at(`split of partition ${id} requested`);
      const split = await runCli('partition', 'split', String(id), '--endpoint', cluster.endpoints[id % 3] as string, '--json');
      expect(split.code, split.stderr).toBe(0);
      at(`split of partition ${id} answered: ${split.stdout.replace(/\s+/g, ' ').trim()}`);
      partitions++;
      const want = partitions;
      // Settled: every node hosts every partition (RF 3 on 3 nodes), so the new group's replicas all exist.
      await cluster.settled(`split of ${id}`, (s) => s.partitions === want && s.nodes.every((n) => n.partitions === want), SETTLE_MS);
      at(`split of partition ${id} settled`);
      await sleep(1500);
    }
    running = false;
    await Promise.all(workers);
    if (failures.length > 0) {
      // Evidence for whoever reads the failure: the timeline, and what each node logged last.
      console.log(`split clients: timeline\n${timeline.join('\n')}`);
      for (const id of readdirSync(dir)) {
        const log = join(dir, id, 'node.log');
        if (existsSync(log)) console.log(`split clients: last lines of ${id}'s log\n${readFileSync(log, 'utf8').trimEnd().split('\n').slice(-40).join('\n')}`);
      }
    }

    expect(failures, 'operations that failed with the SDK defaults').toEqual([]);
    expect(acked.size, 'the clients made progress through the splits').toBeGreaterThan(500);
    expect(await unreadableAcked(client, acked)).toEqual([]);
    console.log(`split clients: ${acked.size} writes acknowledged through 3 splits (${partitions} partitions), 0 failed, all read back`);
  });
});
