/**
 * The merge reconciler's decisions (docs/adr/0010-splits.md "Merges"), on a scripted runtime, meta
 * service and peers (the real protocol runs in merge.test.ts and e2e/src/partition-merge.test.ts):
 * - a group the routing map does not list yet (a split child applied before this node's map shows
 *   it) is NOT frozen: the reconciler decides on the map confirmed with the meta group;
 * - the leader of a group the confirmed map merged away proposes the freeze with its membership;
 * - the absorb waits until every replica of the frozen group answers with the freeze applied, and
 *   while the two memberships differ; it names the membership it confirmed, and when it is refused
 *   on apply (a conf change of the left group landed before it) the right group stays frozen, the
 *   refusal is counted, and the absorb is proposed again once the memberships are equal;
 * - a group the left group's record lists as absorbed is retired here.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import { describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { MetaService } from '../meta/meta-service.ts';
import type { MetaState } from '../meta/meta-state.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { type MergeCommand, mergeCommandOf, mergeFits } from './merge-command.ts';
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
  learners?: string[];
  /** A conf change that will land in the group's log before the next proposal (the membership the entry meets on apply). */
  changedBeforeNext?: { voters: string[]; learners: string[] };
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
  const counts = { status: 0, barriers: 0 };
  const raft: MergeRaft = {
    groups: () => [...groups.keys()],
    status: (g) => {
      counts.status++;
      const x = groups.get(g);
      return x === undefined ? undefined : ({ serving: x.serving, applied: { index: x.applied }, voters: x.voters } as never);
    },
    raftStatus: (g) => {
      const x = groups.get(g);
      return x === undefined ? undefined : ({ applied: x.applied, lastIndex: x.applied, confState: { voters: x.voters, learners: x.learners ?? [] } } as never);
    },
    logEntries: () => [],
    rangeRecordOf: (g) => groups.get(g)?.record,
    propose: async (g: number, mutations: readonly DataMutation[]) => {
      const command = mergeCommandOf({ id: 1n, commitTs: 1n, nowMs: 0, mutations } as never);
      proposals.push({ group: g, command });
      // Applied at once, as the state machine would (with its rule for what fits).
      const x = groups.get(g);
      const conf = x?.changedBeforeNext ?? { voters: x?.voters ?? [], learners: x?.learners ?? [] };
      if (x !== undefined && command !== undefined && command !== 'invalid' && !mergeFits(command, x.record, g, conf as never))
        throw new KeyVaError('WRONG_PARTITION', `group ${g} no longer owns these keys; nothing was written, retry`);
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
      counts.barriers++;
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
  return { c, proposals, removed, engine, counts, setState: (s: MetaState) => (state = s) };
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

  it('a draining node answers a merge call waiting for its apply at once (applied: false) instead of holding the drain', async () => {
    const groups = new Map<number, FakeGroup>([
      [1, { record: { start: 0n, end: H, children: [] }, serving: true, applied: 9, voters: VOTERS }],
      [2, { record: { start: H, end: END, children: [] }, serving: true, applied: 4, voters: VOTERS }],
    ]);
    const merged = map(3n, [[0, 0n, END]]);
    // No peer answers, so the absorb never happens: the call would wait the whole apply wait (15 s).
    const { c } = setup(groups, merged, merged, new Map());
    let settled = false;
    const call = c.mergePartitions(0, 1).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(settled).toBe(false);
    const t0 = Date.now();
    c.drain();
    const out = await call;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(out).toMatchObject({ changed: false, applied: false, leftId: 0, rightId: 1 });
    await c.stop();
  });

  it('a pass over groups the map lists as they are asks no group for its status and reads no barrier (the steady state)', async () => {
    const n = 64;
    const step = END / BigInt(n);
    const groups = new Map<number, FakeGroup>();
    const parts: [number, bigint, bigint][] = [];
    for (let i = 0; i < n; i++) {
      const start = step * BigInt(i);
      const end = i === n - 1 ? END : start + step;
      groups.set(i + 1, { record: { start, end, children: [] }, serving: true, applied: 3, voters: VOTERS });
      parts.push([i, start, end]);
    }
    const steady = map(2n, parts);
    const { c, proposals, counts } = setup(groups, steady, steady, new Map());
    await c.reconcileNow();
    expect(proposals).toEqual([]);
    expect(counts).toEqual({ status: 0, barriers: 0 });
    await c.stop();
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
    expect(proposals).toEqual([
      { group: 1, command: { kind: 'absorb', c: { group: 2, start: H, end: END, freezeIndex: 5, confirmed: { voters: VOTERS, learners: [] } } } },
    ]);
    // Applied (the left record lists it): the absorbed group is retired here.
    expect(groups.get(1)?.record).toEqual({ start: 0n, end: END, children: [], absorbed: [{ group: 2, start: H, end: END }] });
    await c.reconcileNow();
    expect(removed).toEqual([2]);
    await c.stop();
  });

  it('an absorb refused on apply leaves the right group frozen and is proposed again once the memberships are equal', async () => {
    const frozenRecord: RangeRecord = { start: H, end: END, children: [], frozen: { into: 1, index: 5 } };
    const groups = new Map<number, FakeGroup>([
      // A learner joins the left group in the log between the absorb's proposal and its position.
      [1, { record: { start: 0n, end: H, children: [] }, serving: true, applied: 9, voters: VOTERS, changedBeforeNext: { voters: VOTERS, learners: ['d'] } }],
      [2, { record: frozenRecord, serving: false, applied: 5, voters: VOTERS }],
    ]);
    const merged = map(3n, [[0, 0n, END]]);
    const { c, proposals, removed, engine } = setup(
      groups,
      merged,
      merged,
      new Map([
        ['b', 5],
        ['c', 5],
      ]),
    );
    await engine.open();
    const settle = () => new Promise((r) => setTimeout(r, 10));
    await c.reconcileNow();
    await settle();
    expect(proposals).toHaveLength(1);
    expect(c.stats.absorbsRefused).toBe(1);
    expect(groups.get(1)?.record).toEqual({ start: 0n, end: H, children: [] });
    expect(groups.get(2)?.record).toEqual(frozenRecord);
    // The learner's change applied: the memberships differ, nothing is proposed.
    const left = groups.get(1) as FakeGroup;
    left.learners = ['d'];
    left.changedBeforeNext = undefined;
    await c.reconcileNow();
    await settle();
    expect(proposals).toHaveLength(1);
    expect(removed).toEqual([]);
    // Removed again: the absorb is proposed anew, applies, and the right group is retired.
    left.learners = [];
    await c.reconcileNow();
    await settle();
    expect(proposals).toHaveLength(2);
    expect(c.stats.absorbsRefused).toBe(1);
    expect(groups.get(1)?.record).toEqual({ start: 0n, end: END, children: [], absorbed: [{ group: 2, start: H, end: END }] });
    await c.reconcileNow();
    expect(removed).toEqual([2]);
    await c.stop();
  });
});
