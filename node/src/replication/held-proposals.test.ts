/**
 * Proposals that arrive while leadership changes hands on their replica are held, not refused
 * (`GroupDriver`, "held" in its file comment). Three in-process nodes on memory engines over real
 * gRPC on 127.0.0.1:
 * - during a leader transfer, a proposal to the old leader is answered `notLeader` with the NEW
 *   leader as hint once the transfer completes (it used to be refused `leaderTransferring` at
 *   once, and the caller backed off and retried blind); nothing was proposed on the old leader;
 * - a transfer the core gives up on (its target is down) ends with the held proposal proposed
 *   and applied by the leader that stayed;
 * - a proposal held on a stopping node is answered `stopped`.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { DataMutation } from './replicated-command.ts';
import { type ClusterNode, ReplicationCluster, until } from './testing/replication-cluster.ts';

const IDS = ['a', 'b', 'c'] as NodeId[];
const GROUP = 1;
const SPEC = { group: GROUP, range: { start: 0n, end: 1n << 64n }, bootstrap: IDS };
const put = (k: string): DataMutation => ({ type: 'put', hash: 7n, key: Buffer.from(k), value: Buffer.from('v'), expiresAtMs: 0 });

describe('held proposals', () => {
  let c: ReplicationCluster | undefined;
  afterEach(async () => {
    await c?.stopAll();
    c = undefined;
  });

  async function cluster(): Promise<{ c: ReplicationCluster; leader: ClusterNode; others: ClusterNode[] }> {
    c = new ReplicationCluster({ tickMs: 20 });
    for (const id of IDS) {
      const e = new MemoryEngine();
      await e.open();
      await c.start(id, e, [SPEC]);
    }
    const { node: leader } = await c.waitForLeader(GROUP, 10_000);
    // Serving everywhere it matters: one entry applied in the leader's term.
    expect((await leader.runtime.propose(GROUP, [put('warm')])).ok).toBe(true);
    return { c, leader, others: c.followers(GROUP) };
  }

  it('a proposal made during a transfer goes to the new leader: notLeader with its id, not leaderTransferring', async () => {
    const { c, leader, others } = await cluster();
    const target = others[0] as ClusterNode;
    const last = leader.runtime.status(GROUP)?.lastIndex ?? 0;
    expect(leader.runtime.transferLeader(GROUP, target.id)?.ok).toBe(true);
    const r = await leader.runtime.propose(GROUP, [put('during')]);
    expect(r).toMatchObject({ ok: false, refused: true, reason: 'notLeader', leaderHint: target.id });
    expect(leader.runtime.stats.proposalsHeld).toBe(1);
    await c.waitForLeader(GROUP, 10_000);
    expect(c.leader(GROUP)?.id).toBe(target.id);
    // Nothing was proposed on the old leader: the new leader's log holds no 'during' entry
    // (its own empty entry and nothing else after the old leader's last index).
    const now = target.runtime.status(GROUP);
    expect(now?.lastIndex).toBe(last + 1);
  });

  it('the old leader answers a held proposal without waiting for a tick', async () => {
    // No ticks at all: the election is started by hand and the transfer runs on messages alone,
    // so an answer that waited for a tick would never come. What releases it: the old leader's
    // first Ready after it hears from the new one (`advance`), or its apply of the new leader's
    // first entry (the test fails only without both).
    const noTicks = { setInterval: () => 0, clearInterval: () => undefined, setImmediate: (fn: () => void) => void setImmediate(fn) };
    c = new ReplicationCluster({ timers: noTicks });
    for (const id of IDS) {
      const e = new MemoryEngine();
      await e.open();
      await c.start(id, e, [SPEC]);
    }
    const [a, b] = IDS.map((id) => c?.node(id)) as [ClusterNode, ClusterNode];
    expect(a.runtime.campaign(GROUP)).toBe(true);
    await until(() => a.runtime.leads(GROUP), 10_000, 'a leads');
    expect((await a.runtime.propose(GROUP, [put('warm')])).ok).toBe(true);
    const heldBefore = a.runtime.stats.proposalsHeld; // 'warm' may have waited for a's first entry
    expect(a.runtime.transferLeader(GROUP, b.id)?.ok).toBe(true);
    const r = await a.runtime.propose(GROUP, [put('during')]);
    expect(r).toMatchObject({ ok: false, refused: true, reason: 'notLeader', leaderHint: b.id });
    expect(a.runtime.stats.proposalsHeld).toBe(heldBefore + 1);
    expect(b.runtime.leads(GROUP)).toBe(true);
  });

  it('a transfer that fails (its target is down) ends with the held proposal applied by the leader that stayed', async () => {
    const { c, leader, others } = await cluster();
    const target = others[0] as ClusterNode;
    await c.stop(target.id);
    expect(leader.runtime.transferLeader(GROUP, target.id)?.ok).toBe(true);
    const t0 = performance.now();
    const r = await leader.runtime.propose(GROUP, [put('after-abort')]);
    expect(r.ok).toBe(true);
    // Held for the transfer: the core gave up on it within an election timeout (10 ticks of 20 ms).
    expect(performance.now() - t0).toBeGreaterThan(20);
    expect(leader.runtime.status(GROUP)?.role).toBe('leader');
  });

  it('a proposal held on a node that stops is answered stopped', async () => {
    const { c, leader, others } = await cluster();
    await c.stop((others[0] as ClusterNode).id);
    expect(leader.runtime.transferLeader(GROUP, (others[0] as ClusterNode).id)?.ok).toBe(true);
    const p = leader.runtime.propose(GROUP, [put('x')]);
    await until(() => true, 10, 'nothing');
    await c.stop(leader.id);
    expect(await p).toMatchObject({ ok: false, refused: true, reason: 'stopped' });
  });
});
