/**
 * The placement control loop over real node processes (`keyva dev --nodes 3`), driven by the CLI:
 * a writer runs throughout; `keyva node add` moves the new node's ring share onto it (learner
 * first); `keyva node remove` of a founder drains it, removes it only once it confirms it holds
 * nothing, and stops it; a removal below RF is refused with the reason; the control loop dropped
 * (as in a crash) again and again in the middle of a move resumes and finishes. Every
 * acknowledged write stays readable.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyVa } from '@keyva/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unreadableAcked } from './acked-writes.ts';
import { DevClusterHarness, partitionsOf, runCli as run } from './dev-cluster-harness.ts';

const PARTITIONS = 8;
const RF = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('placement control loop on a local cluster (keyva dev --nodes 3)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-placement-'));
  let dev: DevClusterHarness;
  let control = '';
  let kv: KeyVa;
  const acked = new Map<string, string>();
  let writing = true;
  let writer: Promise<void> = Promise.resolve();

  const status = () => dev.status();
  const settled = (what: string, ok: Parameters<DevClusterHarness['settled']>[1]) => dev.settled(what, ok);
  const allReadable = async () => {
    const missing = await unreadableAcked(kv, acked);
    expect(missing, `acknowledged writes not readable: ${missing.slice(0, 10).join(', ')}`).toEqual([]);
  };

  beforeAll(async () => {
    dev = await DevClusterHarness.start({ nodes: RF, partitions: PARTITIONS, dataDir: dir });
    control = dev.control;
    kv = await KeyVa.connect({ endpoints: [...dev.endpoints], deadlineMs: 3000, retry: { attemptsMax: 10 } });
    await settled('founders', (s) => s.nodes.filter((n) => n.partitions === PARTITIONS).length === RF);
    writer = (async () => {
      for (let i = 0; writing; i++) {
        const key = `w-${i}`;
        const value = `v-${i}-${Date.now()}`;
        try {
          await kv.put(key, value);
          acked.set(key, value);
        } catch {
          // not acknowledged: may or may not be there, not checked
        }
        await sleep(20);
      }
    })();
  }, 60_000);

  afterAll(async () => {
    writing = false;
    await writer;
    await kv?.close();
    await dev?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('LESSONS #8, #10, #12 — node add: the new node receives its ring share, learner first (RF voters everywhere), replicas compared, while writes continue', async () => {
    const add = await run('node', 'add', '--control', control, '--json');
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ id: 'node-4' });
    const during = await status();
    expect(during.nodes.map((n) => n.id)).toContain('node-4');
    // LESSONS #12: watch the move: node-4 holds learners before voters, and no partition ever
    // drops below RF voters on the way.
    let sawLearner = false;
    const belowRf: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const x = await status();
        if ((x.nodes.find((n) => n.id === 'node-4')?.learners ?? 0) > 0) sawLearner = true;
        for (const v of x.loop.violations) if (v.code === 'BELOW_REPLICATION_FACTOR') belowRf.push(v.message);
        await sleep(100);
      }
    })();
    // 8 partitions x RF 3 over 4 equal nodes: 6 each on the ring (a little off is fine).
    const s = await settled('node-4 added', (x) => partitionsOf(x, 'node-4') >= 4).finally(() => {
      watching = false;
    });
    await watcher;
    expect(sawLearner, 'node-4 was a learner first').toBe(true);
    expect(belowRf).toEqual([]);
    // LESSONS #10: every removal at the end of a move waited for the replicas' digests to agree,
    // and the background audit compared settled partitions too, finding nothing.
    expect(s.loop.digestsAudited).toBeGreaterThan(0);
    expect(s.loop.violations).toEqual([]);
    expect(partitionsOf(s, 'node-4')).toBeLessThanOrEqual(8);
    expect(s.nodes.reduce((sum, n) => sum + n.partitions, 0)).toBe(PARTITIONS * RF);
    expect(s.loop.movesDone).toBeGreaterThanOrEqual(4);
    const text = await run('status', '--control', control);
    expect(text.stdout).toMatch(/node-4\s+│\s+active\s+│\s+up/);
    expect(text.stdout).toContain('invariants: ok');
    // Four active nodes: the meta group keeps three voters (an odd count), the founders.
    expect(text.stdout).toMatch(/meta group\s+voters node-1, node-2, node-3, leader node-\d/);
    expect(acked.size).toBeGreaterThan(20);
    await allReadable();
  }, 90_000);

  it('LESSONS #1, #3, #6 — node remove of a founder: drained, removed only once it confirms it is empty, its process stopped, no other topology change meanwhile; data intact, RF on the others', async () => {
    const before = acked.size;
    const rm = await run('node', 'remove', 'node-1', '--control', control);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toContain('draining node-1');
    // LESSONS #6: while node-1 drains, other topology changes are refused with the reason.
    const add = await run('node', 'add', '--control', control);
    expect(add.code).toBe(2);
    expect(add.stderr).toContain('node-1 is draining');
    const second = await run('node', 'remove', 'node-2', '--control', control);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain('node-1 is still draining');
    const s = await settled('node-1 removed', (x) => x.nodes.find((n) => n.id === 'node-1')?.state === 'removed');
    const n1 = s.nodes.find((n) => n.id === 'node-1');
    expect(n1).toMatchObject({ state: 'removed', process: 'stopped', partitions: 0 });
    for (const id of ['node-2', 'node-3', 'node-4']) expect(s.nodes.find((n) => n.id === id)).toMatchObject({ state: 'active', health: 'up' });
    expect(s.nodes.reduce((sum, n) => sum + n.partitions, 0)).toBe(PARTITIONS * RF);
    expect(acked.size).toBeGreaterThan(before);
    await allReadable();
  }, 90_000);

  it('LESSONS #5 — refuses a removal that would leave fewer nodes than RF, up front, with the reason, and changes nothing', async () => {
    const rm = await run('node', 'remove', 'node-2', '--control', control);
    expect(rm.code).toBe(2);
    expect(rm.stderr).toContain('CONDITION_FAILED');
    expect(rm.stderr).toContain('fewer than the replication factor 3');
    const unknown = await run('node', 'remove', 'node-99', '--control', control);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('not in the node registry');
    const s = await status();
    expect(s.nodes.filter((n) => n.state === 'active').map((n) => n.id)).toEqual(['node-2', 'node-3', 'node-4']);
  });

  it('LESSONS #8 — a control loop dropped mid-move (again and again) resumes from the cluster and finishes', async () => {
    const add = await run('node', 'add', '--control', control, '--json');
    expect(JSON.parse(add.stdout)).toMatchObject({ id: 'node-5' });
    let restarts = 0;
    let sawMove = false;
    const end = Date.now() + 30_000;
    while (restarts < 4 && Date.now() < end) {
      const s = await status();
      const moving = s.loop.movesInFlight > 0 || s.nodes.some((n) => n.learners > 0);
      if (moving) {
        sawMove = true;
        expect(await dev.restartLoop()).toBe(200);
        restarts++;
        await sleep(400 + restarts * 150);
      } else await sleep(100);
    }
    expect(sawMove).toBe(true);
    expect(restarts).toBeGreaterThanOrEqual(2);
    const s = await settled('node-5 added after loop restarts', (x) => partitionsOf(x, 'node-5') >= 3);
    expect(s.nodes.reduce((sum, n) => sum + n.partitions, 0)).toBe(PARTITIONS * RF);
    expect(s.loop.violations).toEqual([]);
    await allReadable();
  }, 90_000);
});
