/**
 * The balancer on a real three-node cluster (in-process runtimes over gRPC on loopback, memory
 * engines): every group's leadership is first piled onto n1, then the balancers spread it.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { LeaderBalancer } from './leader-balancer.ts';
import type { GroupSpec } from './multi-raft.ts';
import { equalRanges, ReplicationCluster, until } from './testing/replication-cluster.ts';

const NODES = ['n1', 'n2', 'n3'] as NodeId[];
const GROUPS = 9;
const RANGES = equalRanges(GROUPS);
const SPECS: GroupSpec[] = RANGES.map((range, i) => ({ group: i + 1, range, bootstrap: NODES }));
const WAIT_MS = 20_000;

function counts(c: ReplicationCluster): Map<string, number> {
  const m = new Map<string, number>(NODES.map((n) => [n, 0]));
  for (const { group } of SPECS) {
    const l = c.leader(group);
    if (l !== undefined) m.set(l.id, (m.get(l.id) ?? 0) + 1);
  }
  return m;
}

describe('LeaderBalancer on a three-node cluster', () => {
  const c = new ReplicationCluster({ tickMs: 20 });
  const balancers: LeaderBalancer[] = [];
  afterAll(async () => {
    for (const b of balancers) b.stop();
    await c.stopAll();
  });

  it('spreads leadership piled on one node and then stays still', async () => {
    for (const id of NODES) {
      const e = new MemoryEngine();
      await e.open();
      await c.start(id, e, SPECS);
    }
    for (const { group } of SPECS) await c.waitForLeader(group, WAIT_MS);
    // Pile every leader onto n1.
    await until(
      () => {
        for (const { group } of SPECS) {
          const l = c.leader(group);
          if (l !== undefined && l.id !== 'n1') l.runtime.transferLeader(group, 'n1' as NodeId);
        }
        return counts(c).get('n1') === GROUPS;
      },
      WAIT_MS,
      'every group led by n1',
    );

    for (const id of NODES) balancers.push(new LeaderBalancer({ self: id, host: c.node(id).runtime, intervalMs: 100, startDelayMs: 0, maxTransfers: 2 }));
    for (const b of balancers) b.start();
    // avg 3: nobody may lead more than ceil(avg) + 1 = 4, and every node leads some group
    await until(() => [...counts(c).values()].every((n) => n >= 1 && n <= 4), WAIT_MS, `balanced leadership (now ${JSON.stringify([...counts(c)])})`);
    const n1 = balancers[0]!;
    expect(n1.stats.transfers).toBeGreaterThanOrEqual(5);
    expect(balancers[1]!.stats.transfers + balancers[2]!.stats.transfers).toBe(0);

    // Damping: once inside the band nothing moves any more.
    await until(() => [...counts(c).values()].every((n) => n === 3) || balancers.every((b) => b.stats.runs > 20), WAIT_MS, 'settling');
    const moved = balancers.map((b) => b.stats.transfers);
    const runs = n1.stats.runs;
    await until(() => n1.stats.runs >= runs + 10, WAIT_MS, '10 more balancing runs');
    expect(balancers.map((b) => b.stats.transfers)).toEqual(moved);
    expect(Math.max(...counts(c).values())).toBeLessThanOrEqual(4);
  }, 60_000);
});
