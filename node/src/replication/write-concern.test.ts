/**
 * Write concerns of `MultiRaft.propose` (ADR 0008 §7) over real gRPC on loopback, three
 * in-process nodes with memory engines: `all` waits for every voter's log, `leader` answers
 * after the leader's own durable append, and an empty command closes a timestamp.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import type { DataMutation } from './replicated-command.ts';
import { NotOnAllReplicasError, ProposalOutcomeUnknownError, type ProposeResult } from './replication-results.ts';
import { type ClusterNode, equalRanges, ReplicationCluster } from './testing/replication-cluster.ts';

const NODES = ['n1', 'n2', 'n3'] as NodeId[];
const RANGE = equalRanges(1)[0] as { start: bigint; end: bigint };
const TICK_MS = 25;

const put = (key: string, value: string, i = 0): DataMutation => ({
  type: 'put',
  hash: RANGE.start + 1000n + BigInt(i),
  key: Buffer.from(key),
  value: Buffer.from(value),
  expiresAtMs: 0,
});

async function memoryEngine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

async function serving(c: ReplicationCluster): Promise<ClusterNode> {
  for (let i = 0; i < 200; i++) {
    const { node } = await c.waitForLeader(1, 8000);
    if (node.runtime.status(1)?.serving) return node;
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  throw new Error('no serving leader');
}

describe('write concern', () => {
  let c: ReplicationCluster;
  afterEach(async () => {
    await c.stopAll();
  });
  const start = async () => {
    c = new ReplicationCluster({ tickMs: TICK_MS });
    for (const id of NODES) await c.start(id, await memoryEngine(), [{ group: 1, range: RANGE, bootstrap: NODES }]);
    return serving(c);
  };

  it('all: answers once every voter holds the entry; with a voter down, reports it committed but not everywhere', async () => {
    const leader = await start();
    const r = (await leader.runtime.propose(1, [put('a', '1')], { concern: 'all' })) as ProposeResult & { ok: true };
    expect(r.ok).toBe(true);
    for (const n of c.nodes.values()) expect(n.runtime.status(1)?.lastIndex).toBeGreaterThanOrEqual(r.index);

    const follower = NODES.find((id) => id !== leader.id) as NodeId;
    await c.stop(follower);
    const t0 = performance.now();
    const err = await leader.runtime.propose(1, [put('b', '2', 1)], { concern: 'all', allTimeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NotOnAllReplicasError);
    expect((err as NotOnAllReplicasError).code).toBe('DEADLINE_EXCEEDED');
    expect((err as NotOnAllReplicasError).details).toMatchObject({ committed: 'true' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    // It IS committed and applied: the leader's engine holds it at the reported version.
    const v = await leader.engine.get(RANGE.start + 1001n, Buffer.from('b'), MAX_TS, 0);
    expect(v?.version.toString()).toBe((err as NotOnAllReplicasError).details.version);
    // Majority still answers at once without the stopped voter.
    expect((await leader.runtime.propose(1, [put('c', '3', 2)])).ok).toBe(true);
  });

  it('leader: answers after the local durable append even without a quorum; majority cannot', async () => {
    const leader = await start();
    for (const id of NODES) if (id !== leader.id) await c.stop(id);
    const r = await leader.runtime.propose(1, [put('l', 'x')], { concern: 'leader' });
    expect(r).toMatchObject({ ok: true, durability: 'leader', existed: [false] });
    expect(leader.runtime.status(1)?.lastIndex).toBeGreaterThanOrEqual((r as { index: number }).index);
    // Not committed: nothing was applied.
    expect(await leader.engine.get(RANGE.start + 1000n, Buffer.from('l'), MAX_TS, 0)).toBeUndefined();
    const majority = await leader.runtime.propose(1, [put('m', 'y', 3)]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(majority).toBeInstanceOf(ProposalOutcomeUnknownError);
  });

  it('an empty command commits and moves the applied commit timestamp past an observed one', async () => {
    const leader = await start();
    const ahead = leader.clock.now() + (2000n << 16n);
    leader.clock.observe(ahead);
    const r = await leader.runtime.propose(1, []);
    expect(r.ok).toBe(true);
    expect(leader.runtime.status(1)?.applied.maxCommitTs).toBeGreaterThan(ahead);
  });
});
