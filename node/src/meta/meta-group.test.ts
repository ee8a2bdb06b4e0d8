/**
 * The meta group (group 0) in three real nodes in this process (`startNode` with `--peers`,
 * RocksDB in temp dirs, real gRPC on 127.0.0.1): the map is bootstrapped once and replicated,
 * every node registers its addresses, every node serves the same map (linearizably when asked);
 * changes through Admin.UpdatePartitionMap apply on the meta leader with compare-and-set on the
 * epoch, are refused clearly elsewhere (NOT_LEADER with the leader's id and address) or forwarded
 * by the internal API when asked; bytes that are not a meta command apply as a counted no-op on
 * every replica; and after every node restarts on its data the map is the same (not bootstrapped
 * again), before any election. A lone node serves the same API on its local map (epoch 1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeId, PartitionId } from '@keyva/client/keyspace';
import type { GetPartitionMapResponseOut, UpdatePartitionMapRequest } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../net/free-port.ts';
import { until } from '../replication/testing/replication-cluster.ts';
import { failure, startTestNode, type TestNode, unary } from '../testing/test-node.ts';
import { META_GROUP } from './meta-state-machine.ts';
import type { ReplicatedMeta } from './replicated-meta.ts';

const IDS = ['node-1', 'node-2', 'node-3'];
const PARTITIONS = 4;
const WAIT_MS = 20_000;

interface Spec {
  readonly id: string;
  readonly dir: string;
  readonly grpcPort: number;
  readonly httpPort: number;
}

type WireMap = NonNullable<GetPartitionMapResponseOut['map']>;

describe('meta group (group 0) on three nodes', () => {
  const root = mkdtempSync(join(tmpdir(), 'keyva-meta-'));
  const specs: Spec[] = [];
  let peers = '';
  let nodes: TestNode[] = [];

  const startAll = async () => {
    nodes = [];
    for (const s of specs)
      nodes.push(
        await startTestNode(
          'rocksdb',
          { nodeId: s.id, grpcPort: s.grpcPort, httpPort: s.httpPort, peers, partitions: PARTITIONS, raftTickMs: 50, replicationFactor: 3 },
          s.dir,
        ),
      );
  };
  const metaOf = (n: TestNode) => n.node.meta as ReplicatedMeta;
  const metaLeader = () => nodes.find((n) => n.node.raft?.status(META_GROUP)?.serving) as TestNode;
  const metaFollower = () => nodes.find((n) => n !== metaLeader()) as TestNode;
  const getMap = async (n: TestNode, linearizable = false): Promise<WireMap> =>
    (await unary<object, GetPartitionMapResponseOut>(n.admin, 'GetPartitionMap', { linearizable })).map as WireMap;
  const update = (n: TestNode, req: UpdatePartitionMapRequest) =>
    unary<UpdatePartitionMapRequest, { epoch: string; changed: boolean }>(n.admin, 'UpdatePartitionMap', req);
  const hostedCount = async (n: TestNode) => (await unary<object, { partitions: number }>(n.admin, 'NodeInfo', {})).partitions;
  /** The map without its live leader hints. */
  const routing = (m: WireMap) => ({ ...m, partitions: m.partitions.map((p) => ({ ...p, leaderHint: '' })) });
  const settled = async () => {
    await until(() => nodes.some((n) => n.node.raft?.status(META_GROUP)?.serving), WAIT_MS, 'a serving meta leader');
    await until(
      () =>
        nodes.every((n) => n.node.meta.state.nodes.length === IDS.length && n.node.meta.state.nodes.every((x) => x.httpAddress !== '')) &&
        new Set(nodes.map((n) => n.node.meta.state.epoch)).size === 1,
      WAIT_MS,
      'every node registered, one epoch everywhere',
    );
  };

  beforeAll(async () => {
    for (const id of IDS) specs.push({ id, dir: join(root, id), grpcPort: await freePort(), httpPort: await freePort() });
    peers = specs.map((s) => `${s.id}=127.0.0.1:${s.grpcPort}`).join(',');
    await startAll();
    await settled();
  }, 60_000);
  afterAll(async () => {
    for (const n of nodes) await n.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('bootstraps the map once and every node registers itself: epoch 1 + one change per node', async () => {
    for (const n of nodes) expect(n.node.meta.state.epoch).toBe(4n);
    const maps = await Promise.all(nodes.map((n) => getMap(n)));
    for (const m of maps) {
      expect(m.epoch).toBe('4');
      expect(m.partitions.map((p) => [p.id, p.generation, [...p.replicas].sort()])).toEqual([0, 1, 2, 3].map((id) => [id, '1', IDS]));
      expect(m.nodes).toEqual(
        specs.map((s) => ({
          id: s.id,
          grpcAddress: `127.0.0.1:${s.grpcPort}`,
          httpAddress: `127.0.0.1:${s.httpPort}`,
          state: 'ACTIVE',
          // Each node registers its data directory's incarnation (membership/node-identity.ts).
          incarnation: expect.stringMatching(/^[0-9a-f]{16}$/),
        })),
      );
      expect(routing(m)).toEqual(routing(maps[0] as WireMap));
    }
    // Leader hints are the live Raft leaders of the data groups. An election or a balancer
    // transfer may move one between reading the map and reading the leaders: read both again.
    const hintsOffLeaders = async () =>
      (await getMap(nodes[0] as TestNode)).partitions
        .map((p) => ({ id: p.id, hint: p.leaderHint, leader: nodes.find((n) => n.node.raft?.status(p.id + 1)?.serving)?.node.nodeId ?? '' }))
        .filter((x) => x.hint !== x.leader);
    await expect.poll(hintsOffLeaders, { timeout: 10_000, interval: 100 }).toEqual([]);
    // Only one bootstrap was applied: the other founders' proposals (if any) were refused.
    for (const n of nodes) expect(metaOf(n).stats.changes).toBe(4);
  });

  it('applies a split on the meta leader with compare-and-set on the epoch, and refuses merges', async () => {
    const leader = metaLeader();
    const follower = metaFollower();
    const before = await getMap(leader);
    const p3 = before.partitions.find((p) => p.id === 3) as WireMap['partitions'][number];
    const mid = ((BigInt(p3.start) + (1n << 64n)) / 2n).toString();
    const split = await update(leader, { expectedEpoch: before.epoch, splitPartition: { partitionId: 3, atHash: mid, newPartitionId: 9 } });
    expect(split).toEqual({ epoch: '5', changed: true });
    // A linearizable read on a follower sees the change at once.
    const seen = await getMap(follower, true);
    expect(seen.epoch).toBe('5');
    expect(seen.partitions.map((p) => [p.id, p.start, p.end, p.generation])).toContainEqual([9, mid, '0', '2']);
    expect(seen.partitions.find((p) => p.id === 3)).toMatchObject({ end: mid, generation: '2' });
    // Routing inside the node follows the meta map (NodeInfo counts the partitions it lists for the node).
    expect(await hostedCount(follower)).toBe(PARTITIONS + 1);

    // The same change again, planned against epoch 4: refused as stale, nothing changes.
    const stale = await failure(update(leader, { expectedEpoch: '4', splitPartition: { partitionId: 3, atHash: mid, newPartitionId: 10 } }));
    expect(stale.keyvaCode).toBe('CONDITION_FAILED');
    expect(stale.meta).toMatchObject({ reason: 'staleEpoch', epoch: '5' });
    expect(stale.details).toMatch(/expected epoch 4, but the map is at epoch 5/);

    // Merges are refused until the data plane carries them out (ADR 0010): nothing changes.
    const merge = await failure(update(leader, { expectedEpoch: '5', mergePartitions: { leftId: 3, rightId: 9 } }));
    expect(merge.keyvaCode).toBe('INVALID_ARGUMENT');
    expect(merge.details).toMatch(/merge partitions with Admin MergePartitions/);
    for (const n of nodes) expect(n.node.meta.state.epoch).toBe(5n);
    for (const n of nodes) expect(await hostedCount(n)).toBe(PARTITIONS + 1);
  });

  it('refuses malformed changes without proposing anything', async () => {
    const leader = metaLeader();
    const epoch = leader.node.meta.state.epoch.toString();
    const none = await failure(update(leader, { expectedEpoch: epoch }));
    expect(none.keyvaCode).toBe('INVALID_ARGUMENT');
    expect(none.details).toMatch(/needs one change/);
    const dup = await failure(update(leader, { expectedEpoch: epoch, setPartitionReplicas: { partitionId: 0, replicas: ['node-1', 'node-1'] } }));
    expect(dup.keyvaCode).toBe('INVALID_ARGUMENT');
    const unknown = await failure(update(leader, { expectedEpoch: epoch, setPartitionReplicas: { partitionId: 0, replicas: ['node-9'] } }));
    expect(unknown.meta).toMatchObject({ reason: 'unknownNode' });
    expect(leader.node.meta.state.epoch.toString()).toBe(epoch);
  });

  it('on a follower: refuses with NOT_LEADER naming the meta leader, or forwards when asked', async () => {
    const leader = metaLeader();
    const follower = metaFollower();
    const epoch = follower.node.meta.state.epoch;
    const drain = { kind: 'setNodeState', nodeId: follower.node.nodeId as NodeId, state: 'draining', expectedEpoch: epoch } as const;
    const refused = await failure(update(follower, { expectedEpoch: epoch.toString(), setNodeState: { nodeId: follower.node.nodeId, state: 'DRAINING' } }));
    expect(refused.keyvaCode).toBe('NOT_LEADER');
    expect(refused.meta).toMatchObject({ leaderHint: leader.node.nodeId, leaderAddress: leader.node.grpcAddress, group: '0' });
    await expect(follower.node.meta.proposeMetaChange(drain)).rejects.toMatchObject({ code: 'NOT_LEADER', details: { leaderHint: leader.node.nodeId } });

    const forwarded = await follower.node.meta.proposeMetaChange(drain, { forward: true });
    expect(forwarded).toEqual({ ok: true, epoch: epoch + 1n, changed: true });
    await until(() => nodes.every((n) => n.node.meta.state.epoch === epoch + 1n), WAIT_MS, 'the forwarded change everywhere');
    expect((await getMap(leader)).nodes.find((n) => n.id === follower.node.nodeId)?.state).toBe('DRAINING');
    // A refusal comes back through the forwarding too.
    const again = await follower.node.meta.proposeMetaChange(drain, { forward: true });
    expect(again).toMatchObject({ ok: false, reason: 'staleEpoch', epoch: epoch + 1n });
    const back = await follower.node.meta.proposeMetaChange({ ...drain, state: 'active', expectedEpoch: epoch + 1n }, { forward: true });
    expect(back).toEqual({ ok: true, epoch: epoch + 2n, changed: true });
  });

  it('applies an entry that is not a meta command as a counted no-op on every replica', async () => {
    const leader = metaLeader();
    const epoch = leader.node.meta.state.epoch;
    const before = nodes.map((n) => metaOf(n).stats.invalidCommands);
    const r = await leader.node.raft?.propose(META_GROUP, [{ type: 'put', hash: 7n, key: Buffer.from('not-meta'), value: Buffer.from('x'), expiresAtMs: 0 }]);
    expect(r?.ok).toBe(true);
    await until(() => nodes.every((n, i) => metaOf(n).stats.invalidCommands === (before[i] as number) + 1), WAIT_MS, 'the no-op applied everywhere');
    for (const n of nodes) expect(n.node.meta.state.epoch).toBe(epoch);
  });

  it('keeps the map across a restart of every node (loaded from disk, not bootstrapped again)', async () => {
    const leader = metaLeader();
    await leader.node.kv.put({ key: Buffer.from('{m}k'), value: Buffer.from('v'), ttlMs: 0 }).catch(() => undefined);
    const before = routing(await getMap(leader, true));
    const epoch = BigInt(before.epoch);
    for (const n of nodes) await n.close();
    await startAll();
    // Loaded at open, before any election.
    for (const n of nodes) expect(n.node.meta.state.epoch).toBe(epoch);
    for (const n of nodes) expect(routing(await getMap(n))).toEqual(before);
    await settled();
    // Same addresses: registering again changed nothing; nothing was bootstrapped again.
    for (const n of nodes) expect(n.node.meta.state.epoch).toBe(epoch);
    for (const n of nodes) expect(metaOf(n).stats.changes).toBe(0);
    expect(routing(await getMap(metaFollower(), true))).toEqual(before);
    // A change still goes through after the restart.
    const r = await metaLeader().node.meta.proposeMetaChange({
      kind: 'setPartitionReplicas',
      partitionId: 0 as PartitionId,
      replicas: ['node-1', 'node-2', 'node-3'] as NodeId[],
      expectedEpoch: epoch,
    });
    expect(r).toEqual({ ok: true, epoch, changed: false });
  }, 60_000);
});

describe('meta API on a lone node (no --peers)', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode('memory', { partitions: 2 });
  });
  afterAll(async () => {
    await node.close();
  });

  it('serves its local map at epoch 1 as before, and applies the same commands with the same refusals', async () => {
    const map = (await unary<object, GetPartitionMapResponseOut>(node.admin, 'GetPartitionMap', { linearizable: true })).map as WireMap;
    const self = node.node.nodeId;
    expect(map.epoch).toBe('1');
    expect(map.partitions.map((p) => [p.id, p.replicas, p.leaderHint])).toEqual([
      [0, [self], self],
      [1, [self], self],
    ]);
    // A memory engine registers no incarnation (its data directory is new at every start).
    expect(map.nodes).toEqual([{ id: self, grpcAddress: node.node.grpcAddress, httpAddress: node.node.httpAddress, state: 'ACTIVE', incarnation: '' }]);
    const split = await unary<UpdatePartitionMapRequest, { epoch: string }>(node.admin, 'UpdatePartitionMap', {
      expectedEpoch: '1',
      splitPartition: { partitionId: 1, atHash: ((3n << 64n) / 4n).toString(), newPartitionId: 2 },
    });
    expect(split).toEqual({ epoch: '2', changed: true });
    const stale = await failure(unary(node.admin, 'UpdatePartitionMap', { expectedEpoch: '1', mergePartitions: { leftId: 1, rightId: 2 } }));
    expect(stale.meta).toMatchObject({ reason: 'staleEpoch', epoch: '2' });
    const merged = await node.node.meta.proposeMetaChange({ kind: 'mergePartitions', leftId: 1 as PartitionId, rightId: 2 as PartitionId, expectedEpoch: 2n });
    expect(merged).toEqual({ ok: true, epoch: 3n, changed: true });
    expect((await unary<object, { partitions: number }>(node.admin, 'NodeInfo', {})).partitions).toBe(2);
    // Routing follows the local map: a write still lands.
    expect(await node.node.kv.put({ key: Buffer.from('k'), value: Buffer.from('v'), ttlMs: 0 })).toBeGreaterThan(0n);
  });
});
