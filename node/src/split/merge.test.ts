/**
 * Partition merges on three real nodes in this process (`startNode` with `--peers`, RocksDB in
 * temp dirs, real gRPC on 127.0.0.1; docs/adr/0010-splits.md "Merges"). One partition, split at
 * 2^63, then:
 * - refusals change nothing: the same id twice, unknown ids, partitions that are not adjacent
 *   (INVALID_ARGUMENT), a bare `merge_partitions` map change (INVALID_ARGUMENT, pointing to
 *   MergePartitions), and a replica that does not answer (CONDITION_FAILED, replicaUnavailable);
 * - MergePartitions(0, 1) while three SDK clients write to both halves and a reader reads: the map
 *   shows one partition, group 1 covers the whole space on every replica, group 2 is retired
 *   everywhere (Raft state gone under a tombstone with no range), no acknowledged write is lost and
 *   every key reads through the merged partition; writes continue; a repeat answers changed=false;
 * - a second split and merge with one node (not the meta leader) stopped right after the merge is recorded: the merge
 *   waits for it (its replica must apply the freeze; the other partition keeps taking writes),
 *   finishes after its restart, and nothing is lost;
 * - a restart of every node keeps the merged range and the data; a new split after the merges
 *   never reuses a merged partition's id.
 */
import type { KeyVa } from '@keyva/client';
import type { MergePartitionsResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStoredGroups } from '../membership/replica-hosting.ts';
import { appliedStateKey } from '../replication/raft-keys.ts';
import { eventually } from '../testing/eventually.ts';
import { keysEitherSide } from '../testing/keys-by-hash.ts';
import { NodeCluster } from '../testing/node-cluster.ts';
import { type CallError, failure, type TestNode, unary } from '../testing/test-node.ts';

const WAIT_MS = 30_000;
const HALF = 1n << 63n;
const Q3 = 3n << 62n;
const END = 1n << 64n;
const IDS = ['a', 'b', 'c'];

describe('partition merge: freeze, confirm, absorb, retire', () => {
  let cluster: NodeCluster;
  const acked = new Map<string, string>();

  const n = (id: string): TestNode => cluster.node(id);
  const connect = () => cluster.connect();
  const split = (via: string, partitionId: number, atHash: bigint) => cluster.splitPartition(via, partitionId, atHash);
  const merge = (via: string, leftId: number, rightId: number) => cluster.mergePartitions(via, leftId, rightId);
  const mapOf = (via: string) => cluster.partitionMap(via);
  const checkAll = async (kv: KeyVa) => {
    for (const [k, v] of acked) expect(await kv.getString(k), k).toBe(v);
  };

  beforeAll(async () => {
    cluster = await NodeCluster.start({
      ids: IDS,
      name: 'merge',
      config: { partitions: 1, raftTickMs: 50, replicationFactor: 3 },
      client: { deadlineMs: 20_000, retry: { attemptsMax: 50, maxDelayMs: 500 } },
      readyMs: WAIT_MS,
    });
  }, 60_000);

  afterAll(() => cluster?.close(), 30_000);

  it('merges while clients write, refuses what it cannot merge, waits for a stopped replica, and survives restarts', async () => {
    const kv = await connect();
    const { low, high } = keysEitherSide(HALF, 50);
    for (const k of [...low, ...high]) {
      await kv.put(k, `v0-${k}`);
      acked.set(k, `v0-${k}`);
    }
    expect((await split('a', 0, HALF)).applied).toBe(true);
    await eventually(() => IDS.every((id) => n(id).node.raft?.rangeOf(2)?.start === HALF), 'the split everywhere', WAIT_MS);

    // Refusals: nothing changes (the map's partitions; the epoch may move with node registrations).
    const epoch0 = n('a').node.meta.state.epoch;
    const parts0 = n('a').node.meta.state.partitions;
    expect((await failure(merge('a', 0, 0))).keyvaCode).toBe('INVALID_ARGUMENT');
    const unknown = await failure(merge('a', 0, 7));
    expect([unknown.keyvaCode, unknown.details]).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/does not exist/)]);
    const reversed = await failure(merge('a', 1, 0));
    expect([reversed.keyvaCode, reversed.details]).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/not adjacent/)]);
    const bare = await failure(unary(n('b').admin, 'UpdatePartitionMap', { expectedEpoch: epoch0.toString(), mergePartitions: { leftId: 0, rightId: 1 } }));
    expect([bare.keyvaCode, bare.details]).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/MergePartitions/)]);
    expect(n('a').node.meta.state.partitions).toEqual(parts0);
    for (const id of IDS) expect(n(id).node.raft?.rangeOf(1)).toEqual({ start: 0n, end: HALF });

    // The merge, while three SDK clients write to both halves and one reads.
    let writing = true;
    let reads = 0;
    const writers = [0, 1, 2].map(async (w) => {
      const c = await connect();
      for (let i = 0; writing; i++) {
        const k = `${(i % 2 === 0 ? low : high)[(i * 7 + w * 13) % 50]}-w${w}`;
        const v = `w${w}-${i}`;
        await c.put(k, v);
        acked.set(k, v);
      }
    });
    const reader = (async () => {
      const c = await connect();
      for (let i = 0; writing; i++) {
        const k = (i % 2 === 0 ? low : high)[i % 50] as string;
        expect(await c.getString(k)).toBe(acked.get(k));
        reads++;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const r = await merge('b', 0, 1);
    expect([r.changed, r.leftId, r.rightId, r.start, r.end, r.applied]).toEqual([true, 0, 1, '0', '0', true]);
    expect(BigInt(r.epoch)).toBeGreaterThan(epoch0);
    await new Promise((r) => setTimeout(r, 700));
    writing = false;
    await Promise.all([...writers, reader]);
    expect(reads).toBeGreaterThan(0);

    await eventually(
      () => IDS.every((id) => n(id).node.raft?.rangeOf(1)?.end === END && n(id).node.raft?.status(2) === undefined),
      'the merge applied and the right group retired everywhere',
      WAIT_MS,
    );
    for (const id of IDS) {
      const stored = await readStoredGroups(n(id).node.engine);
      expect(stored.tombstones.get(2)).toEqual({ start: 0n, end: 0n });
      expect(await n(id).node.engine.getRaw(appliedStateKey(2))).toBeUndefined();
    }
    expect((await mapOf('c')).map?.partitions.map((p) => [p.id, p.start, p.end])).toEqual([[0, '0', '0']]);
    await checkAll(kv);
    for (const k of [low[0], high[0]] as string[]) {
      await kv.put(k, `after-${k}`);
      acked.set(k, `after-${k}`);
    }
    await checkAll(kv);
    const again = await merge('c', 0, 1);
    expect([again.changed, again.applied]).toEqual([false, true]);

    // A new split never reuses the merged-away id 1.
    const s2 = await split('a', 0, HALF);
    expect(s2.newPartitionId).toBe(2);
    await eventually(() => IDS.every((id) => n(id).node.raft?.rangeOf(3)?.start === HALF), 'the second split everywhere', WAIT_MS);
    const s3 = await split('a', 2, Q3);
    expect(s3.newPartitionId).toBe(3);
    await eventually(() => IDS.every((id) => n(id).node.raft?.rangeOf(4)?.start === Q3), 'the third split everywhere', WAIT_MS);

    // Merge 2 and 3 with a replica stopped right after the merge is recorded: the absorb waits for
    // its freeze. The stopped replica is not the meta leader: a MergePartitions on a follower of the
    // meta group is forwarded to the leader and waits there, and a stopping leader would end it
    // (UNAVAILABLE; the CI flake of session 4 was that call ending CANCELLED, see
    // node/src/membership/peer-admin.test.ts). Should the meta leadership move to the stopped node
    // anyway, the call is repeated as a client does on UNAVAILABLE: it then finds the merge recorded.
    const via = 'a';
    const metaLeader = await eventually(() => cluster.metaLeader(), 'a meta leader', WAIT_MS);
    const down = IDS.find((id) => id !== via && id !== metaLeader) as string;
    let repeated = false;
    const pending = (async (): Promise<MergePartitionsResponseOut> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await merge(via, 2, 3);
        } catch (e) {
          if ((e as CallError).keyvaCode !== 'UNAVAILABLE' || attempt >= 3) throw e;
          repeated = true;
        }
      }
    })();
    await eventually(() => !n(via).node.meta.state.partitions.some((p) => p.id === 3), 'the merge recorded', WAIT_MS);
    await cluster.stop(down);
    // The other partition is unaffected; the merged range waits for the stopped node (every replica of the right group must apply the freeze).
    for (const k of low.slice(0, 10)) {
      await kv.put(k, `during-${k}`);
      acked.set(k, `during-${k}`);
    }
    await cluster.start(down);
    const m2 = await pending;
    expect([m2.changed || repeated, m2.applied]).toEqual([true, true]);
    for (const k of high.slice(0, 10)) {
      await kv.put(k, `during-${k}`);
      acked.set(k, `during-${k}`);
    }
    await eventually(
      () => IDS.every((id) => n(id).node.raft?.rangeOf(3)?.end === END && n(id).node.raft?.status(4) === undefined),
      'the second merge applied and retired everywhere',
      WAIT_MS,
    );
    await checkAll(kv);

    // Restart every node: ranges and data stay.
    await Promise.all(IDS.map((id) => cluster.stop(id)));
    await Promise.all(IDS.map((id) => cluster.start(id)));
    await cluster.ready();
    for (const id of IDS) {
      expect(n(id).node.raft?.rangeOf(1)).toEqual({ start: 0n, end: HALF });
      expect(n(id).node.raft?.rangeOf(3)).toEqual({ start: HALF, end: END });
      expect(n(id).node.raft?.status(2)).toBeUndefined();
      expect(n(id).node.raft?.status(4)).toBeUndefined();
    }
    const kv2 = await connect();
    await checkAll(kv2);
    await kv2.put(high[20] as string, 'after-restart');
    expect(await kv2.getString(high[20] as string)).toBe('after-restart');
  }, 120_000);

  it('refuses with CONDITION_FAILED while a replica does not answer, and changes nothing', async () => {
    await eventually(() => IDS.some((id) => n(id).node.raft?.status(1)?.serving === true), 'a leader', WAIT_MS);
    const s = await split('a', 0, 1n << 62n);
    await eventually(() => IDS.every((id) => n(id).node.raft?.rangeOf(s.newPartitionId + 1) !== undefined), 'the split everywhere', WAIT_MS);
    await cluster.stop('c');
    const before = n('a').node.meta.state.partitions;
    const down = await failure(merge('a', 0, s.newPartitionId));
    expect(down.keyvaCode).toBe('CONDITION_FAILED');
    expect(down.details).toMatch(/node c does not answer/);
    expect(down.meta.reason).toBe('replicaUnavailable');
    expect(n('a').node.meta.state.partitions).toEqual(before);
    expect(n('a').node.raft?.rangeOf(1)).toEqual({ start: 0n, end: 1n << 62n });
    await cluster.start('c');
  }, 60_000);
});
