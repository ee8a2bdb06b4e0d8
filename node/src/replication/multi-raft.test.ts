/**
 * MultiRaft over real gRPC on loopback: three in-process nodes, each with its own memory
 * engine, hosting three groups of three voters. Groups 1 and 2 are bootstrapped on every node;
 * group 3 only on n1 (n2 and n3 start empty and receive the leader's snapshot).
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import { message } from '../raft/messages.ts';
import { replicaId } from '../raft/types.ts';
import type { GroupSpec } from './multi-raft.ts';
import type { DataMutation } from './replicated-command.ts';
import { ProposalOutcomeUnknownError, type ProposeResult } from './replication-results.ts';
import { type ClusterNode, equalRanges, ReplicationCluster, until } from './testing/replication-cluster.ts';

const NODES = ['n1', 'n2', 'n3'] as NodeId[];
const RANGES = equalRanges(3);
const TICK_MS = 25;
const LEADER_WAIT_MS = 8000;

function specs(id: NodeId): GroupSpec[] {
  return [
    { group: 1, range: RANGES[0]!, bootstrap: NODES },
    { group: 2, range: RANGES[1]!, bootstrap: NODES },
    { group: 3, range: RANGES[2]!, bootstrap: id === 'n1' ? NODES : undefined },
  ];
}

const hashIn = (group: number, i = 0): bigint => RANGES[group - 1]!.start + 1000n + BigInt(i);
const put = (group: number, key: string, value: string, condition?: DataMutation['condition']): DataMutation => ({
  type: 'put',
  hash: hashIn(group, key.length),
  key: Buffer.from(key),
  value: Buffer.from(value),
  expiresAtMs: 0,
  condition,
});

async function memoryEngine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

/** Proposes on the current leader, retrying refusals (elections may happen on a busy machine). */
async function proposeOnLeader(c: ReplicationCluster, group: number, mutations: DataMutation[]): Promise<{ r: ProposeResult; leader: ClusterNode }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const { node } = await c.waitForLeader(group, LEADER_WAIT_MS);
    const r = await node.runtime.propose(group, mutations);
    if (r.ok || !r.refused) return { r, leader: node };
    await new Promise((res) => setTimeout(res, TICK_MS));
  }
  throw new Error('no leader accepted the proposal');
}

async function versions(c: ReplicationCluster, group: number, key: string): Promise<string[]> {
  return Promise.all(
    [...c.nodes.values()].map(async (n) => {
      const v = await n.engine.get(hashIn(group, key.length), Buffer.from(key), MAX_TS, 0);
      return v === undefined ? 'absent' : `${v.value.toString()}@${v.version}`;
    }),
  );
}

describe('MultiRaft: three nodes over gRPC', () => {
  const c = new ReplicationCluster({ tickMs: TICK_MS });

  beforeAll(async () => {
    for (const id of NODES) await c.start(id, await memoryEngine(), specs(id));
  });
  afterAll(async () => {
    await c.stopAll();
  });

  it('elects one leader per group, and every replica agrees on it and on the membership', async () => {
    for (const g of [1, 2, 3]) {
      const { node } = await c.waitForLeader(g, LEADER_WAIT_MS);
      await until(() => NODES.every((id) => c.node(id).runtime.status(g)?.leader === node.id), LEADER_WAIT_MS, `agreement on group ${g}'s leader`);
      for (const id of NODES) expect(c.node(id).runtime.status(g)?.voters).toEqual(NODES);
    }
  });

  it('a proposal on the leader applies on all three replicas with the same MVCC version', async () => {
    const { r, leader } = await proposeOnLeader(c, 1, [put(1, 'alpha', 'one'), put(1, 'beta', 'two')]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.existed).toEqual([false, false]);
    // Majority write concern: applied on the leader when the promise resolves.
    expect(leader.runtime.status(1)?.applied.index).toBeGreaterThanOrEqual(r.index);
    await c.waitApplied(1, r.index, 5000);
    expect(await versions(c, 1, 'alpha')).toEqual(NODES.map(() => `one@${r.commitTs}`));
    expect(await versions(c, 1, 'beta')).toEqual(NODES.map(() => `two@${r.commitTs}`));
    // Every replica's clock moved past the applied commit timestamp.
    for (const n of c.nodes.values()) expect(n.clock.current() >= r.commitTs).toBe(true);
  });

  it('a proposal on a follower is refused with the leader hint, and nothing is proposed', async () => {
    const { node: leader } = await c.waitForLeader(2, LEADER_WAIT_MS);
    const follower = c.followers(2)[0]!;
    await until(() => follower.runtime.status(2)?.leader === leader.id, LEADER_WAIT_MS, 'the follower to know the leader');
    const before = follower.runtime.status(2)!.lastIndex;
    const r = await follower.runtime.propose(2, [put(2, 'k', 'v')]);
    expect(r).toMatchObject({ ok: false, refused: true, reason: 'notLeader', leaderHint: leader.id });
    expect(follower.runtime.status(2)!.lastIndex).toBe(before);
    expect(await c.node('n1').runtime.propose(99, [put(1, 'k', 'v')])).toMatchObject({ refused: true, reason: 'unknownGroup' });
  });

  it('conditional writes give the same outcome and the same versions on every replica', async () => {
    const g = 2;
    const first = await proposeOnLeader(c, g, [put(g, 'cas', 'a', { kind: 'absent' })]);
    expect(first.r.ok).toBe(true);
    const v1 = first.r.ok ? first.r.commitTs : 0n;
    const again = await proposeOnLeader(c, g, [put(g, 'cas', 'b', { kind: 'absent' })]);
    expect(again.r).toMatchObject({ ok: false, refused: false, reason: 'conditionFailed', failedIndex: 0, currentVersion: v1 });
    const cas = await proposeOnLeader(c, g, [put(g, 'cas', 'c', { kind: 'versionEquals', version: v1 })]);
    expect(cas.r.ok).toBe(true);
    const stale = await proposeOnLeader(c, g, [put(g, 'cas', 'd', { kind: 'versionEquals', version: v1 })]);
    expect(stale.r).toMatchObject({ reason: 'conditionFailed' });
    // A batch whose second condition fails writes nothing, not even its first mutation.
    const batch = await proposeOnLeader(c, g, [put(g, 'other', 'x'), put(g, 'cas', 'e', { kind: 'absent' })]);
    expect(batch.r).toMatchObject({ reason: 'conditionFailed', failedIndex: 1 });
    const last = 'index' in batch.r ? batch.r.index : 0;
    expect(last).toBeGreaterThan(0);
    await c.waitApplied(g, last, 5000);
    const expected = `c@${cas.r.ok ? cas.r.commitTs : 0n}`;
    expect(await versions(c, g, 'cas')).toEqual(NODES.map(() => expected));
    expect(await versions(c, g, 'other')).toEqual(NODES.map(() => 'absent'));
    const counts = NODES.map((id) => c.node(id).runtime.status(g)?.applied.index);
    expect(new Set(counts).size).toBe(1);
  });

  it('ReadIndex on the leader and on a follower sees a write acknowledged by the leader', async () => {
    const g = 1;
    for (let i = 0; i < 5; i++) {
      const { r } = await proposeOnLeader(c, g, [put(g, `read${i}`, `v${i}`)]);
      expect(r.ok).toBe(true);
      const leader = c.leader(g)!;
      await leader.runtime.read(g);
      expect((await versions(c, g, `read${i}`))[NODES.indexOf(leader.id)]).toMatch(new RegExp(`^v${i}@`));
      // A follower's read waits until it has applied the leader's read index: it sees the write too.
      const follower = c.followers(g)[i % 2]!;
      await follower.runtime.read(g);
      const v = await follower.engine.get(hashIn(g, `read${i}`.length), Buffer.from(`read${i}`), MAX_TS, 0);
      expect(v?.value.toString()).toBe(`v${i}`);
    }
    await expect(c.node('n1').runtime.read(42)).rejects.toMatchObject({ code: 'WRONG_PARTITION' });
  });

  it('a group bootstrapped on one node reaches the empty replicas by snapshot', async () => {
    const { r } = await proposeOnLeader(c, 3, [put(3, 'snap', 'yes')]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    await c.waitApplied(3, r.index, 5000);
    expect(await versions(c, 3, 'snap')).toEqual(NODES.map(() => `yes@${r.commitTs}`));
    for (const id of ['n2', 'n3']) {
      const s = c.node(id).runtime.status(3)!;
      expect(s.voters).toEqual(NODES);
      expect(s.firstIndex).toBe(2);
    }
  });

  it('compacts a short log at once when asked (compactSoon: before a learner joins), keeping every replica serving', async () => {
    for (let i = 0; i < 20; i++) await proposeOnLeader(c, 2, [put(2, `compact-${i}`, `v${i}`)]);
    const { node } = await c.waitForLeader(2, LEADER_WAIT_MS);
    const applied = node.runtime.raftStatus(2)?.applied ?? 0;
    const before = node.runtime.stats.compactions;
    expect(node.runtime.snapshotIndex(2)).toBeLessThan(applied);
    expect(node.runtime.compactSoon(2)).toBe(true);
    await until(() => (node.runtime.snapshotIndex(2) ?? 0) >= applied, 5000, 'a snapshot at the applied index');
    expect(node.runtime.stats.compactions).toBeGreaterThan(before);
    expect(node.runtime.logEntries(2, 1, applied)).toEqual([]);
    expect(node.runtime.compactSoon(99)).toBe(false);
    // The group goes on: a write after the compaction applies everywhere.
    await proposeOnLeader(c, 2, [put(2, 'after-compact', 'x')]);
    const end = Date.now() + 5000;
    while (!(await versions(c, 2, 'after-compact')).every((v) => v.startsWith('x@')) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    expect((await versions(c, 2, 'after-compact')).every((v) => v.startsWith('x@'))).toBe(true);
  });

  it('drops messages for unknown groups or other replicas, and counts them', () => {
    const n1 = c.node('n1').runtime;
    const before = { ...n1.stats };
    n1.receive('n2', 77, message({ type: 'heartbeat', from: replicaId('n2'), to: replicaId('n1'), term: 1 }));
    n1.receive('n2', 1, message({ type: 'heartbeat', from: replicaId('n2'), to: replicaId('nX'), term: 1 }));
    expect(n1.stats.droppedUnknownGroup).toBe(before.droppedUnknownGroup + 1);
    expect(n1.stats.droppedMisaddressed).toBe(before.droppedMisaddressed + 1);
  });

  it('group-commits: many concurrent proposals across groups share few synced engine writes', async () => {
    const leaders = await Promise.all([1, 2].map(async (g) => (await c.waitForLeader(g, LEADER_WAIT_MS)).node));
    const before = new Map([...c.nodes.values()].map((n) => [n.id, n.runtime.stats.syncedWrites]));
    const proposals = 200;
    const results = await Promise.all(
      Array.from({ length: proposals }, (_, i) => {
        const g = 1 + (i % 2);
        return leaders[g - 1]!.runtime.propose(g, [put(g, `gc${i}`, String(i))]);
      }),
    );
    const applied = results.filter((r) => r.ok).length;
    expect(applied).toBeGreaterThan(proposals / 2);
    const writes = [...c.nodes.values()].reduce((s, n) => s + n.runtime.stats.syncedWrites - (before.get(n.id) ?? 0), 0);
    console.log(`group commit: ${applied} proposals applied with ${writes} synced engine writes across 3 nodes`);
    expect(writes).toBeLessThan(applied * 3);
  });
});

describe('MultiRaft: a leader that loses its quorum', () => {
  it('steps down, and its pending proposals fail as outcome-unknown; the others elect a leader when back', async () => {
    const c = new ReplicationCluster({ tickMs: TICK_MS });
    const engines = new Map<string, StorageEngine>();
    try {
      for (const id of NODES) {
        engines.set(id, await memoryEngine());
        await c.start(id, engines.get(id)!, [{ group: 1, range: RANGES[0]!, bootstrap: NODES }]);
      }
      const { node: leader } = await c.waitForLeader(1, LEADER_WAIT_MS);
      const ok = await leader.runtime.propose(1, [put(1, 'before', 'x')]);
      expect(ok.ok).toBe(true);
      const others = NODES.filter((id) => id !== leader.id);
      for (const id of others) await c.stop(id);
      const t0 = performance.now();
      const pending = leader.runtime.propose(1, [put(1, 'lost', 'x')]);
      const err = await pending.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ProposalOutcomeUnknownError);
      expect(String((err as Error).message)).toMatch(/outcome unknown/);
      expect((err as ProposalOutcomeUnknownError).code).toBe('DEADLINE_EXCEEDED');
      console.log(`isolated leader stepped down and failed its pending proposal after ${(performance.now() - t0).toFixed(0)} ms`);
      expect(leader.runtime.status(1)?.role).not.toBe('leader');
      // The two others come back (same engines: their disks) and the group serves again.
      for (const id of others) await c.start(id, engines.get(id)!, [{ group: 1, range: RANGES[0]!, bootstrap: NODES }]);
      const after = await proposeOnLeader(c, 1, [put(1, 'after', 'y')]);
      expect(after.r.ok).toBe(true);
    } finally {
      await c.stopAll();
    }
  });
});
