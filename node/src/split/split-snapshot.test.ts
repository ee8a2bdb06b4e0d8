/**
 * A replica that skips a split by installing a later snapshot of the parent (three Multi-Raft
 * runtimes over real gRPC, memory engines, logs compacted every few entries): c is down while the
 * parent group splits and both groups move on and compact their logs; back up, c gets the
 * parent's snapshot (which carries the narrower range and the child), adopts the range, hosts the
 * child empty and is caught up by the child's snapshot: it holds exactly the leaders' data on both
 * sides, and refuses later parent entries for the split-off half like everyone else.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import { writeHosting } from '../membership/replica-hosting.ts';
import type { MultiRaft } from '../replication/multi-raft.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { until } from '../replication/testing/replication-cluster.ts';
import { putMutation as put } from '../testing/mutations.ts';
import { SplitRuntimes } from '../testing/split-runtimes.ts';
import { rangeRecordKey, splitProposal } from './split-command.ts';

const WAIT_MS = 15_000;
const HALF = 1n << 63n;
const END = 1n << 64n;
const IDS = ['a', 'b', 'c'];

describe('split skipped through a snapshot', () => {
  const runtimes = new SplitRuntimes({ runtime: { tickMs: 20, logEntriesMax: 8 }, waitMs: WAIT_MS });
  const cluster = runtimes.cluster;
  const engines = new Map<string, StorageEngine>();
  afterAll(() => runtimes.close());

  const start = async (id: string) => {
    const engine = engines.get(id) as StorageEngine;
    const hostEmpty = async (runtime: MultiRaft, g: number, range: HashRange) => {
      // What the split coordinator does from the map (hostOrphans): host the child empty.
      if (runtime.status(g) !== undefined) return;
      await writeHosting(engine, g, range);
      await runtime.addGroup({ group: g, range });
    };
    const node = await runtimes.start(id, engine, [{ group: 1, range: { start: 0n, end: END }, bootstrap: IDS as NodeId[] }], (runtime, _parent, cutOff) => {
      void hostEmpty(runtime, 2, cutOff);
    });
    // Groups with state on disk (a child created before a restart) reopen as node.ts does.
    if (node.runtime.status(2) === undefined && (await engine.getRaw(rangeRecordKey(2))) !== undefined)
      await node.runtime.addGroup({ group: 2, range: { start: HALF, end: END } });
    return node;
  };
  const propose = (group: number, mutations: DataMutation[]) => runtimes.propose(group, mutations);

  it('adopts the range from the parent snapshot, hosts the child and is caught up by it', async () => {
    for (const id of IDS) {
      engines.set(id, await runtimes.engine());
      await start(id);
    }
    for (let i = 0; i < 5; i++) await propose(1, [put(100n + BigInt(i), `low${i}`, 'v0'), put(HALF + 100n + BigInt(i), `high${i}`, 'v0')]);
    await cluster.stop('c');

    const leader = (await cluster.waitForLeader(1, WAIT_MS)).node;
    await propose(1, splitProposal({ at: HALF, childGroup: 2, childEnd: END, voters: IDS, learners: [] }));
    await until(() => leader.runtime.rangeOf(1)?.end === HALF && leader.runtime.status(2) !== undefined, WAIT_MS, 'the split on the leader');
    // Both groups move on and compact their logs (logEntriesMax 8) while c is away.
    for (let i = 0; i < 20; i++) {
      await propose(1, [put(100n + BigInt(i % 5), `low${i % 5}`, `v${i + 1}`)]);
      await propose(2, [put(HALF + 100n + BigInt(i % 5), `high${i % 5}`, `v${i + 1}`)]);
    }
    await until(() => (cluster.leader(1)?.runtime.status(1)?.firstIndex ?? 0) > 10, WAIT_MS, 'the parent log compacted past the split');

    const c = await start('c');
    await until(() => c.runtime.rangeOf(1)?.end === HALF, WAIT_MS, 'c adopting the narrower range');
    await until(() => c.runtime.status(2) !== undefined, WAIT_MS, 'c hosting the child');
    const caughtUp = (g: number) => (c.runtime.status(g)?.applied.index ?? 0) >= (cluster.leader(g)?.runtime.status(g)?.commit ?? Number.POSITIVE_INFINITY);
    await until(() => caughtUp(1) && caughtUp(2), WAIT_MS, 'c caught up on both groups');
    const ce = engines.get('c') as StorageEngine;
    for (let i = 0; i < 5; i++) {
      expect((await ce.get(100n + BigInt(i), Buffer.from(`low${i}`), MAX_TS, 0))?.value.toString()).toBe(`v${16 + i}`);
      expect((await ce.get(HALF + 100n + BigInt(i), Buffer.from(`high${i}`), MAX_TS, 0))?.value.toString()).toBe(`v${16 + i}`);
    }
    expect(c.runtime.rangeOf(2)).toEqual({ start: HALF, end: END });
    // A later parent entry for the split-off half: refused on every replica, c included.
    const l1 = (await cluster.waitForLeader(1, WAIT_MS)).node;
    await expect(l1.runtime.propose(1, [put(HALF + 7n, 'stray', 'x')])).rejects.toMatchObject({ code: 'WRONG_PARTITION' });
    await propose(1, [put(101n, 'low1', 'last')]);
    await until(() => caughtUp(1), WAIT_MS, 'c applied the parent past the refused entry');
    expect(await ce.get(HALF + 7n, Buffer.from('stray'), MAX_TS, 0)).toBeUndefined();
    expect((await ce.get(101n, Buffer.from('low1'), MAX_TS, 0))?.value.toString()).toBe('last');
  }, 60_000);
});
