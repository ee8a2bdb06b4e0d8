/**
 * A replicated 3-node cluster of real processes (`--peers`, ADR 0008): the SDK writes and reads
 * through it (following NOT_LEADER hints), `kill -9` of a node that leads partitions stops no
 * writes for longer than a bounded time and loses no acknowledged write, and the killed node
 * catches up after a restart (its follower reads return every acknowledged write).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalNode } from '@keyva/cli/local-node';
import { KeyVa } from '@keyva/client';
import { afterAll, describe, expect, it } from 'vitest';
import { FaultCluster } from './faults/cluster.ts';

const NODES = 3;
const PARTITIONS = 16;
/** Writes must resume within this after a leader's node dies (election timeout 1-2 s at 100 ms ticks). */
const FAILOVER_BOUND_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('replicated 3-node cluster', () => {
  const root = mkdtempSync(join(tmpdir(), 'keyva-replicated-'));
  let cluster: FaultCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** Follower read straight from one node's REST gateway: what that replica has applied. */
  const followerGet = async (n: LocalNode, key: string): Promise<string | undefined> => {
    const r = await fetch(`http://${n.http}/v1/kv/${encodeURIComponent(key)}?consistency=follower`, { headers: { accept: 'application/octet-stream' } });
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`follower read of ${key} on ${n.nodeId}: HTTP ${r.status}`);
    return Buffer.from(await r.arrayBuffer()).toString();
  };

  it('replicates, fails over after kill -9 without losing acknowledged writes, and catches up a restarted node', { timeout: 90_000 }, async () => {
    // Every Raft link runs through a fault proxy left in pass mode (the fault suite: e2e/src/faults).
    const c = await FaultCluster.create({ root, nodes: NODES, partitions: PARTITIONS });
    cluster = c;
    const t0 = performance.now();
    await c.startAll();
    const readyMs = performance.now() - t0;
    const kv = await KeyVa.connect({ endpoints: c.endpoints, deadlineMs: 3000, retry: { attemptsMax: 10 } });
    try {
      // Until every group elected a leader, writes are refused (retryable); retry at this level too.
      const putRetrying = async (key: string, value: string, boundMs: number): Promise<bigint> => {
        const end = performance.now() + boundMs;
        for (;;) {
          try {
            return (await kv.put(key, value)).version;
          } catch (e) {
            if (performance.now() > end) throw e;
            await sleep(50);
          }
        }
      };
      // Every node runs the leader balancer (default on), so leadership may move at any time: a
      // new leader answers UNAVAILABLE until it serves. Verification reads retry those retryable
      // answers beyond the SDK's own attempts; a wrong value or any other error still fails.
      const getRetrying = async (key: string, boundMs = FAILOVER_BOUND_MS): Promise<string | undefined> => {
        const end = performance.now() + boundMs;
        for (;;) {
          try {
            return await kv.getString(key);
          } catch (e) {
            const code = (e as { code?: string }).code;
            if ((code !== 'UNAVAILABLE' && code !== 'NOT_LEADER') || performance.now() > end) throw e;
            await sleep(100);
          }
        }
      };
      const acked = new Map<string, string>();
      // One key per partition at least (64 keys over 16 partitions).
      for (let i = 0; i < 64; i++) {
        await putRetrying(`k${i}`, `v${i}`, 15_000);
        acked.set(`k${i}`, `v${i}`);
      }
      console.log(
        `3 node processes ready after ${Math.round(readyMs)} ms; 64 keys over every partition written ${Math.round(performance.now() - t0 - readyMs)} ms later`,
      );
      for (const [k, v] of acked) expect(await getRetrying(k)).toBe(v);

      // Every node serves the map with all peers as replicas and the current leaders.
      const map = await kv.partitionMap({ refresh: true });
      expect(map.partitions).toHaveLength(PARTITIONS);
      for (const p of map.partitions) expect([...p.replicas].sort()).toEqual([...c.ids]);
      expect([...map.nodes.keys()].sort()).toEqual([...c.ids]);
      const leaders = new Map<string, number>();
      for (const p of map.partitions) if (p.leaderHint) leaders.set(p.leaderHint, (leaders.get(p.leaderHint) ?? 0) + 1);
      const [victimId, led] = [...leaders.entries()].sort((a, b) => b[1] - a[1])[0] as [string, number];
      console.log(`leaders per node: ${JSON.stringify(Object.fromEntries(leaders))}; killing ${victimId} (leads ${led})`);

      // Writers keep going across the crash; only acknowledged writes are recorded.
      let stop = false;
      let lastAckAt = performance.now();
      let longestGapMs = 0;
      const writer = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const key = `w${w}-${i}`;
          const value = `value-${w}-${i}`;
          try {
            await kv.put(key, value);
            const now = performance.now();
            longestGapMs = Math.max(longestGapMs, now - lastAckAt);
            lastAckAt = now;
            acked.set(key, value);
          } catch {
            await sleep(20); // not acknowledged: it may or may not have landed
          }
        }
      };
      const writers = Array.from({ length: 8 }, (_, w) => writer(w));
      await sleep(1000);
      await c.kill(victimId);
      const killedAt = performance.now();
      // Writes to every partition (the victim's included) must go through again within the bound.
      const probes = Array.from({ length: 64 }, (_, i) => `after-kill-${i}`);
      await Promise.all(
        probes.map(async (k) => {
          await putRetrying(k, k, FAILOVER_BOUND_MS);
          acked.set(k, k);
        }),
      );
      const failoverMs = performance.now() - killedAt;
      await sleep(500);
      stop = true;
      await Promise.all(writers);
      console.log(
        `after kill -9 of ${victimId}: every partition writable again in ${Math.round(failoverMs)} ms; longest gap between acknowledged writes ${Math.round(longestGapMs)} ms; ${acked.size} acknowledged writes`,
      );
      expect(failoverMs).toBeLessThan(FAILOVER_BOUND_MS);

      // No acknowledged write is lost (linearizable reads through the two survivors).
      for (const [k, v] of acked) expect(await getRetrying(k), k).toBe(v);

      // The killed node comes back on its data and catches up: its own replicas hold every write.
      const restartedAt = performance.now();
      const back = await c.start(victimId);
      const end = performance.now() + 20_000;
      let missing: string[] = [...acked.keys()];
      while (missing.length > 0) {
        const still: string[] = [];
        for (const k of missing) if ((await followerGet(back, k).catch(() => undefined)) !== acked.get(k)) still.push(k);
        missing = still;
        if (missing.length === 0) break;
        if (performance.now() > end) throw new Error(`${victimId} did not catch up: ${missing.length} keys missing, e.g. ${missing.slice(0, 5).join(', ')}`);
        await sleep(200);
      }
      console.log(`${victimId} restarted and caught up (${acked.size} keys) in ${Math.round(performance.now() - restartedAt)} ms`);

      // A batch is atomic within one partition: keys sharing a hash tag are accepted, others refused.
      const ok = await kv.batchWrite([
        { type: 'put', key: '{t}:a', value: 'a' },
        { type: 'put', key: '{t}:b', value: 'b' },
      ]);
      expect(ok.versions).toHaveLength(2);
      await expect(kv.batchWrite(Array.from({ length: 16 }, (_, i) => ({ type: 'put' as const, key: `spread-${i}`, value: 'x' })))).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    } finally {
      await kv.close();
    }
  });
});
