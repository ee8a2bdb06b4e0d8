/**
 * A replica added to a split-off partition before the child's log was ever compacted (what the
 * placement loop does right after a split: found by the replica digests of
 * e2e/src/placement-lincheck.test.ts): the child's first snapshot is its founding one, written by
 * the split entry. It must carry the rows the child inherited from its parent; an empty founding
 * snapshot left the new replica with only what was written after the split. Four Multi-Raft
 * runtimes over real gRPC, memory engines: a, b, c found group 1 and split it; d hosts the child
 * empty and is added as a learner; it must hold exactly the leader's data.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import { writeHosting } from '../membership/replica-hosting.ts';
import { ConfChangeType } from '../raft/types.ts';
import { replicaOf } from '../replication/replica-id.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { until } from '../replication/testing/replication-cluster.ts';
import { putMutation as put } from '../testing/mutations.ts';
import { SplitRuntimes } from '../testing/split-runtimes.ts';
import { splitProposal } from './split-command.ts';

const WAIT_MS = 15_000;
const HALF = 1n << 63n;
const END = 1n << 64n;
const FOUNDERS = ['a', 'b', 'c'];
const CHILD = { start: HALF, end: END };

describe('a learner of a freshly split-off partition', () => {
  const runtimes = new SplitRuntimes({ runtime: { tickMs: 20 }, waitMs: WAIT_MS });
  const cluster = runtimes.cluster;
  afterAll(() => runtimes.close());

  const engine = () => runtimes.engine();
  const propose = (group: number, mutations: DataMutation[]) => runtimes.propose(group, mutations);

  it('receives the rows the child inherited at the split, not only the later writes', async () => {
    for (const id of FOUNDERS) await runtimes.start(id, await engine(), [{ group: 1, range: { start: 0n, end: END }, bootstrap: FOUNDERS as NodeId[] }]);
    for (let i = 0; i < 5; i++) await propose(1, [put(HALF + 100n + BigInt(i), `before${i}`, 'inherited')]);
    await propose(1, splitProposal({ at: HALF, childGroup: 2, childEnd: END, voters: FOUNDERS, learners: [] }));
    await until(() => FOUNDERS.every((id) => cluster.node(id).runtime.status(2) !== undefined), WAIT_MS, 'the child on every founder');
    for (let i = 0; i < 3; i++) await propose(2, [put(HALF + 200n + BigInt(i), `after${i}`, 'child')]);

    // d hosts the child empty (as HostReplica does) and the child's leader adds it as a learner.
    const de = await engine();
    const d = await cluster.start('d', de, []);
    await writeHosting(de, 2, CHILD);
    await d.runtime.addGroup({ group: 2, range: CHILD });
    const leader = (await cluster.waitForLeader(2, WAIT_MS)).node;
    expect(leader.runtime.status(2)?.firstIndex ?? 0).toBeLessThanOrEqual(2); // never compacted: the founding snapshot is the only one
    const added = leader.runtime.proposeConfChange(2, { type: ConfChangeType.AddLearner, replica: replicaOf('d') });
    expect(added?.ok).toBe(true);
    await until(
      () => (d.runtime.status(2)?.applied.index ?? 0) >= (cluster.leader(2)?.runtime.status(2)?.commit ?? Number.POSITIVE_INFINITY),
      WAIT_MS,
      'd caught up on the child',
    );

    const rows = async (e: StorageEngine) =>
      (await e.scan({ startHash: CHILD.start, endHash: CHILD.end }, MAX_TS, 0, 100)).items.map((r) => `${r.key.toString()}=${r.value.toString()}`);
    const expected = [...Array.from({ length: 5 }, (_, i) => `before${i}=inherited`), ...Array.from({ length: 3 }, (_, i) => `after${i}=child`)];
    expect((await rows(leader.engine)).sort()).toEqual(expected.sort());
    expect((await rows(de)).sort()).toEqual(expected.sort());
  }, 60_000);
});
