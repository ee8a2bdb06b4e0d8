/**
 * Replica membership over the Admin API on four real nodes in this process (`startNode` with
 * `--peers`, RocksDB in temp dirs, real gRPC on 127.0.0.1): a, b, c found the cluster (RF 3),
 * d joins (`--join`). While a client writes to partition 0, d is added as a learner (hosting an
 * empty replica, caught up by the leader), refused promotion while it is down and behind, keeps
 * hosting the group across its restart, is promoted once caught up, takes the leadership; c is
 * removed and its replica (data and raft state) deleted; d serves every acknowledged write.
 * Repeated calls are idempotent; removal below the replication factor and of the leader are refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyHash, type NodeId } from '@keyva/client/keyspace';
import type { ListPartitionReplicasResponseOut, MembershipChangeResponseOut, PartitionReplicasResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TS } from '../engine/types.ts';
import { freePort } from '../net/free-port.ts';
import { ConfChangeType, type Entry, replicaId } from '../raft/types.ts';
import { until } from '../replication/testing/replication-cluster.ts';
import { eventually } from '../testing/eventually.ts';
import { failure, startTestNode, type TestNode, unary } from '../testing/test-node.ts';
import { groupRawRows } from './replica-hosting.ts';
import { removalConfirmed } from './replica-membership.ts';

const WAIT_MS = 20_000;
const PARTITION = 0;
const GROUP = PARTITION + 1;
const HALF = 1n << 63n;

interface Spec {
  readonly id: string;
  readonly dir: string;
  readonly grpcPort: number;
  readonly httpPort: number;
}

/** A hash tag whose keys all land in partition 0 (the lower half of the hash space with 2 partitions). */

function tagInPartition0(): string {
  for (let i = 0; ; i++) if (keyHash(Buffer.from(`{t${i}}`)) < HALF) return `{t${i}}`;
}

describe('replica membership: add a learner, promote, transfer, remove', () => {
  const root = mkdtempSync(join(tmpdir(), 'keyva-membership-'));
  const specs = new Map<string, Spec>();
  const nodes = new Map<string, TestNode>();
  let founders = '';
  let joinPeers = '';
  const tag = tagInPartition0();
  const acked = new Map<string, string>();
  let writing = false;
  let writer: Promise<void> | undefined;
  let seq = 0;

  const start = async (id: string) => {
    const s = specs.get(id) as Spec;
    const join = id === 'd';
    nodes.set(
      id,
      await startTestNode(
        'rocksdb',
        {
          nodeId: id,
          grpcPort: s.grpcPort,
          httpPort: s.httpPort,
          peers: join ? joinPeers : founders,
          join,
          partitions: 2,
          raftTickMs: 50,
          replicationFactor: 3,
          // The balancer off: these tests move leadership themselves (TransferLeader to d) and then
          // address the leader they chose; a balancer transfer in between would move it away.
          leaderBalanceIntervalMs: 0,
        },
        s.dir,
      ),
    );
  };
  const n = (id: string) => nodes.get(id) as TestNode;
  const leaderId = () => [...nodes.entries()].find(([, t]) => t.node.raft?.status(GROUP)?.serving)?.[0];
  const admin = <Res>(id: string, method: string, req: object) => unary<object, Res>(n(id).admin, method, req);
  const change = (id: string, method: string, nodeId: string, extra: object = {}) =>
    admin<MembershipChangeResponseOut>(id, method, { partitionId: PARTITION, nodeId, ...extra });
  const replicas = (id: string) => admin<PartitionReplicasResponseOut>(id, 'GetPartitionReplicas', { partitionId: PARTITION });
  const put = async (via: string, key: string, value: string) => {
    await unary(n(via).kv, 'Put', { key: Buffer.from(key), value: Buffer.from(value) });
    acked.set(key, value);
  };
  const metaLeader = () => [...nodes.values()].find((t) => t.node.raft?.status(0)?.serving) as TestNode;
  const setReplicas = async (replicaIds: string[]) => {
    const m = metaLeader();
    const r = await m.node.meta.proposeMetaChange({
      kind: 'setPartitionReplicas',
      partitionId: PARTITION as never,
      replicas: replicaIds as NodeId[],
      expectedEpoch: m.node.meta.state.epoch,
    });
    expect(r.ok).toBe(true);
  };

  beforeAll(async () => {
    for (const id of ['a', 'b', 'c', 'd']) specs.set(id, { id, dir: join(root, id), grpcPort: await freePort(), httpPort: await freePort() });
    const addr = (id: string) => `${id}=127.0.0.1:${specs.get(id)?.grpcPort}`;
    founders = ['a', 'b', 'c'].map(addr).join(',');
    joinPeers = ['a', 'b', 'c', 'd'].map(addr).join(',');
    for (const id of ['a', 'b', 'c', 'd']) await start(id);
    // d registered itself through a founder; every group has a serving leader.
    await until(() => n('a').node.meta.state.nodes.some((x) => x.id === 'd' && x.httpAddress !== ''), WAIT_MS, 'd registered');
    await until(() => leaderId() !== undefined, WAIT_MS, 'a leader of partition 0');
  }, 60_000);
  afterAll(async () => {
    writing = false;
    await writer;
    for (const t of nodes.values()) await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('a joining node hosts nothing until asked', () => {
    expect(n('d').node.raft?.groups()).toEqual([]);
    expect(n('d').node.meta.state.epoch).toBe(0n);
  });

  it('refuses (retryable, nothing changed) to host a range that overlaps a group hosted here', async () => {
    // a hosts partition 0 ([0, 2^63), group 1): a replica of a partition over [2^62, 2^63 + 1)
    // would share rows with it (what a split-off child next to a parent that has not applied the
    // split yet would do: docs/adr/0010-splits.md "Replica divergence found by digests").
    const e = await failure(admin('a', 'HostReplica', { partitionId: 5, start: (HALF / 2n).toString(), end: (HALF + 1n).toString() }));
    expect(e.keyvaCode).toBe('UNAVAILABLE');
    expect(e.meta).toMatchObject({ partitionId: '5', overlappingGroup: String(GROUP) });
    expect(n('a').node.raft?.groups()).not.toContain(6);
    expect(await groupRawRows(n('a').node.engine, 6)).toBe(0);
  });

  it('adds d as a learner while a client writes; repeats are no-ops; followers answer NOT_LEADER', async () => {
    writing = true;
    writer = (async () => {
      while (writing) {
        const i = seq++;
        await put('a', `${tag}k${i}`, `v${i}`).catch(() => undefined);
      }
    })();
    await until(() => acked.size >= 30, WAIT_MS, 'writes before the change');
    const leader = leaderId() as string;
    const follower = ['a', 'b', 'c'].find((x) => x !== leader) as string;
    const notLeader = await failure(change(follower, 'AddLearner', 'd'));
    expect(notLeader.keyvaCode).toBe('NOT_LEADER');
    expect(notLeader.meta).toMatchObject({ leaderHint: leader, partitionId: '0' });

    const added = await change(leader, 'AddLearner', 'd');
    expect(added.changed).toBe(true);
    expect(added.replicas?.replicas.find((r) => r.nodeId === 'd')?.role).toBe('LEARNER');
    expect(n('d').node.raft?.groups()).toEqual([GROUP]);
    expect((await change(leader, 'AddLearner', 'd')).changed).toBe(false);
    await until(() => acked.size >= 80, WAIT_MS, 'writes during the change');
    // Not a learner: cannot be promoted; unknown node: cannot be added.
    expect((await failure(change(leader, 'PromoteLearner', 'zz'))).meta).toMatchObject({ reason: 'notLearner' });
    expect((await failure(change(leader, 'AddLearner', 'zz'))).meta).toMatchObject({ reason: 'unknownNode' });
  });

  it('refuses to promote a learner that is down and behind; d keeps hosting the group across its restart', async () => {
    await n('d').close();
    nodes.delete('d');
    const leader = leaderId() as string;
    const before = acked.size;
    await until(() => acked.size >= before + 150, WAIT_MS, 'writes while d is down');
    const behind = await failure(change(leader, 'PromoteLearner', 'd'));
    expect(behind.keyvaCode).toBe('CONDITION_FAILED');
    expect(behind.meta).toMatchObject({ reason: 'learnerBehind', nodeId: 'd' });
    expect(behind.details).toMatch(/not caught up: match index \d+, leader's last index \d+/);
    const st = await replicas(leader);
    expect(st.replicas.find((r) => r.nodeId === 'd')).toMatchObject({ role: 'LEARNER', caughtUp: false, reachable: false });

    await start('d');
    // Hosted again at once, from its durable hosting record (the map does not list d yet).
    expect(n('d').node.raft?.groups()).toEqual([GROUP]);
    await until(() => (n('d').node.raft?.status(GROUP)?.applied.index ?? 0) > 0, WAIT_MS, 'd applying again');
  }, 40_000);

  it('promotes d once caught up (idempotently), hands it the leadership, and d serves every acknowledged write', async () => {
    let leader = leaderId() as string;
    await until(
      () => {
        const st = n(leader).node.raft?.raftStatus(GROUP);
        const match = st?.progress.get(replicaId('d'))?.match ?? 0;
        return st !== undefined && match + 100 >= st.lastIndex;
      },
      WAIT_MS,
      'd caught up',
    );
    const promoted = await change(leader, 'PromoteLearner', 'd');
    expect(promoted.changed).toBe(true);
    expect(promoted.replicas?.replicas.map((r) => [r.nodeId, r.role])).toEqual([
      ['a', 'VOTER'],
      ['b', 'VOTER'],
      ['c', 'VOTER'],
      ['d', 'VOTER'],
    ]);
    expect((await change(leader, 'PromoteLearner', 'd')).changed).toBe(false);
    await setReplicas(['a', 'b', 'c', 'd']);
    writing = false;
    await writer;

    leader = leaderId() as string;
    const moved = await admin<{ changed: boolean; leader: string }>(leader, 'TransferLeader', { partitionId: PARTITION, toNodeId: 'd' });
    expect(moved).toEqual({ changed: leader !== 'd', leader: 'd' });
    await until(() => n('d').node.raft?.status(GROUP)?.serving === true, WAIT_MS, 'd serving');
    const st = await replicas('d');
    expect(st.leader).toBe('d');
    // A new leader learns its followers' match indexes from their first answers.
    await eventually(async () => (await replicas('d')).replicas.every((r) => r.caughtUp && r.reachable), 'd seeing every replica caught up');
    // The controller's poll (leader_view_only): the same replicas and progress, and no other
    // replica asked: theirs read as not asked (applied 0, reachable false) although all are up.
    const view = await admin<PartitionReplicasResponseOut>('d', 'GetPartitionReplicas', { partitionId: PARTITION, leaderViewOnly: true });
    expect(view.leader).toBe('d');
    expect(view.replicas.map((r) => [r.nodeId, r.caughtUp, r.reachable, r.appliedIndex !== '0'])).toEqual(
      ['a', 'b', 'c', 'd'].map((id) => [id, true, id === 'd', id === 'd']),
    );
    // ListPartitionReplicas: the same view, of the listed partitions the node leads (once each);
    // a follower and a partition hosted nowhere are left out; too many ids are refused.
    const listed = await admin<ListPartitionReplicasResponseOut>('d', 'ListPartitionReplicas', { partitionIds: [PARTITION, 999, PARTITION] });
    expect(listed.partitions.map((p) => [p.partitionId, p.leader, p.replicas.map((r) => [r.nodeId, r.reachable])])).toEqual([
      [PARTITION, 'd', view.replicas.map((r) => [r.nodeId, r.reachable])],
    ]);
    expect((await admin<ListPartitionReplicasResponseOut>('a', 'ListPartitionReplicas', { partitionIds: [PARTITION] })).partitions).toEqual([]);
    await expect(admin('d', 'ListPartitionReplicas', { partitionIds: Array.from({ length: 10_001 }, (_, i) => i) })).rejects.toThrow(
      /at most 10000 partition ids per call/,
    );
    expect(acked.size).toBeGreaterThan(200);
    // d holds every acknowledged write ...
    for (const [key, value] of acked) {
      const v = await n('d').node.engine.get(keyHash(Buffer.from(key)), Buffer.from(key), MAX_TS, Date.now());
      expect(v?.value.toString(), key).toBe(value);
    }
    // ... and serves them (linearizable, as the leader) once its routing map, fetched from the founders, lists it.
    await eventually(async () => {
      const m = await admin<{ map: { partitions: { id: number; replicas: string[] }[] } }>('d', 'GetPartitionMap', {});
      return m.map.partitions.find((p) => p.id === PARTITION)?.replicas.includes('d') === true;
    }, "d's map lists d");
    for (const [key, value] of acked) {
      const r = await unary<object, { found: boolean; value: Buffer }>(n('d').kv, 'Get', { key: Buffer.from(key) });
      expect(r.found, key).toBe(true);
      expect(r.value.toString()).toBe(value);
    }
    const sample = [...acked.keys()].slice(-5);
    for (const key of sample) {
      const r = await unary<object, { found: boolean; value: Buffer }>(n('b').kv, 'Get', { key: Buffer.from(key) });
      expect(r.found).toBe(true);
      expect(r.value.toString()).toBe(acked.get(key));
    }
  }, 40_000);

  it('removes c: its replica stops and its data is deleted; the leader and a removal below RF (by healthy voters) are refused', async () => {
    expect(n('c').node.raft?.groups()).toContain(GROUP);
    const cRows = await n('c').node.engine.scan({ startHash: 0n, endHash: HALF }, MAX_TS, 0, 10);
    expect(cRows.items.length).toBeGreaterThan(0);
    expect((await failure(change('d', 'RemoveReplica', 'd'))).meta).toMatchObject({ reason: 'removingLeader' });

    // Health counts, not membership: with b down, removing c would leave two working voters of four.
    await n('b').close();
    nodes.delete('b');
    const unhealthy = await failure(change('d', 'RemoveReplica', 'c'));
    expect(unhealthy.keyvaCode).toBe('CONDITION_FAILED');
    expect(unhealthy.meta).toMatchObject({ reason: 'belowReplicationFactor', voters: '4', healthyRemaining: '2' });
    expect((await replicas('d')).replicas.map((r) => r.nodeId)).toEqual(['a', 'b', 'c', 'd']);
    await start('b');
    await eventually(async () => (await replicas('d')).replicas.every((r) => r.reachable && r.caughtUp), 'b back and caught up');

    const removed = await change('d', 'RemoveReplica', 'c');
    expect(removed.changed).toBe(true);
    expect(removed.replicas?.replicas.map((r) => r.nodeId)).toEqual(['a', 'b', 'd']);
    await until(() => !(n('c').node.raft?.groups() ?? []).includes(GROUP), WAIT_MS, 'c stopped the group');
    expect(removed.dropped).toBe(true);
    const after = await n('c').node.engine.scan({ startHash: 0n, endHash: HALF }, MAX_TS, 0, 10);
    expect(after.items).toEqual([]);
    expect(await groupRawRows(n('c').node.engine, GROUP)).toBe(0);
    // Partition 1 on c is untouched.
    expect(n('c').node.raft?.groups()).toContain(2);
    expect((await change('d', 'RemoveReplica', 'c')).changed).toBe(false);
    await setReplicas(['a', 'b', 'd']);

    const below = await failure(change('d', 'RemoveReplica', 'b'));
    expect(below.keyvaCode).toBe('CONDITION_FAILED');
    expect(below.meta).toMatchObject({ reason: 'belowReplicationFactor', voters: '3', replicationFactor: '3' });
    expect((await replicas('d')).replicas.map((r) => r.nodeId)).toEqual(['a', 'b', 'd']);
    // Writes still commit on a, b, d.
    await put('a', `${tag}after`, 'x');
    const v = await unary<object, { found: boolean; value: Buffer }>(n('d').kv, 'Get', { key: Buffer.from(`${tag}after`) });
    expect(v.value.toString()).toBe('x');
  }, 40_000);

  it('c restarted does not host the removed group again', async () => {
    await n('c').close();
    await start('c');
    expect(n('c').node.raft?.groups()).not.toContain(GROUP);
    expect(n('c').node.raft?.groups()).toContain(2);
  }, 30_000);
});

describe('removalConfirmed', () => {
  const c = replicaId('c');
  const cc = (index: number, term: number, type: (typeof ConfChangeType)[keyof typeof ConfChangeType]): Entry => ({
    type: 'confChange',
    index,
    term,
    change: { type, replica: c },
  });
  const conf = (voters: string[]) => ({ voters: voters.map(replicaId), learners: [] });

  it('confirms an applied removal of itself, or a removal entry the leader names that its log holds', () => {
    expect(removalConfirmed(c, { applied: 10, lastIndex: 10, confState: conf(['a', 'b']) }, [cc(9, 2, ConfChangeType.RemoveReplica)])).toBe(true);
    expect(
      removalConfirmed(c, { applied: 8, lastIndex: 10, confState: conf(['a', 'b', 'c']) }, [cc(9, 2, ConfChangeType.RemoveReplica)], { index: 9, term: 2 }),
    ).toBe(true);
  });

  it('refuses otherwise: a new replica whose snapshot predates its addition, another term, a later re-add', () => {
    // A learner caught up from a snapshot that does not list it yet: not a member, but never removed.
    expect(removalConfirmed(c, { applied: 5, lastIndex: 6, confState: conf(['a', 'b']) }, [cc(6, 2, ConfChangeType.AddLearner)])).toBe(false);
    expect(
      removalConfirmed(c, { applied: 8, lastIndex: 10, confState: conf(['a', 'b', 'c']) }, [cc(9, 2, ConfChangeType.RemoveReplica)], { index: 9, term: 3 }),
    ).toBe(false);
    expect(removalConfirmed(c, { applied: 8, lastIndex: 10, confState: conf(['a', 'b', 'c']) }, [], { index: 9, term: 2 })).toBe(false);
    expect(
      removalConfirmed(c, { applied: 12, lastIndex: 12, confState: conf(['a', 'b']) }, [
        cc(9, 2, ConfChangeType.RemoveReplica),
        cc(11, 2, ConfChangeType.AddLearner),
      ]),
    ).toBe(false);
  });
});
