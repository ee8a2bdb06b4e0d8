/**
 * Exactly-once writes on a real 3-node cluster (docs/adr/0011-exactly-once-writes.md): three
 * nodes in this process on RocksDB, talking real gRPC on loopback. A write resent with the same
 * request id — after another client's write and a leader change in between, over unary calls and
 * the pipelined stream, or twice at once — is applied once, on every replica, and answered with
 * the first application's version.
 */
import { randomBytes } from 'node:crypto';
import { keyHash } from '@keyva/client/keyspace';
import type { BatchWriteResponseOut, DeleteResponseOut, PutResponseOut, StreamRequest, StreamResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TS } from '../engine/types.ts';
import { groupOf } from '../kv/kv-store.ts';
import { freePort } from '../net/free-port.ts';
import { startTestNode, type TestNode, unary } from '../testing/test-node.ts';
import { until } from './testing/replication-cluster.ts';

const PARTITIONS = 2;

describe('exactly-once writes on a 3-node cluster', () => {
  const nodes: TestNode[] = [];
  const ids = ['node-1', 'node-2', 'node-3'];

  beforeAll(async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(',');
    for (const [i, id] of ids.entries())
      nodes.push(await startTestNode('rocksdb', { nodeId: id, grpcPort: ports[i], peers, partitions: PARTITIONS, raftTickMs: 50, leaderBalanceIntervalMs: 0 }));
    await until(
      () => Array.from({ length: PARTITIONS }, (_, p) => groupOf(p)).every((g) => nodes.some((n) => n.node.raft?.status(g)?.serving)),
      20_000,
      'a serving leader in every group',
    );
  }, 60_000);
  afterAll(async () => {
    for (const n of nodes) await n.close();
  });

  const groupOfKey = (key: string) => groupOf(Number((keyHash(Buffer.from(key)) * BigInt(PARTITIONS)) >> 64n));
  const leaderOf = (key: string) => nodes.find((n) => n.node.raft?.status(groupOfKey(key))?.serving);
  const servingLeader = async (key: string) => {
    await until(() => leaderOf(key) !== undefined, 20_000, `a serving leader for ${key}`);
    return leaderOf(key) as TestNode;
  };
  /** Moves the leadership of `key`'s group to another node and waits until it serves. */
  const changeLeader = async (key: string): Promise<TestNode> => {
    const old = await servingLeader(key);
    const to = nodes.find((n) => n !== old) as TestNode;
    const g = groupOfKey(key);
    await until(
      () => {
        if (to.node.raft?.status(g)?.serving) return true;
        old.node.raft?.transferLeader(g, to.node.nodeId);
        return false;
      },
      20_000,
      `leadership of group ${g} on ${to.node.nodeId}`,
    );
    return to;
  };
  /** What every replica stores under `key` once it applied everything the leader did. */
  const everywhere = async (key: string) => {
    const g = groupOfKey(key);
    const leader = await servingLeader(key);
    const index = leader.node.raft?.status(g)?.applied.index ?? 0;
    await until(() => nodes.every((n) => (n.node.raft?.status(g)?.applied.index ?? 0) >= index), 20_000, 'every replica caught up');
    return Promise.all(
      nodes.map(async (n) => {
        const v = await n.node.engine.get(keyHash(Buffer.from(key)), Buffer.from(key), MAX_TS, Date.now());
        return v === undefined ? undefined : `${v.value}@${v.version}`;
      }),
    );
  };
  /** One request over a fresh `KV.Stream` call. */
  const overStream = (n: TestNode, req: StreamRequest) =>
    new Promise<StreamResponseOut>((resolve, reject) => {
      const call = n.kv.Stream();
      call.on('data', (r: StreamResponseOut) => {
        resolve(r);
        call.end();
      });
      call.on('error', reject);
      call.write(req);
    });

  it('a put resent after another write and a leader change applies once and answers the first version', async () => {
    const key = 'exactly-once';
    const requestId = randomBytes(16);
    const first = await servingLeader(key);
    const put = { key: Buffer.from(key), value: Buffer.from('first'), requestId };
    const a = await unary<object, PutResponseOut>(first.kv, 'Put', put);
    // Another client's write, then the leadership moves.
    const b = await unary<object, PutResponseOut>(first.kv, 'Put', { key: Buffer.from(key), value: Buffer.from('second') });
    expect(BigInt(b.version)).toBeGreaterThan(BigInt(a.version));
    const second = await changeLeader(key);
    expect(second).not.toBe(first);

    // The delayed resend, to the new leader: not applied again; the first application's version.
    const again = await unary<object, PutResponseOut>(second.kv, 'Put', put);
    expect(again.version).toBe(a.version);
    const streamed = await overStream(second, { id: '1', put });
    expect(streamed.put?.version).toBe(a.version);
    expect(await everywhere(key)).toEqual(nodes.map(() => `second@${b.version}`));

    // The same bytes without a request id (or with another one) are a new write.
    const other = await unary<object, PutResponseOut>(second.kv, 'Put', { ...put, requestId: randomBytes(16) });
    expect(BigInt(other.version)).toBeGreaterThan(BigInt(b.version));
  });

  it('two copies of one request proposed at once apply once; deletes and batches are deduplicated too', async () => {
    const key = 'concurrent';
    const leader = await servingLeader(key);
    const put = { key: Buffer.from(key), value: Buffer.from('x'), requestId: randomBytes(16) };
    const [p1, p2] = await Promise.all([unary<object, PutResponseOut>(leader.kv, 'Put', put), unary<object, PutResponseOut>(leader.kv, 'Put', put)]);
    expect(p1.version).toBe(p2.version);
    expect(await everywhere(key)).toEqual(nodes.map(() => `x@${p1.version}`));

    const del = { key: Buffer.from(key), requestId: randomBytes(16) };
    const d1 = await unary<object, DeleteResponseOut>(leader.kv, 'Delete', del);
    expect(d1.deleted).toBe(true);
    await unary<object, PutResponseOut>(leader.kv, 'Put', { key: Buffer.from(key), value: Buffer.from('after') });
    const moved = await changeLeader(key);
    const d2 = await unary<object, DeleteResponseOut>(moved.kv, 'Delete', del);
    expect(d2.version).toBe(d1.version);
    expect((await everywhere(key)).map((v) => v?.split('@')[0])).toEqual(nodes.map(() => 'after'));

    const batch = {
      mutations: [{ put: { key: Buffer.from('{b}1'), value: Buffer.from('1') } }, { put: { key: Buffer.from('{b}2'), value: Buffer.from('2') } }],
      requestId: randomBytes(16),
    };
    const bl = await servingLeader('{b}1');
    const w1 = await unary<object, BatchWriteResponseOut>(bl.kv, 'BatchWrite', batch);
    const w2 = await unary<object, BatchWriteResponseOut>(bl.kv, 'BatchWrite', batch);
    expect(w2.versions).toEqual(w1.versions);
  });

  it('request records never show in scans; a request id of the wrong length is refused', async () => {
    const leader = nodes[0] as TestNode;
    const keys: string[] = [];
    for (const n of nodes) {
      for await (const chunk of n.node.kv.scan({
        tag: Buffer.alloc(0),
        start: Buffer.alloc(0),
        end: Buffer.alloc(0),
        prefix: Buffer.alloc(0),
        limit: 0,
        cursor: '',
        read: { consistency: 'follower' },
        keysOnly: true,
      }))
        for (const it of chunk.items) keys.push(it.key.toString('latin1'));
    }
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => k.includes('keyva.request-id'))).toEqual([]);
    const bad = await unary<object, PutResponseOut>(leader.kv, 'Put', { key: Buffer.from('k'), value: Buffer.from('v'), requestId: Buffer.alloc(5) }).then(
      () => undefined,
      (e: { keyvaCode?: string; meta?: Record<string, string> }) => e,
    );
    expect(bad?.keyvaCode).toBe('INVALID_ARGUMENT');
    expect(bad?.meta?.field).toBe('request_id');
  });
});
