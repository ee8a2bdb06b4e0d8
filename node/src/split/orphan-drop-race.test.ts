/**
 * A replica dropped from its group is not hosted again, empty, by the split reconciler (a flake
 * of e2e/src/placement-local.test.ts and placement-lincheck.test.ts on a busy machine): the
 * membership drop stops the group in the runtime, then writes its tombstone; the map still lists
 * this node as a replica until the placement loop updates it. A reconcile pass in between saw
 * the group gone, no tombstone yet, and the map naming this node, and hosted an empty orphan
 * that no leader ever catches up and nothing ever drops: the node then reports a hosted replica
 * forever and its decommission never finishes. Real `ReplicaMembership` and `SplitCoordinator`
 * (wired as node.ts does) on a memory engine; the runtime is a stand-in whose group stop is held
 * open while the reconciler runs.
 */
import type { NodeId, PartitionId } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { PeerAdmin } from '../membership/peer-admin.ts';
import { tombstoneKey, writeHosting } from '../membership/replica-hosting.ts';
import { ReplicaMembership } from '../membership/replica-membership.ts';
import type { MetaService } from '../meta/meta-service.ts';
import { ConfChangeType, type Entry } from '../raft/types.ts';
import type { GroupSpec, MultiRaft } from '../replication/multi-raft.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import { replicaOf } from '../replication/replica-id.ts';
import { type RoutingMap, SplitCoordinator, type SplitRaft } from './split-coordinator.ts';

const GROUP = 1;
const RANGE: HashRange = { start: 0n, end: 1n << 63n };
const SELF = 'c' as NodeId;

/** The runtime as both see it: one hosted group whose log shows this replica's applied removal. */
function standIn() {
  const hosted = new Map<number, HashRange>([[GROUP, RANGE]]);
  const added: GroupSpec[] = [];
  let release: () => void = () => {};
  const stopHeld = new Promise<void>((r) => {
    release = r;
  });
  let stopping: () => void = () => {};
  const stopStarted = new Promise<void>((r) => {
    stopping = r;
  });
  const removal: Entry = { type: 'confChange', index: 7, term: 2, change: { type: ConfChangeType.RemoveReplica, replica: replicaOf(SELF) } };
  const raft = {
    groups: () => [...hosted.keys()],
    status: (g: number) => (hosted.has(g) ? { applied: { index: 7 } } : undefined),
    raftStatus: (g: number) =>
      hosted.has(g) ? { applied: 7, firstIndex: 7, lastIndex: 7, confState: { voters: [replicaOf('a'), replicaOf('b')], learners: [] } } : undefined,
    logEntries: (g: number) => (hosted.has(g) ? [removal] : []),
    rangeOf: (g: number) => hosted.get(g),
    propose: async () => ({ ok: false, refused: true, reason: 'notLeader' }),
    addGroup: async (spec: GroupSpec) => {
      added.push(spec);
      hosted.set(spec.group, spec.range);
    },
    removeGroup: async (g: number) => {
      hosted.delete(g);
      stopping();
      await stopHeld; // the window: the group is gone from the runtime, its tombstone not written yet
    },
  };
  return { raft, hosted, added, release, stopStarted };
}

describe('a dropped replica and the split reconciler', () => {
  it('is never hosted again while its drop is in flight, nor after it (the tombstone)', async () => {
    const engine = new MemoryEngine();
    await engine.open();
    await writeHosting(engine, GROUP, RANGE);
    const rt = standIn();
    const membership = new ReplicaMembership({
      self: SELF,
      raft: rt.raft as unknown as MultiRaft,
      engine,
      replicationFactor: 3,
      rangeOf: () => RANGE,
      addressOf: () => undefined,
      peers: {} as PeerAdmin,
    });
    // The map still lists this node for partition 0 (generation 2: its replicas changed).
    const map: RoutingMap = {
      epoch: 5n,
      partitions: [{ id: 0 as PartitionId, start: RANGE.start, end: RANGE.end, generation: 2n, replicas: ['a', 'b', SELF] as NodeId[] }],
    };
    const reconcileOnce = async () => {
      const splits = new SplitCoordinator({
        self: SELF,
        raft: rt.raft as unknown as SplitRaft,
        meta: {} as MetaService,
        map: () => map,
        engine,
        creating: (g) => membership.isDropping(g),
      });
      // One pass, awaited (what the timer or a map change runs; `stop` would end the pass early).
      await (splits as unknown as { reconcile(): Promise<void> }).reconcile();
      return splits.stats.emptyChildrenHosted;
    };

    const dropped = membership.dropReplica(0, { index: 7, term: 2 });
    await rt.stopStarted;
    expect(membership.isDropping(GROUP)).toBe(true);
    expect(await reconcileOnce()).toBe(0);
    rt.release();
    expect(await dropped).toEqual({ changed: true });
    expect(membership.isDropping(GROUP)).toBe(false);
    expect(await engine.getRaw(tombstoneKey(GROUP))).toBeDefined();
    expect(await reconcileOnce()).toBe(0);
    expect(rt.added).toEqual([]);
    expect(rt.hosted.has(GROUP)).toBe(false);
    await membership.stop();
    await engine.close();
  });
});
