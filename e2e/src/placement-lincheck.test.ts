/**
 * The placement issue's acceptance scenario on a local cluster (`keyva dev --nodes 3`, the
 * control loop running): grow 3 -> 4 -> 5 nodes, split a partition, shrink back to 3 (removing
 * two founders), all under load. Two kinds of clients run throughout:
 * - SDK clients running get/put/delete/CAS on a few keys, every operation recorded and the
 *   history checked by porcupine (zero violations: no stale read, no lost or doubled write while
 *   replicas move, leaders change and a split takes effect);
 * - a writer of unique keys; at the end every acknowledged one is read back and compared.
 * Removing two of the three founders also retires their meta group votes: the meta group must
 * follow (its voters end on the three remaining nodes) and still take map changes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { KeyVa } from '@keyva/client';
import { unary } from '@keyva/node/testing/test-node';
import { type AdminClient, keyvaV1 } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unreadableAcked } from './acked-writes.ts';
import { DevClusterHarness, partitionsOf, runCli } from './dev-cluster-harness.ts';
import { connectRetrying, Workload } from './faults/workload.ts';
import { History } from './lincheck/history.ts';
import { checkHistory } from './lincheck/lincheck.ts';

const PARTITIONS = 8;
const RF = 3;
/** Keys of the checked history, spread over the partitions (porcupine checks each key alone). */
const KEYS = Array.from({ length: 16 }, (_, i) => `k${i}`);
const CLIENTS = 4;
const SETTLE_MS = 90_000;

/** One Admin call to a node (the meta group's view, which the CLI does not show). */
async function adminCall<T>(address: string, method: string, req: object): Promise<T> {
  const admin = new keyvaV1.Admin(address, grpc.credentials.createInsecure()) as unknown as AdminClient;
  try {
    return await unary<object, T>(admin, method, req);
  } finally {
    admin.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const total = (s: { nodes: readonly { partitions: number }[] }) => s.nodes.reduce((sum, n) => sum + n.partitions, 0);

describe('3 -> 5 -> 3 nodes with a split, under load (porcupine + acknowledged writes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-placement-lin-'));
  let dev: DevClusterHarness;
  let kv: KeyVa;
  const acked = new Map<string, string>();
  let writing = true;
  let writer: Promise<void> = Promise.resolve();
  let keep = false;

  beforeAll(async () => {
    dev = await DevClusterHarness.start({ nodes: RF, partitions: PARTITIONS, dataDir: dir });
    kv = await connectRetrying({ endpoints: [...dev.endpoints], deadlineMs: 3000, retry: { attemptsMax: 10 } });
    await dev.settled('founders', (s) => s.nodes.filter((n) => n.partitions === PARTITIONS).length === RF, SETTLE_MS);
    writer = (async () => {
      for (let i = 0; writing; i++) {
        const key = `w-${i}`;
        const value = `v-${i}`;
        try {
          await kv.put(key, value);
          acked.set(key, value);
        } catch {
          // not acknowledged: not checked
        }
        await sleep(10);
      }
    })();
  }, 120_000);

  afterAll(async () => {
    writing = false;
    await writer;
    await kv?.close();
    await dev?.stop();
    if (keep) console.log(`placement history kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('stays linearizable and loses no acknowledged write through adds, a split and removals', { timeout: 600_000 }, async () => {
    keep = true;
    const t0 = performance.now();
    const steps: string[] = [];
    const step = (what: string) => steps.push(`${((performance.now() - t0) / 1000).toFixed(1)} s ${what}`);
    const history = new History();
    const workload = new Workload({ endpoints: dev.endpoints, history, keys: KEYS, clients: CLIENTS, seed: 7, deadlineMs: 4000 });
    await workload.start();
    await sleep(1000);

    for (const id of ['node-4', 'node-5']) {
      const add = await runCli('node', 'add', '--control', dev.control, '--json');
      expect(add.code, add.stderr).toBe(0);
      expect(JSON.parse(add.stdout)).toMatchObject({ id });
      await dev.settled(`${id} added`, (s) => partitionsOf(s, id) >= 2 && total(s) === PARTITIONS * RF, SETTLE_MS);
      step(`${id} added and balanced`);
    }

    // Split partition 0 in the middle of its range: metadata only; the loop then places the new partition.
    const split = await runCli('partition', 'split', '0', '--endpoint', dev.endpoints[1] as string, '--json');
    expect(split.code, split.stderr).toBe(0);
    const newId = (JSON.parse(split.stdout) as { newPartitionId: number }).newPartitionId;
    expect(newId).toBeGreaterThanOrEqual(PARTITIONS);
    const afterSplit = await dev.settled('split placed', (s) => s.partitions === PARTITIONS + 1 && total(s) === (PARTITIONS + 1) * RF, SETTLE_MS);
    step(`partition 0 split (new partition ${newId}); ${afterSplit.partitions} partitions`);

    for (const id of ['node-1', 'node-2']) {
      const rm = await runCli('node', 'remove', id, '--control', dev.control);
      expect(rm.code, rm.stderr).toBe(0);
      await dev.settled(`${id} removed`, (s) => s.nodes.find((n) => n.id === id)?.state === 'removed', SETTLE_MS);
      step(`${id} drained and removed`);
    }
    await sleep(1000);
    await workload.stop();
    writing = false;
    await writer;

    // The meta group followed: its voters moved off the removed founders onto active nodes, so
    // the map can still change (a second split needs the meta group's quorum).
    const node3 = dev.endpoints[2] as string;
    const metaReplicas = await adminCall<{ hosted: boolean; voters: string[] }>(node3, 'LocalReplica', { partitionId: 0, metaGroup: true });
    expect(metaReplicas.hosted).toBe(true);
    expect([...metaReplicas.voters].sort()).toEqual(['node-3', 'node-4', 'node-5']);
    const again = await runCli('partition', 'split', '1', '--endpoint', node3, '--json');
    expect(again.code, again.stderr).toBe(0);
    await dev.settled('second split placed', (s) => s.partitions === PARTITIONS + 2 && total(s) === (PARTITIONS + 2) * RF, SETTLE_MS);
    step('partition 1 split after the founders left (meta group still has a quorum)');

    const final = await dev.status();
    expect(final.nodes.filter((n) => n.state === 'active').map((n) => n.id)).toEqual(['node-3', 'node-4', 'node-5']);
    for (const id of ['node-3', 'node-4', 'node-5']) expect(partitionsOf(final, id)).toBe(PARTITIONS + 2);
    expect(final.loop.violations).toEqual([]);

    const missing = await unreadableAcked(kv, acked);
    expect(acked.size, 'the writer made progress through the changes').toBeGreaterThan(200);
    expect(missing, `acknowledged writes not readable: ${missing.slice(0, 10).join(', ')}`).toEqual([]);

    const path = join(dir, 'history.jsonl');
    history.write(path);
    const verdict = await checkHistory(path, join(dir, 'history.html'), '90s');
    const c = history.counts();
    console.log(
      `placement under load: ${steps.join('; ')}; ${acked.size} unique writes acknowledged and read back; ` +
        `porcupine ${verdict.result} on ${verdict.operations} operations over ${verdict.keys} keys (${c.ok} ok, ${c.fail} failed, ${c.unknown} unknown)`,
    );
    expect(c.ok, 'too few operations completed for the check to mean anything').toBeGreaterThan(300);
    expect(verdict.result, `history not linearizable: ${path}, visualisation ${verdict.visualization ?? '(none)'}`).toBe('Ok');
    keep = false;
  });
});
