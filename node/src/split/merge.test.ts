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
 * - a second split and merge with one node stopped right after the merge is recorded: the merge
 *   waits for it (its replica must apply the freeze; the other partition keeps taking writes),
 *   finishes after its restart, and nothing is lost;
 * - a restart of every node keeps the merged range and the data; a new split after the merges
 *   never reuses a merged partition's id.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyVa } from '@keyva/client';
import { keyHash } from '@keyva/client/keyspace';
import type { GetPartitionMapResponseOut, MergePartitionsResponseOut, SplitPartitionResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStoredGroups } from '../membership/replica-hosting.ts';
import { appliedStateKey } from '../replication/raft-keys.ts';
import { eventually } from '../testing/eventually.ts';
import { freePort } from '../testing/free-port.ts';
import { failure, startTestNode, type TestNode, unary } from '../testing/test-node.ts';

const WAIT_MS = 30_000;
const HALF = 1n << 63n;
const Q3 = 3n << 62n;
const END = 1n << 64n;
const IDS = ['a', 'b', 'c'];

describe('partition merge: freeze, confirm, absorb, retire', () => {
  const root = mkdtempSync(join(tmpdir(), 'keyva-merge-'));
  const ports = new Map<string, { grpc: number; http: number }>();
  const nodes = new Map<string, TestNode>();
  let peers = '';
  const acked = new Map<string, string>();
  const clients: KeyVa[] = [];

  const n = (id: string) => nodes.get(id) as TestNode;
  const start = async (id: string) => {
    const p = ports.get(id) as { grpc: number; http: number };
    nodes.set(
      id,
      await startTestNode(
        'rocksdb',
        { nodeId: id, grpcPort: p.grpc, httpPort: p.http, peers, partitions: 1, raftTickMs: 50, replicationFactor: 3 },
        join(root, id),
      ),
    );
  };
  const endpoints = () => IDS.map((id) => `127.0.0.1:${ports.get(id)?.grpc}`);
  const connect = async () => {
    const c = await KeyVa.connect({ endpoints: endpoints(), deadlineMs: 20_000, retry: { attemptsMax: 50, maxDelayMs: 500 } });
    clients.push(c);
    return c;
  };
  const split = (via: string, partitionId: number, atHash: bigint) =>
    unary<object, SplitPartitionResponseOut>(n(via).admin, 'SplitPartition', { partitionId, atHash: atHash.toString() }, 20_000);
  const merge = (via: string, leftId: number, rightId: number) =>
    unary<object, MergePartitionsResponseOut>(n(via).admin, 'MergePartitions', { leftId, rightId }, 30_000);
  const mapOf = (via: string) => unary<object, GetPartitionMapResponseOut>(n(via).admin, 'GetPartitionMap', { linearizable: true });
  const ready = () =>
    eventually(
      () => IDS.every((id) => (n(id).node.meta.state.epoch ?? 0n) > 0n) && IDS.some((id) => n(id).node.raft?.status(1)?.serving === true),
      'a map and a serving leader of group 1',
      WAIT_MS,
    );
  const checkAll = async (kv: KeyVa) => {
    for (const [k, v] of acked) expect(await kv.getString(k), k).toBe(v);
  };

  beforeAll(async () => {
    for (const id of IDS) ports.set(id, { grpc: await freePort(), http: await freePort() });
    peers = IDS.map((id) => `${id}=127.0.0.1:${ports.get(id)?.grpc}`).join(',');
    await Promise.all(IDS.map(start));
    await ready();
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await Promise.all([...nodes.values()].map((t) => t.close().catch(() => undefined)));
    rmSync(root, { recursive: true, force: true });
  }, 30_000);

  it('merges while clients write, refuses what it cannot merge, waits for a stopped replica, and survives restarts', async () => {
    const kv = await connect();
    const low: string[] = [];
    const high: string[] = [];
    for (let i = 0; low.length < 50 || high.length < 50; i++) {
      const k = `k${i}`;
      (keyHash(Buffer.from(k)) < HALF ? low : high).push(k);
    }
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

    // Merge 2 and 3 with c stopped right after the merge is recorded: the absorb waits for c's freeze.
    const recorded = n('a').node.meta.state.epoch;
    const pending = merge('a', 2, 3);
    await eventually(() => n('a').node.meta.state.epoch > recorded, 'the merge recorded', WAIT_MS);
    await n('c').close();
    // The other partition is unaffected; the merged range waits for c (every replica of the right group must apply the freeze).
    for (const k of low.slice(0, 10)) {
      await kv.put(k, `during-${k}`);
      acked.set(k, `during-${k}`);
    }
    await start('c');
    const m2 = await pending;
    expect([m2.changed, m2.applied]).toEqual([true, true]);
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
    await Promise.all(IDS.map((id) => n(id).close()));
    await Promise.all(IDS.map(start));
    await ready();
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
    await n('c').close();
    const before = n('a').node.meta.state.partitions;
    const down = await failure(merge('a', 0, s.newPartitionId));
    expect(down.keyvaCode).toBe('CONDITION_FAILED');
    expect(down.details).toMatch(/node c does not answer/);
    expect(down.meta.reason).toBe('replicaUnavailable');
    expect(n('a').node.meta.state.partitions).toEqual(before);
    expect(n('a').node.raft?.rangeOf(1)).toEqual({ start: 0n, end: 1n << 62n });
    await start('c');
  }, 60_000);
});
