/**
 * Founding a cluster with more peers than the replication factor (real node processes): 5
 * founders with `--replication-factor 3` and 8 partitions. Each partition lives on exactly 3
 * nodes (the initial map of node/src/meta/meta-state.ts), and each node hosts the Raft groups of
 * exactly its partitions; the SDK writes and reads every partition; a plain REST request to a
 * node hosting no replica of the key is forwarded to a replica; after `kill -9` of the node
 * leading the most partitions, every partition takes writes again and no acknowledged write is lost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { KeyVa } from '@keyva/client';
import { keyHash } from '@keyva/client/keyspace';
import { freePort } from '@keyva/node/net/free-port';
import { afterAll, describe, expect, it } from 'vitest';

const NODES = 5;
const RF = 3;
const PARTITIONS = 8;
/** Writes must resume within this after a node dies (election timeout 1-2 s at 100 ms ticks). */
const FAILOVER_BOUND_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface WireMap {
  readonly map: { readonly partitions: readonly { id: number; replicas: string[]; leaderHint: string }[] };
}

async function mapOf(n: LocalNode): Promise<WireMap['map']> {
  const r = await fetch(`http://${n.http}/v1/partitions`);
  if (r.status !== 200) throw new Error(`GET /v1/partitions on ${n.nodeId}: HTTP ${r.status}`);
  return ((await r.json()) as WireMap).map;
}

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Retries `f` (retryable failures while leaders move) until it resolves or `boundMs` passes. */
async function retrying<T>(f: () => Promise<T>, boundMs: number): Promise<T> {
  const end = performance.now() + boundMs;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (performance.now() > end) throw e;
      await sleep(100);
    }
  }
}

describe(`${NODES} founders, replication factor ${RF}`, () => {
  const root = mkdtempSync(join(tmpdir(), 'keyva-subset-'));
  const nodes: LocalNode[] = [];
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop(10_000).catch(() => undefined)));
    rmSync(root, { recursive: true, force: true });
  });

  it('places each partition on 3 nodes, serves and forwards every key, and survives kill -9 of one node', { timeout: 150_000 }, async () => {
    const specs = [];
    for (let i = 0; i < NODES; i++) specs.push({ id: `node-${i + 1}`, grpcPort: await freePort(), httpPort: await freePort() });
    const peers = specs.map((s) => `${s.id}=127.0.0.1:${s.grpcPort}`).join(',');
    nodes.push(
      ...(await Promise.all(
        specs.map((s) =>
          startLocalNode({
            dataDir: join(root, s.id),
            engine: 'rocksdb',
            grpcPort: s.grpcPort,
            httpPort: s.httpPort,
            nodeId: s.id,
            logLevel: 'warn',
            readyTimeoutMs: 60_000,
            extraArgs: ['--peers', peers, '--replication-factor', String(RF), '--partitions', String(PARTITIONS), '--leader-balance-interval-ms', '0'],
          }),
        ),
      )),
    );
    const byId = new Map(nodes.map((n) => [n.nodeId, n]));

    // The map: every partition on exactly RF distinct nodes, the same on every node, balanced.
    const map = await mapOf(nodes[0] as LocalNode);
    expect(map.partitions).toHaveLength(PARTITIONS);
    const hostedBy = new Map<string, number[]>();
    for (const p of map.partitions) {
      expect(new Set(p.replicas).size).toBe(RF);
      for (const r of p.replicas) hostedBy.set(r, [...(hostedBy.get(r) ?? []), p.id]);
    }
    const counts = [...hostedBy.values()].map((l) => l.length);
    expect(hostedBy.size).toBe(NODES);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    for (const n of nodes) expect((await mapOf(n)).partitions.map((p) => p.replicas)).toEqual(map.partitions.map((p) => p.replicas));

    // Each node hosts exactly the groups of its partitions: it reports a leader for those (once
    // elected) and never for the others (a node knows leaders only of groups it hosts).
    await until(
      async () => {
        for (const n of nodes) {
          const m = await mapOf(n);
          for (const p of m.partitions) if (p.replicas.includes(n.nodeId) !== (p.leaderHint !== '')) return false;
        }
        return true;
      },
      30_000,
      'every node to know the leaders of exactly the partitions it hosts',
    );

    const kv = await KeyVa.connect({ endpoints: nodes.map((n) => n.grpc), deadlineMs: 3000, retry: { attemptsMax: 10 } });
    try {
      // SDK: one key per partition at least.
      const partitionOf = (key: string) => Number((keyHash(Buffer.from(key)) * BigInt(PARTITIONS)) >> 64n);
      const acked = new Map<string, string>();
      for (let i = 0; i < 64; i++) {
        await retrying(() => kv.put(`k${i}`, `v${i}`), 15_000);
        acked.set(`k${i}`, `v${i}`);
      }
      expect(new Set([...acked.keys()].map(partitionOf)).size).toBe(PARTITIONS);
      // Reads are retried while a leader is elected or starts serving (retryable answers; a wrong value still fails).
      for (const [k, v] of acked) expect(await retrying(() => kv.getString(k), 10_000)).toBe(v);

      // Plain REST to a node with no replica of the key's partition: forwarded, answered.
      const restPut = async (n: LocalNode, key: string, value: string) => {
        const r = await fetch(`http://${n.http}/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value });
        if (r.status !== 200) throw new Error(`REST PUT ${key} on ${n.nodeId}: HTTP ${r.status} ${await r.text()}`);
      };
      const restGet = async (n: LocalNode, key: string) => {
        const r = await fetch(`http://${n.http}/v1/kv/${encodeURIComponent(key)}`, { headers: { accept: 'application/octet-stream' } });
        if (r.status !== 200) throw new Error(`REST GET ${key} on ${n.nodeId}: HTTP ${r.status} ${await r.text()}`);
        return Buffer.from(await r.arrayBuffer()).toString();
      };
      const outsider = (key: string) => {
        const p = map.partitions[partitionOf(key)] as WireMap['map']['partitions'][number];
        return nodes.filter((n) => !p.replicas.includes(n.nodeId));
      };
      for (let i = 0; i < 16; i++) {
        const key = `rest${i}`;
        const others = outsider(key);
        expect(others).toHaveLength(NODES - RF);
        const [a, b] = others as [LocalNode, LocalNode];
        await retrying(() => restPut(a, key, `r${i}`), 10_000);
        acked.set(key, `r${i}`);
        expect(await retrying(() => restGet(b, key), 10_000)).toBe(`r${i}`);
        expect(await retrying(() => kv.getString(key), 10_000)).toBe(`r${i}`);
      }

      // kill -9 of the node leading the most partitions.
      const leaders = new Map<string, number>();
      for (const n of nodes)
        for (const p of (await mapOf(n)).partitions)
          if (p.leaderHint !== '' && p.replicas.includes(n.nodeId) && p.leaderHint === n.nodeId) leaders.set(n.nodeId, (leaders.get(n.nodeId) ?? 0) + 1);
      const [victimId] = [...leaders.entries()].sort((x, y) => y[1] - x[1])[0] as [string, number];
      const victim = byId.get(victimId) as LocalNode;
      victim.process.kill('SIGKILL');
      await victim.exited;
      const alive = nodes.filter((n) => n !== victim);

      // Every partition takes writes again (SDK), within the failover bound.
      const t0 = performance.now();
      const perPartition = new Map<number, string>();
      for (let i = 0; perPartition.size < PARTITIONS; i++)
        if (!perPartition.has(partitionOf(`after${i}`))) perPartition.set(partitionOf(`after${i}`), `after${i}`);
      await Promise.all(
        [...perPartition.values()].map(async (key) => {
          await retrying(() => kv.put(key, 'x'), FAILOVER_BOUND_MS);
          acked.set(key, 'x');
        }),
      );
      console.log(`every partition writable ${Math.round(performance.now() - t0)} ms after kill -9 of ${victimId}`);

      // REST through a live node hosting no replica still works (the dead node may be the first one it tries).
      for (let i = 0; i < 8; i++) {
        const key = `rest-after${i}`;
        const others = outsider(key).filter((n) => n !== victim);
        const via = (others[0] ?? alive[0]) as LocalNode;
        await retrying(() => restPut(via, key, `ra${i}`), FAILOVER_BOUND_MS);
        acked.set(key, `ra${i}`);
        expect(await retrying(() => restGet(via, key), FAILOVER_BOUND_MS)).toBe(`ra${i}`);
      }

      // No acknowledged write was lost.
      for (const [k, v] of acked) expect(await retrying(() => kv.getString(k), FAILOVER_BOUND_MS)).toBe(v);
    } finally {
      await kv.close();
    }
  });
});
