/**
 * KvStore's replicated-mode decisions against a scripted Replicator (the real runtime is
 * exercised by e2e/src/routing.test.ts): one read barrier per partition for a batch get, keys of
 * partitions led elsewhere grouped by leader, snapshot timestamps closed only when needed, write
 * concerns passed through, and LEADER refused for conditional writes before anything is proposed.
 */
import { keyHash, type NodeId, PartitionMap, uniformPartitions } from '@keyva/client/keyspace';
import { beforeEach, describe, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { Timestamp } from '../engine/types.ts';
import { PartitionTable } from '../partition/partition-table.ts';
import type { GroupStatus } from '../replication/group-driver.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import type { ProposeOptions, ProposeResult } from '../replication/replication-results.ts';
import { KvStore, type Replicator } from './kv-store.ts';

const PARTITIONS = 4;
const SELF = 'n1' as NodeId;

class ScriptedReplicator implements Replicator {
  reads: GroupId[] = [];
  proposals: { group: GroupId; mutations: readonly DataMutation[]; opts: ProposeOptions | undefined }[] = [];
  leaders = new Map<GroupId, NodeId>();
  maxCommitTs = new Map<GroupId, Timestamp>();
  readonly clock: HybridClock;
  constructor(clock: HybridClock) {
    this.clock = clock;
  }
  async propose(group: GroupId, mutations: readonly DataMutation[], opts?: ProposeOptions): Promise<ProposeResult> {
    this.proposals.push({ group, mutations, opts });
    const commitTs = this.clock.now();
    this.maxCommitTs.set(group, commitTs);
    return { ok: true, index: 10, term: 1, commitTs, existed: mutations.map(() => false) };
  }
  async read(group: GroupId): Promise<void> {
    this.reads.push(group);
  }
  status(group: GroupId): GroupStatus | undefined {
    const leader = this.leaders.get(group) ?? SELF;
    return {
      leader,
      serving: leader === SELF,
      applied: { index: 10, term: 1, maxCommitTs: this.maxCommitTs.get(group) ?? 0n },
    } as unknown as GroupStatus;
  }
}

describe('KvStore in replicated mode', () => {
  let clock: HybridClock;
  let raft: ScriptedReplicator;
  let kv: KvStore;
  let engine: MemoryEngine;
  beforeEach(async () => {
    clock = new HybridClock();
    raft = new ScriptedReplicator(clock);
    engine = new MemoryEngine();
    await engine.open();
    const table = new PartitionTable(new PartitionMap(1n, uniformPartitions(PARTITIONS, [SELF, 'n2' as NodeId, 'n3' as NodeId])), SELF);
    kv = new KvStore(
      engine,
      table,
      clock,
      { keyBytesMax: 1024, valueBytesMax: 1024, ttlMsMax: 1e9, batchOpsMax: 1000, scanLimitMax: 1000, snapshotSkewMsMax: 5000 },
      undefined,
      raft,
    );
  });
  const keys = Array.from({ length: 40 }, (_, i) => Buffer.from(`key-${i}`));
  const groupOfKey = (k: Buffer) => (Number((keyHash(k) * BigInt(PARTITIONS)) >> 64n) + 1) as GroupId;

  it('a batch get passes one read barrier per partition, not one per key', async () => {
    const out = await kv.batchGet(keys, { consistency: 'linearizable' });
    expect(out).toHaveLength(keys.length);
    expect(new Set(keys.map(groupOfKey)).size).toBe(PARTITIONS);
    expect(raft.reads.sort()).toEqual([1, 2, 3, 4]);
  });

  it('groups the keys of partitions led elsewhere by leader, and answers the rest', async () => {
    raft.leaders.set(1 as GroupId, 'n2' as NodeId);
    raft.leaders.set(2 as GroupId, 'n3' as NodeId);
    raft.leaders.set(3 as GroupId, 'n2' as NodeId);
    const { results, remote } = await kv.batchGetParts(keys, { consistency: 'linearizable' });
    const byLeader = Object.fromEntries(remote.map((r) => [r.leader, r.indexes]));
    const expected = (gs: number[]) => keys.flatMap((k, i) => (gs.includes(groupOfKey(k)) ? [i] : []));
    expect(byLeader).toEqual({ n2: expected([1, 3]), n3: expected([2]) });
    for (const [i, k] of keys.entries()) expect(results[i] === undefined).toBe(groupOfKey(k) !== 4);
    expect(raft.reads).toEqual([4]);
    await expect(kv.batchGet(keys, { consistency: 'linearizable' })).rejects.toMatchObject({ code: 'NOT_LEADER' });
  });

  it('closes a snapshot timestamp with an empty proposal only when no applied entry is stamped at or above it', async () => {
    const k = keys[0] as Buffer;
    const g = groupOfKey(k);
    const ahead = clock.now() + (2000n << 16n);
    await kv.get({ key: k, read: { consistency: 'snapshot', snapshotTs: ahead } });
    expect(raft.proposals).toEqual([{ group: g, mutations: [], opts: undefined }]);
    // The leader's clock moved past the timestamp first, so the closing entry is stamped above it.
    expect(raft.maxCommitTs.get(g)).toBeGreaterThan(ahead);
    await kv.get({ key: k, read: { consistency: 'snapshot', snapshotTs: ahead } });
    expect(raft.proposals).toHaveLength(1);
    // Concurrent reads at timestamps up to one being closed share its proposal.
    const far = clock.now() + (3000n << 16n);
    await Promise.all([far, far - 5n, far - 10n].map((t) => kv.get({ key: k, read: { consistency: 'snapshot', snapshotTs: t } })));
    expect(raft.proposals).toHaveLength(2);
    // A replica that does not lead and has not applied past the timestamp: NOT_LEADER (forwarded).
    const other = keys.find((x) => groupOfKey(x) !== g) as Buffer;
    raft.leaders.set(groupOfKey(other), 'n2' as NodeId);
    raft.leaders.set(g, 'n2' as NodeId);
    await expect(kv.get({ key: other, read: { consistency: 'snapshot', snapshotTs: BigInt(Date.now() + 1000) << 16n } })).rejects.toMatchObject({
      code: 'NOT_LEADER',
      details: { leaderHint: 'n2' },
    });
    // ... but reads a closed timestamp locally, leader or not, with no barrier at all.
    raft.reads = [];
    await kv.get({ key: k, read: { consistency: 'snapshot', snapshotTs: ahead } });
    expect([raft.reads, raft.proposals.length]).toEqual([[], 2]);
  });

  it('passes write concerns through, and refuses LEADER for conditional writes before proposing', async () => {
    const k = keys[1] as Buffer;
    await kv.put({ key: k, value: Buffer.from('v'), ttlMs: 0 }, { concern: 'all', allTimeoutMs: 1234 });
    await kv.delete({ key: k }, { concern: 'leader' });
    expect(raft.proposals.map((p) => p.opts)).toEqual([
      { concern: 'all', allTimeoutMs: 1234 },
      { concern: 'leader', allTimeoutMs: undefined },
    ]);
    await expect(kv.put({ key: k, value: Buffer.from('v'), ttlMs: 0, condition: { kind: 'absent' } }, { concern: 'leader' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(raft.proposals).toHaveLength(2);
  });

  it('serves a follower read at the highest applied commit timestamp, and reports it as read_ts', async () => {
    const k = keys[3] as Buffer;
    const g = groupOfKey(k);
    const version = clock.now();
    await engine.write({
      mutations: [{ type: 'put', hash: keyHash(k), key: k, value: Buffer.from('v'), expiresAtMs: 0 }],
      commitTs: version,
      nowMs: 0,
      sync: false,
    });
    // Written to the engine but not yet confirmed applied (as while an apply is in flight): not shown.
    raft.maxCommitTs.set(g, version - 1n);
    const before = await kv.get({ key: k, read: { consistency: 'follower' } });
    expect([before.found, before.readTs]).toEqual([false, version - 1n]);
    raft.maxCommitTs.set(g, version);
    const after = await kv.get({ key: k, read: { consistency: 'follower' } });
    expect([after.found, after.version, after.readTs]).toEqual([true, version, version]);
  });

  it('serves follower reads after one barrier, then from the fresh replica without another', async () => {
    const k = keys[2] as Buffer;
    raft.leaders.set(groupOfKey(k), 'n2' as NodeId);
    await kv.get({ key: k, read: { consistency: 'follower', maxStalenessMs: 60_000 } });
    await kv.get({ key: k, read: { consistency: 'follower', maxStalenessMs: 60_000 } });
    expect(raft.reads).toEqual([groupOfKey(k)]);
    await expect(kv.get({ key: k, read: { consistency: 'follower', maxStalenessMs: 0 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Linearizable on a non-leader: NOT_LEADER (the server forwards it).
    await expect(kv.get({ key: k, read: { consistency: 'linearizable' } })).rejects.toMatchObject({ code: 'NOT_LEADER' });
  });
});
