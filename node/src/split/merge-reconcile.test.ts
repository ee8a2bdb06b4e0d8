/**
 * The merge reconciler's decisions (docs/adr/0010-splits.md "Merges"), on a scripted runtime, meta
 * service and peers (the real protocol runs in merge.test.ts and e2e/src/partition-merge.test.ts):
 * - a group the routing map does not list yet (a split child applied before this node's map shows
 *   it) is NOT frozen: the reconciler decides on the map confirmed with the meta group;
 * - the leader of a group the confirmed map merged away proposes the freeze with its membership;
 * - the absorb waits until every replica of the frozen group answers with the freeze applied, and
 *   while the two memberships differ;
 * - a group the left group's record lists as absorbed is retired here.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { MetaService } from '../meta/meta-service.ts';
import type { MetaState } from '../meta/meta-state.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { type MergeCommand, mergeCommandOf } from './merge-command.ts';
import { MergeCoordinator, type MergeRaft } from './merge-coordinator.ts';
import type { RangeRecord } from './split-command.ts';

const H = 1n << 63n;
const END = 1n << 64n;
const VOTERS = ['a', 'b', 'c'];

interface FakeGroup {
  record: RangeRecord;
  serving: boolean;
  applied: number;
  voters: string[];
}

function map(epoch: bigint, parts: [number, bigint, bigint][]): MetaState {
  return {
    epoch,
    partitions: parts.map(([id, start, end]) => ({ id: id as never, start, end, generation: 1n, replicas: VOTERS as NodeId[] })),
    nodes: [],
  };
}

function setup(groups: Map<number, FakeGroup>, routing: MetaState, confirmed: MetaState, peerApplied: Map<string, number>) {
  const proposals: { group: number; command: MergeCommand | 'invalid' | undefined }[] = [];
  const removed: number[] = [];
  const raft: MergeRaft = {
    groups: () => [...groups.keys()],
    status: (g) => {
      const x = groups.get(g);
      return x === undefined ? undefined : ({ serving: x.serving, applied: { index: x.applied }, voters: x.voters } as never);
    },
    raftStatus: (g) => {
      const x = groups.get(g);
      return x === undefined ? undefined : ({ applied: x.applied, lastIndex: x.applied, confState: { voters: x.voters, learners: [] } } as never);
    },
    logEntries: () => [],
    rangeRecordOf: (g) => groups.get(g)?.record,
    propose: async (g: number, mutations: readonly DataMutation[]) => {
      const command = mergeCommandOf({ id: 1n, commitTs: 1n, nowMs: 0, mutations } as never);
      proposals.push({ group: g, command });
      // Applied at once, as the state machine would.
      const x = groups.get(g);
      if (x !== undefined && command !== undefined && command !== 'invalid')
        x.record =
          command.kind === 'freeze'
            ? { ...x.record, frozen: { into: command.c.into, index: x.applied + 1 } }
            : { ...x.record, end: command.c.end, absorbed: [{ group: command.c.group, start: command.c.start, end: command.c.end }] };
      return { ok: true, commitTs: 1n, existed: [false] } as never;
    },
    removeGroup: async (g) => {
      removed.push(g);
      return groups.delete(g);
    },
  };
  let state = routing;
  const meta = {
    get state() {
      return state;
    },
    readBarrier: async () => {
      state = confirmed;
    },
    onChange: () => () => undefined,
    proposeMetaChange: async () => {
      throw new Error('not in these tests');
    },
  } as unknown as MetaService;
  const peers = {
    call: async <Req, Res>(address: string, _method: string, req: Req): Promise<Res> => {
      const applied = peerApplied.get(address);
      if (applied === undefined) throw new Error('unreachable');
      return { hosted: true, appliedIndex: String(applied), voters: VOTERS, partitionId: (req as { partitionId: number }).partitionId } as Res;
    },
  };
  const engine = new MemoryEngine();
  const c = new MergeCoordinator({ self: 'a' as NodeId, raft, meta, map: () => routing, peers, addressOf: (id) => id, engine });
  return { c, proposals, removed, engine, setState: (s: MetaState) => (state = s) };
}

describe('merge reconciler', () => {
  it('does not freeze a split child the routing map does not show yet (decides on the confirmed map)', async () => {
    const groups = new Map<number, FakeGroup>([
      [1, { record: { start: 0n, end: H, children: [{ group: 3, start: H, end: END }] }, serving: true, applied: 9, voters: VOTERS }],
      [3, { record: { start: H, end: END, children: [] }, serving: true, applied: 1, voters: VOTERS }],
    ]);
    const stale = map(1n, [[0, 0n, END]]);
    const fresh = map(2n, [
      [0, 0n, H],
      [2, H, END],
    ]);
    const { c, proposals } = setup(groups, stale, fresh, new Map());
    await c.reconcileNow();
    expect(proposals).toEqual([]);
  });

  it('freezes a group the confirmed map merged away, with its membership', async () => {
    const groups = new Map<number, FakeGroup>([[2, { record: { start: H, end: END, children: [] }, serving: true, applied: 4, voters: VOTERS }]]);
    const merged = map(3n, [[0, 0n, END]]);
    const { c, proposals } = setup(groups, merged, merged, new Map());
    await c.reconcileNow();
    expect(proposals).toEqual([{ group: 2, command: { kind: 'freeze', c: { into: 1, start: H, end: END, voters: VOTERS, learners: [] } } }]);
    await c.reconcileNow(); // frozen now: nothing more
    expect(proposals).toHaveLength(1);
    await c.stop();
  });

  it('absorbs only once every replica applied the freeze and the memberships are equal; then retires the absorbed group', async () => {
    const groups = new Map<number, FakeGroup>([
      [1, { record: { start: 0n, end: H, children: [] }, serving: true, applied: 9, voters: VOTERS }],
      [2, { record: { start: H, end: END, children: [], frozen: { into: 1, index: 5 } }, serving: false, applied: 5, voters: VOTERS }],
    ]);
    const merged = map(3n, [[0, 0n, END]]);
    const peers = new Map([
      ['b', 5],
      ['c', 4],
    ]);
    const { c, proposals, removed, engine } = setup(groups, merged, merged, peers);
    await engine.open();
    await c.reconcileNow();
    expect(proposals).toEqual([]); // c has not applied the freeze
    peers.delete('c');
    await c.reconcileNow();
    expect(proposals).toEqual([]); // c does not answer
    peers.set('c', 5);
    (groups.get(1) as FakeGroup).voters = ['a', 'b', 'd'];
    await c.reconcileNow();
    expect(proposals).toEqual([]); // the left group's membership differs
    (groups.get(1) as FakeGroup).voters = VOTERS;
    await c.reconcileNow();
    expect(proposals).toEqual([{ group: 1, command: { kind: 'absorb', c: { group: 2, start: H, end: END, freezeIndex: 5 } } }]);
    // Applied (the left record lists it): the absorbed group is retired here.
    expect(groups.get(1)?.record).toEqual({ start: 0n, end: END, children: [], absorbed: [{ group: 2, start: H, end: END }] });
    await c.reconcileNow();
    expect(removed).toEqual([2]);
    await c.stop();
  });
});
