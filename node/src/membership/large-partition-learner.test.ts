/**
 * A learner added to a partition whose log the leader compacted: snapshots are streamed (ADR
 * 0008 §9), so any partition size compacts, and the new replica is caught up from a streamed
 * snapshot (in chunks of 64 KiB here) plus the log after it. Three voters and one empty learner
 * over real gRPC on loopback, memory engines. (The > 20 MiB case on RocksDB is in
 * `node/src/replication/snapshot-stream.test.ts`.)
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import { digestPartition } from '../kv/partition-digest.ts';
import { ConfChangeType, replicaId } from '../raft/types.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { ReplicationCluster, until } from '../replication/testing/replication-cluster.ts';

const VOTERS = ['n1', 'n2', 'n3'] as NodeId[];
const RANGE = { start: 0n, end: 1n << 64n };
const VALUE_BYTES = 4096;
const ROWS = 60; // ~240 KiB: several chunks

async function memoryEngine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

describe('adding a learner to a partition whose log is compacted', () => {
  const c = new ReplicationCluster({ tickMs: 25, logEntriesMax: 10 });
  afterAll(() => c.stopAll());

  it('compacts the log whatever the size, and the learner catches up from a streamed snapshot plus the log', async () => {
    for (const id of VOTERS) await c.start(id, await memoryEngine(), [{ group: 1, range: RANGE, bootstrap: VOTERS }], {}, { snapshotChunkBytes: 64 * 1024 });
    const learnerEngine = await memoryEngine();
    await c.start('n4', learnerEngine, [{ group: 1, range: RANGE }]);
    const put = (i: number): DataMutation => ({
      type: 'put',
      hash: 1000n + BigInt(i),
      key: Buffer.from(`k${i}`),
      value: Buffer.alloc(VALUE_BYTES, i % 251),
      expiresAtMs: 0,
    });
    for (let i = 0; i < ROWS; i++) {
      for (;;) {
        const { node } = await c.waitForLeader(1, 8000);
        const r = await node.runtime.propose(1, [put(i)]);
        if (r.ok) break;
        await new Promise((res) => setTimeout(res, 25));
      }
    }
    const leader = (await c.waitForLeader(1, 8000)).node;
    await until(() => (leader.runtime.raftStatus(1)?.firstIndex ?? 0) > ROWS - 20, 8000, 'the log compacted');

    for (;;) {
      const r = leader.runtime.proposeConfChange(1, { type: ConfChangeType.AddLearner, replica: replicaId('n4') });
      if (r?.ok) break;
      await new Promise((res) => setTimeout(res, 25));
    }
    const last = leader.runtime.status(1)?.lastIndex ?? 0;
    await until(() => (c.node('n4').runtime.status(1)?.applied.index ?? 0) >= last, 15_000, 'the learner caught up');
    expect(c.node('n4').runtime.status(1)?.learners).toEqual(['n4']);
    const sent = leader.transport.snapshotStats().send;
    expect(sent?.succeeded).toBeGreaterThanOrEqual(1);
    expect(sent?.bytesSent).toBeGreaterThan(ROWS * VALUE_BYTES * 0.5);
    for (let i = 0; i < ROWS; i++) {
      const v = await learnerEngine.get(1000n + BigInt(i), Buffer.from(`k${i}`), MAX_TS, 0);
      expect(v?.value.equals(Buffer.alloc(VALUE_BYTES, i % 251)), `k${i}`).toBe(true);
    }
    // MVCC history too: the learner's digest at the leader's applied timestamp is the leader's.
    const readTs = leader.runtime.status(1)?.applied.maxCommitTs ?? 0n;
    const want = await digestPartition(leader.engine, RANGE, readTs);
    expect(want.keyCount).toBe(ROWS);
    expect(await digestPartition(learnerEngine, RANGE, readTs)).toEqual(want);
  }, 40_000);
});
