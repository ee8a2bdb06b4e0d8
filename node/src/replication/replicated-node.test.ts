/**
 * Replicated mode of `startNode` (`--peers`): three nodes in this process on the memory engine,
 * KV writes as proposals to the partition's group, the KV error mapping (NOT_LEADER with the
 * leader's id, batches confined to one partition), linearizable reads on leaders only, the
 * partition map with every peer and the current leaders, and a graceful stop that hands off.
 */

import { keyHash } from '@keyva/client/keyspace';
import type { GetPartitionMapResponseOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupOf } from '../kv/kv-store.ts';
import { freePort } from '../net/free-port.ts';
import { failure, startTestNode, type TestNode, unary } from '../testing/test-node.ts';
import { until } from './testing/replication-cluster.ts';

const PARTITIONS = 4;
const read = { consistency: 'linearizable' } as const;

async function rejection(p: Promise<unknown>): Promise<KeyVaError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KeyVaError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('replicated node (--peers)', () => {
  const nodes: TestNode[] = [];
  const ids = ['node-1', 'node-2', 'node-3'];

  beforeAll(async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(',');
    for (const [i, id] of ids.entries())
      nodes.push(await startTestNode('memory', { nodeId: id, grpcPort: ports[i], peers, partitions: PARTITIONS, raftTickMs: 50 }));
    await until(
      () => Array.from({ length: PARTITIONS }, (_, p) => groupOf(p)).every((g) => nodes.some((n) => n.node.raft?.status(g)?.serving)),
      10_000,
      'a serving leader in every group',
    );
    // The meta group's map: bootstrapped and every node registered (its HTTP address known) everywhere.
    await until(
      () => nodes.every((n) => n.node.meta.state.nodes.length === ids.length && n.node.meta.state.nodes.every((x) => x.httpAddress !== '')),
      10_000,
      'the partition map with every node registered',
    );
    await until(() => new Set(nodes.map((n) => n.node.meta.state.epoch)).size === 1, 5000, 'one epoch on every node');
  });
  afterAll(async () => {
    for (const n of nodes) await n.close();
  });

  const partitionOf = (key: string) => Number((keyHash(Buffer.from(key)) * BigInt(PARTITIONS)) >> 64n);
  const leaderOf = (key: string) => nodes.find((n) => n.node.raft?.status(groupOf(partitionOf(key)))?.serving) as TestNode;
  const followerOf = (key: string) => nodes.find((n) => n !== leaderOf(key)) as TestNode;

  it('writes through the leader, answers NOT_LEADER with its id elsewhere, and reads linearizably on the leader only', async () => {
    const key = Buffer.from('alpha');
    const leader = leaderOf('alpha');
    const follower = followerOf('alpha');
    const version = await leader.node.kv.put({ key, value: Buffer.from('one'), ttlMs: 0 });
    expect(version).toBeGreaterThan(0n);

    const refused = await rejection(follower.node.kv.put({ key, value: Buffer.from('two'), ttlMs: 0 }));
    expect(refused.code).toBe('NOT_LEADER');
    expect(refused.details).toMatchObject({
      leaderHint: leader.node.nodeId,
      partitionId: String(partitionOf('alpha')),
      epoch: String(follower.node.meta.state.epoch),
    });

    expect((await leader.node.kv.get({ key, read })).value.toString()).toBe('one');
    expect((await rejection(follower.node.kv.get({ key, read }))).code).toBe('NOT_LEADER');
    // Follower reads serve the replica's applied state: the write arrives there too.
    const end = Date.now() + 5000;
    for (;;) {
      const r = await follower.node.kv.get({ key, read: { consistency: 'follower' } });
      if (r.found) {
        expect(r).toMatchObject({ value: Buffer.from('one'), version });
        break;
      }
      if (Date.now() > end) throw new Error('the follower never applied the write');
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  it('evaluates conditions on the leader and returns their outcome', async () => {
    const key = Buffer.from('cond');
    const leader = leaderOf('cond');
    await leader.node.kv.put({ key, value: Buffer.from('a'), ttlMs: 0, condition: { kind: 'absent' } });
    const failed = await rejection(leader.node.kv.put({ key, value: Buffer.from('b'), ttlMs: 0, condition: { kind: 'absent' } }));
    expect(failed.code).toBe('CONDITION_FAILED');
    expect(await leader.node.kv.delete({ key })).toMatchObject({ deleted: true });
    expect(await leader.node.kv.delete({ key })).toMatchObject({ deleted: false });
  });

  it('keeps a batch atomic within one partition and refuses one spanning partitions', async () => {
    const leader = leaderOf('{t}:a');
    const versions = await leader.node.kv.batchWrite([
      { type: 'put', key: Buffer.from('{t}:a'), value: Buffer.from('1'), ttlMs: 0 },
      { type: 'put', key: Buffer.from('{t}:b'), value: Buffer.from('2'), ttlMs: 0 },
    ]);
    expect(new Set(versions).size).toBe(1);
    const spread = Array.from({ length: 16 }, (_, i) => ({ type: 'put' as const, key: Buffer.from(`s${i}`), value: Buffer.from('x'), ttlMs: 0 }));
    const e = await rejection(leader.node.kv.batchWrite(spread));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/hash tag/);
  });

  it('scans linearizably on any replica (ReadIndex through the leader)', async () => {
    const follower = followerOf('{t}:a');
    const items: string[] = [];
    for await (const chunk of follower.node.kv.scan({
      tag: Buffer.from('t'),
      start: Buffer.alloc(0),
      end: Buffer.alloc(0),
      prefix: Buffer.alloc(0),
      limit: 0,
      cursor: '',
      read,
      keysOnly: false,
    }))
      for (const it of chunk.items) items.push(`${it.key}=${it.value}`);
    expect(items).toEqual(['{t}:a=1', '{t}:b=2']);
  });

  it("exports the Multi-Raft runtime's counters on /metrics (what a write costs in Raft work)", async () => {
    const scrape = async (n: TestNode): Promise<Map<string, number>> => {
      const text = await (await fetch(`${n.http}/metrics`)).text();
      const out = new Map<string, number>();
      for (const m of text.matchAll(/^(keyva_raft_[a-z_]+) ([0-9.e+]+)$/gm)) out.set(m[1] as string, Number(m[2]));
      return out;
    };
    const key = 'metrics-0';
    const leader = leaderOf(key);
    const before = await scrape(leader);
    for (const name of [
      'keyva_raft_turns',
      'keyva_raft_synced_writes',
      'keyva_raft_readies',
      'keyva_raft_messages_sent',
      'keyva_raft_batches_sent',
      'keyva_raft_messages_received',
      'keyva_raft_proposals',
    ])
      expect(before.has(name), name).toBe(true);
    for (let i = 0; i < 5; i++) await unary(leader.kv, 'put', { key: Buffer.from(key), value: Buffer.from(String(i)) });
    const after = await scrape(leader);
    expect((after.get('keyva_raft_proposals') ?? 0) - (before.get('keyva_raft_proposals') ?? 0)).toBe(5);
    // Each write went to the two followers at least once, and came back acknowledged.
    expect((after.get('keyva_raft_messages_sent') ?? 0) - (before.get('keyva_raft_messages_sent') ?? 0)).toBeGreaterThanOrEqual(10);
    expect((after.get('keyva_raft_messages_received') ?? 0) - (before.get('keyva_raft_messages_received') ?? 0)).toBeGreaterThanOrEqual(10);
    // ...in frames: at least one to each follower per write (writes one after the other), never more frames than messages.
    const frames = (after.get('keyva_raft_batches_sent') ?? 0) - (before.get('keyva_raft_batches_sent') ?? 0);
    expect(frames).toBeGreaterThanOrEqual(10);
    expect(frames).toBeLessThanOrEqual((after.get('keyva_raft_messages_sent') ?? 0) - (before.get('keyva_raft_messages_sent') ?? 0));
    expect((after.get('keyva_raft_turns') ?? 0) - (before.get('keyva_raft_turns') ?? 0)).toBeGreaterThanOrEqual(1);
  });

  it('serves a partition map listing every peer and the current leaders', async () => {
    const wire = await new Promise<GetPartitionMapResponseOut>((resolve, reject) =>
      (nodes[1] as TestNode).admin.getPartitionMap({}, (e, r) => (e || r === undefined ? reject(e) : resolve(r))),
    );
    const map = wire.map as NonNullable<GetPartitionMapResponseOut['map']>;
    expect(map.partitions).toHaveLength(PARTITIONS);
    for (const p of map.partitions) {
      expect([...p.replicas].sort()).toEqual(ids);
      expect(p.leaderHint).toBe(nodes.find((n) => n.node.raft?.status(groupOf(p.id))?.serving)?.node.nodeId);
    }
    expect(map.nodes.map((n) => n.id).sort()).toEqual(ids);
    expect(map.nodes.every((n) => n.grpcAddress !== '')).toBe(true);
  });

  it('LESSONS #10 — replica digests agree under concurrent writes; a replica changed behind Raft disagrees', async () => {
    const p = partitionOf('digest-0');
    const keys = Array.from({ length: 400 }, (_, i) => `digest-${i}`).filter((k) => partitionOf(k) === p);
    let writing = true;
    let written = 0;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const k = keys[i % keys.length] as string;
        await leaderOf(k)
          .node.kv.put({ key: Buffer.from(k), value: Buffer.from(`v${i}`), ttlMs: 0 })
          .then(() => written++)
          .catch(() => undefined);
      }
    })();
    type Digests = { readTs: string; replicas: { nodeId: string; ok: boolean; keyCount: string; checksum: string; complete: boolean; error: string }[] };
    const digest = () => unary<object, Digests>(leaderOf('digest-0').admin, 'PartitionDigest', { partitionId: p }, 30_000);
    try {
      await until(() => written >= keys.length, 10_000, 'a write to every key');
      for (let round = 0; round < 3; round++) {
        const d = await digest();
        expect(d.replicas.map((r) => r.nodeId).sort()).toEqual(ids);
        expect(
          d.replicas.every((r) => r.ok && r.complete),
          JSON.stringify(d.replicas),
        ).toBe(true);
        expect(new Set(d.replicas.map((r) => `${r.keyCount}/${r.checksum}`)).size).toBe(1);
        expect(Number(d.replicas[0]?.keyCount)).toBeGreaterThan(0);
      }
    } finally {
      writing = false;
      await writer;
    }
    // A follower's engine gets a row no log entry wrote (a key of this partition nobody wrote,
    // at an old timestamp, so it is visible at read_ts): its digest no longer matches.
    const bad = followerOf('digest-0');
    const rogue = Buffer.from(Array.from({ length: 400 }, (_, i) => `rogue-${i}`).find((k) => partitionOf(k) === p) as string);
    await bad.node.engine.write({
      mutations: [{ type: 'put', hash: keyHash(rogue), key: rogue, value: Buffer.from('x'), expiresAtMs: 0 }],
      commitTs: 1n,
      nowMs: 0,
      sync: false,
    });
    const d = await digest();
    const mine = d.replicas.find((r) => r.nodeId === bad.node.nodeId);
    const others = d.replicas.filter((r) => r.nodeId !== bad.node.nodeId);
    expect(new Set(others.map((r) => r.checksum)).size).toBe(1);
    expect(mine?.checksum).not.toBe(others[0]?.checksum);
    // Asked of a follower: NOT_LEADER with the leader's id; an unknown partition: WRONG_PARTITION.
    const f = await failure(unary(bad.admin, 'PartitionDigest', { partitionId: p }));
    expect(f.keyvaCode).toBe('NOT_LEADER');
    expect(f.meta.leaderHint).toBe(leaderOf('digest-0').node.nodeId);
    expect((await failure(unary(bad.admin, 'PartitionDigest', { partitionId: 77 }))).keyvaCode).toBe('WRONG_PARTITION');
  });

  it('hands leadership off on a graceful stop', async () => {
    const leader = leaderOf('alpha');
    const led = [...Array(PARTITIONS).keys()].map(groupOf).filter((g) => leader.node.raft?.status(g)?.serving);
    const t0 = performance.now();
    await leader.close();
    nodes.splice(nodes.indexOf(leader), 1);
    const stopMs = performance.now() - t0;
    expect(stopMs).toBeLessThan(3000);
    // Every group the stopped node led has a serving leader among the survivors sooner than an
    // election could make one (election timeout >= 10 ticks = 500 ms): it was handed off.
    expect(led.length).toBeGreaterThan(0);
    await until(() => led.every((g) => nodes.some((n) => n.node.raft?.status(g)?.serving)), 400, 'new leaders');
    const key = Buffer.from('alpha');
    expect((await leaderOf('alpha').node.kv.get({ key, read })).value.toString()).toBe('one');
  });
});
