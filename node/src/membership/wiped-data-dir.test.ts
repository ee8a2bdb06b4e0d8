/**
 * A founder whose data directory was wiped must not rejoin under its old id (node-identity.ts,
 * docs/adr/0008 "Wiped data directories"). Three real nodes in this process (RocksDB on disk,
 * real gRPC): every node registers its data directory's incarnation; a node restarted on its own
 * directory starts as before; the same node started on an empty directory is refused before it
 * opens a Raft group, with a message that says what to do, and the cluster keeps every
 * acknowledged write and keeps serving. Started while its peers are down (so the start-up check
 * gets no answer), it runs, but its peers refuse its Raft streams once they are back. A RegisterNode call with a malformed incarnation is
 * INVALID_ARGUMENT and changes nothing.
 */
import type { KeyVa } from '@keyva/client';
import type { GetPartitionMapResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually } from '../testing/eventually.ts';
import { NodeCluster } from '../testing/node-cluster.ts';
import { unary } from '../testing/test-node.ts';

const IDS = ['w1', 'w2', 'w3'];
const WAIT_MS = 30_000;
let cluster: NodeCluster;
let client: KeyVa;

async function registry(via: string): Promise<Map<string, string>> {
  const r = await unary<object, GetPartitionMapResponseOut>(cluster.node(via).admin, 'GetPartitionMap', { linearizable: true });
  return new Map((r.map?.nodes ?? []).map((n) => [n.id, n.incarnation]));
}

beforeAll(async () => {
  cluster = await NodeCluster.start({
    ids: IDS,
    name: 'wiped',
    config: { partitions: 2, raftTickMs: 50, replicationFactor: 3 },
    client: { deadlineMs: 20_000, retry: { attemptsMax: 50, maxDelayMs: 500 } },
    readyMs: WAIT_MS,
  });
  client = await cluster.connect();
}, 60_000);

afterAll(() => cluster?.close());

it('every node registers the incarnation of its data directory', { timeout: 60_000 }, async () => {
  await eventually(async () => [...(await registry('w1')).values()].filter((i) => /^[0-9a-f]{16}$/.test(i)).length === 3, 'three incarnations', WAIT_MS);
  const incarnations = await registry('w1');
  expect(new Set(incarnations.values()).size).toBe(3);
});

it('a node restarted on its own data directory starts as before', { timeout: 60_000 }, async () => {
  const before = (await registry('w1')).get('w3');
  await cluster.stop('w3');
  await cluster.start('w3');
  await eventually(async () => (await registry('w3')).get('w3') === before, 'w3 back with its incarnation', WAIT_MS);
});

it('refuses a node whose data directory was wiped, and the cluster keeps its writes and serves', { timeout: 90_000 }, async () => {
  for (let i = 0; i < 20; i++) await client.put(`wiped-${i}`, `v${i}`);
  const registered = (await registry('w1')).get('w2');
  await cluster.stop('w2');
  cluster.wipe('w2');
  await expect(cluster.start('w2')).rejects.toThrow(
    new RegExp(`node w2 registered before with data directory ${registered}.*wiped or replaced.*keyva node remove w2`),
  );
  // The registry still holds the old incarnation; the two others serve every acknowledged write and new ones.
  expect((await registry('w1')).get('w2')).toBe(registered);
  for (let i = 0; i < 20; i++) expect((await client.get(`wiped-${i}`))?.value.toString()).toBe(`v${i}`);
  await client.put('wiped-after', 'ok');
  expect((await client.get('wiped-after'))?.value.toString()).toBe('ok');
});

async function refusedStreams(id: string): Promise<number> {
  const text = await (await fetch(`${cluster.node(id).http}/metrics`)).text();
  const m = /^keyva_raft_streams_refused (\d+)/m.exec(text);
  return m === null ? 0 : Number(m[1]);
}

it('a wiped node that started while its peers were down is refused by them when they come back', { timeout: 120_000 }, async () => {
  const registered = (await registry('w1')).get('w2');
  // w2 is stopped and its directory wiped (test above). Its peers go down too, so its start-up check gets no answer.
  await cluster.stop('w1');
  await cluster.stop('w3');
  await cluster.start('w2');
  await Promise.all([cluster.start('w1'), cluster.start('w3')]);
  // The peers take nothing from it: its Raft streams are refused (counted in their metrics).
  await eventually(async () => (await refusedStreams('w1')) + (await refusedStreams('w3')) > 0, 'w2 refused by its peers', WAIT_MS);
  // w1 and w3 hold every acknowledged write and serve; the registry keeps w2's old incarnation.
  for (let i = 0; i < 20; i++) expect((await client.get(`wiped-${i}`))?.value.toString()).toBe(`v${i}`);
  expect((await client.get('wiped-after'))?.value.toString()).toBe('ok');
  await client.put('wiped-later', 'ok');
  expect((await registry('w1')).get('w2')).toBe(registered);
  // w2 leads nothing: with no peer taking its messages it cannot win an election.
  expect(
    cluster
      .node('w2')
      .node.raft?.groups()
      .filter((g) => cluster.node('w2').node.raft?.status(g)?.leader === 'w2'),
  ).toEqual([]);
});

it('RegisterNode with a malformed incarnation is INVALID_ARGUMENT and changes nothing', { timeout: 30_000 }, async () => {
  const before = await registry('w1');
  await expect(
    unary(cluster.node('w1').admin, 'RegisterNode', { node: { id: 'w9', grpcAddress: '127.0.0.1:1', httpAddress: '', incarnation: 'not-hex' } }),
  ).rejects.toMatchObject({ code: 3, details: expect.stringMatching(/incarnation must be 16 lowercase hex digits/) });
  expect(await registry('w1')).toEqual(before);
});
