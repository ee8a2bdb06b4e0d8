/**
 * A replica of a parent added AFTER a split, on a node that already holds the child (found by the
 * replica digests of e2e/src/placement-lincheck.test.ts: one replica of the child missing the
 * rows it inherited, another holding deleted keys again). The parent's log was compacted before
 * the split, so its stored snapshot still describes the pre-split range. Sent after the split,
 * that snapshot deleted and rewrote the CHILD's range on the receiving node (the child's own
 * later writes lost, its deletes undone), and a sender that no longer held the child's rows sent
 * none of them. A group must never send a snapshot of a range it no longer owns: after a split
 * (or a merge) it compacts into a snapshot of its new range before it sends one.
 *
 * Four Multi-Raft runtimes over real gRPC, memory engines: a, b, c found group 1 (logs compacted
 * every 10 entries) and split it; d hosts the child and is added to it, then hosts the parent and
 * is added to it; every replica of the child must hold exactly the same rows.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import { writeHosting } from '../membership/replica-hosting.ts';
import { ConfChangeType } from '../raft/types.ts';
import { replicaOf } from '../replication/replica-id.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { type ClusterNode, until } from '../replication/testing/replication-cluster.ts';
import { deleteMutation as del, putMutation as put } from '../testing/mutations.ts';
import { SplitRuntimes } from '../testing/split-runtimes.ts';
import { splitProposal } from './split-command.ts';

const WAIT_MS = 15_000;
const HALF = 1n << 63n;
const END = 1n << 64n;
const FOUNDERS = ['a', 'b', 'c'];
const PARENT = { start: 0n, end: HALF };
const CHILD = { start: HALF, end: END };
const LOG_ENTRIES_MAX = 10;

describe('a parent replica added after a split, next to the child', () => {
  const fixtures: SplitRuntimes[] = [];
  afterAll(async () => {
    for (const f of fixtures) await f.close();
  });

  /** The scenario: `compact` makes the parent compact its log just before the split. */
  const scenario = async (compact: boolean) => {
    const runtimes = new SplitRuntimes({ runtime: { tickMs: 20, ...(compact ? { logEntriesMax: LOG_ENTRIES_MAX } : {}) }, waitMs: WAIT_MS });
    fixtures.push(runtimes);
    const cluster = runtimes.cluster;
    const propose = (group: number, mutations: DataMutation[]) => runtimes.propose(group, mutations);
    const start = async (id: string, groups: { group: number; range: { start: bigint; end: bigint }; bootstrap?: NodeId[] }[]) =>
      runtimes.start(id, await runtimes.engine(), groups);
    /** d hosts `group` empty (as HostReplica does), the leader adds it as a learner, and it catches up. */
    const addLearner = async (d: ClusterNode, group: number, range: { start: bigint; end: bigint }) => {
      await writeHosting(d.engine, group, range);
      await d.runtime.addGroup({ group, range });
      const leader = (await cluster.waitForLeader(group, WAIT_MS)).node;
      expect(leader.runtime.proposeConfChange(group, { type: ConfChangeType.AddLearner, replica: replicaOf(d.id) })?.ok).toBe(true);
      await caughtUp(group);
    };
    const caughtUp = (group: number) =>
      until(
        () => {
          const commit = cluster.leader(group)?.runtime.status(group)?.commit ?? Number.POSITIVE_INFINITY;
          return [...cluster.nodes.values()].every((n) => (n.runtime.status(group)?.applied.index ?? commit) >= commit);
        },
        WAIT_MS,
        `every replica of group ${group} caught up`,
      );
    const rows = async (e: StorageEngine, r: { start: bigint; end: bigint }) =>
      (await e.scan({ startHash: r.start, endHash: r.end }, MAX_TS, 0, 1000)).items.map((x) => `${x.key.toString()}=${x.value.toString()}`).sort();

    for (const id of FOUNDERS) await start(id, [{ group: 1, range: { start: 0n, end: END }, bootstrap: FOUNDERS as NodeId[] }]);
    // With `compact`, written until the leader has just compacted (its stored snapshot describes
    // [0, 2^64)), so the split and what follows stay in its log. Without, the stored snapshot is
    // the founders' bootstrap one (what a cluster whose logs never reached LOG_ENTRIES_MAX has).
    const founded = (await cluster.waitForLeader(1, WAIT_MS)).node.runtime.status(1)?.firstIndex ?? 0;
    let n = 0;
    for (;;) {
      await propose(1, [put(HALF + 100n + BigInt(n), `before${n}`, 'inherited'), put(BigInt(n) + 1n, `left${n}`, 'parent')]);
      n++;
      const st = cluster.leader(1)?.runtime.status(1);
      if (!compact ? n >= LOG_ENTRIES_MAX : st !== undefined && st.firstIndex > founded && st.lastIndex - st.firstIndex < 2) break;
      if (n > 5 * LOG_ENTRIES_MAX) throw new Error('the parent log was never compacted');
    }
    await propose(1, splitProposal({ at: HALF, childGroup: 2, childEnd: END, voters: FOUNDERS, learners: [] }));
    const splitIndex = cluster.leader(1)?.runtime.status(1)?.applied.index ?? 0;
    await until(() => FOUNDERS.every((id) => cluster.node(id).runtime.status(2) !== undefined), WAIT_MS, 'the child on every founder');
    await caughtUp(1);

    // d holds the child; the child then deletes an inherited key and writes new ones.
    const d = await start('d', []);
    await addLearner(d, 2, CHILD);
    await propose(2, [del(HALF + 100n, 'before0')]);
    for (let i = 0; i < 3; i++) await propose(2, [put(HALF + 200n + BigInt(i), `after${i}`, 'child')]);
    await caughtUp(2);

    // Then d is added to the parent (a move of the parent onto a node holding the child), hosted
    // with the range of a map read before the split (the install adopts the snapshot's range).
    const snapshotIndex = (cluster.leader(1)?.runtime.status(1)?.firstIndex ?? 0) - 1;
    if (compact)
      expect(snapshotIndex).toBeGreaterThan(founded - 1); // compacted before the split
    else expect(snapshotIndex).toBe(founded - 1); // the bootstrap snapshot
    expect(snapshotIndex).toBeLessThan(splitIndex);
    await addLearner(d, 1, { start: 0n, end: END });
    await propose(2, [put(HALF + 300n, 'late', 'child')]);
    await caughtUp(2);
    await caughtUp(1);

    const expected = [
      ...Array.from({ length: n - 1 }, (_, i) => `before${i + 1}=inherited`),
      ...Array.from({ length: 3 }, (_, i) => `after${i}=child`),
      'late=child',
    ].sort();
    for (const id of [...FOUNDERS, 'd']) expect({ id, rows: await rows(cluster.node(id).engine, CHILD) }).toEqual({ id, rows: expected });
    const parent = await rows(cluster.node('a').engine, PARENT);
    expect(parent).toHaveLength(n);
    for (const id of ['b', 'c', 'd']) expect({ id, rows: await rows(cluster.node(id).engine, PARENT) }).toEqual({ id, rows: parent });
    // The pre-split snapshot was held back (the parent compacted, then sent a current one).
    expect(FOUNDERS.reduce((sum, id) => sum + cluster.node(id).runtime.stats.staleSnapshotsHeld, 0)).toBeGreaterThan(0);
  };

  it('keeps the child intact: a snapshot compacted before the split is never sent after it', () => scenario(true), 90_000);

  it('keeps the child intact: the bootstrap snapshot is never sent after a split', () => scenario(false), 90_000);
});
