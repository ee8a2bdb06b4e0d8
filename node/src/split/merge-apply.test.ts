/**
 * The merge commands applied by data groups' state machines (memory engine): a freeze makes the
 * right group refuse every later data command and split alike (nothing written) and survives
 * reopening and snapshots (the wrapped record carries it); an absorb extends the left group's range
 * over the frozen one's at its log position (commands for the absorbed range apply from then on,
 * reading the rows the right group wrote); merge commands that do not fit are refused and change
 * nothing; an absorb is refused, writing nothing, when the left group's membership at its log
 * position (after the conf changes before it in the same log) is not the one that confirmed the
 * freeze, and every replica decides alike however it reaches that position (one batch, entry by
 * entry, from a snapshot); the runtime keeps that membership in step with the Raft core, across a
 * restart; retiring the absorbed group deletes its Raft state and keeps its rows and request
 * records, moving the records' GC index under the left group.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import { describe, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import { readStoredGroups, tombstoneKey } from '../membership/replica-hosting.ts';
import { ConfChangeType, type ConfState, type Entry, replicaId } from '../raft/types.ts';
import { type ApplyOutcome, decodeAppliedState, GroupStateMachine } from '../replication/group-state-machine.ts';
import { MultiRaft } from '../replication/multi-raft.ts';
import { encodePartitionSnapshot } from '../replication/partition-snapshot.ts';
import { appliedStateKey } from '../replication/raft-keys.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { decodeRecordIndexKey, recordIndexPut, recordIndexRange } from '../replication/request-record.ts';
import { commandEntry as cmd, putMutation as put } from '../testing/mutations.ts';
import { ABSORB_COMMAND_KEY, absorbProposal, freezeProposal, type Membership, mergeCommandOf } from './merge-command.ts';
import { retireAbsorbedGroup } from './merge-retire.ts';
import { decodeRangeRecord, type RangeRecord, rangeRecordKey, splitProposal, unwrapSnapshot, wrapSnapshot } from './split-command.ts';

const LEFT = 2;
const RIGHT = 5;
const L_RANGE = { start: 0n, end: 100n };
const R_RANGE = { start: 100n, end: 200n };
const k = (s: string) => Buffer.from(s);
const FREEZE = freezeProposal({ into: LEFT, ...R_RANGE, voters: ['a', 'b', 'c'], learners: [] });
const ids = (...xs: string[]) => xs.map(replicaId);
/** The membership that confirmed the freeze, and the left group's when it equals it. */
const ABC: Membership = { voters: ['a', 'b', 'c'], learners: [] };
const ABC_CONF: ConfState = { voters: ids('a', 'b', 'c'), learners: [] };
const absorb = (confirmed: Membership = ABC, over = R_RANGE) => absorbProposal({ group: RIGHT, ...over, freezeIndex: 2, confirmed });
const conf = (index: number, type: ConfChangeType, replica: string): Entry => ({
  type: 'confChange',
  index,
  term: 1,
  change: { type, replica: replicaId(replica) },
});
/** An absorb as first written (version 1 without the membership fields). */
const oldAbsorb = (): DataMutation[] => [
  {
    type: 'put',
    hash: 0n,
    key: ABSORB_COMMAND_KEY,
    value: Buffer.from(JSON.stringify({ v: 1, group: RIGHT, start: '100', end: '200', freezeIndex: 2 })),
    expiresAtMs: 0,
  },
];

async function engine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

const open = (e: StorageEngine, group: number, range: { start: bigint; end: bigint }) =>
  GroupStateMachine.open({ engine: e, group, range, clock: new HybridClock({ nowMs: () => 1 }) });

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const kinds = async (out: readonly { done: Promise<{ kind: string }> }[]) => (await Promise.all(out.map((a) => a.done))).map((o) => o.kind);

describe('merge apply', () => {
  it('freeze: the right group refuses every later command and split, durably and through snapshots', async () => {
    const e = await engine();
    const right = await open(e, RIGHT, R_RANGE);
    const out = right.apply([
      cmd(1, 50n, [put(150n, 'r', '1')]),
      cmd(2, 60n, FREEZE),
      cmd(3, 70n, [put(150n, 'r', '2')]),
      cmd(4, 80n, splitProposal({ at: 150n, childGroup: 9, childEnd: 200n, voters: ['a'], learners: [] })),
      cmd(5, 90n, FREEZE),
      cmd(6, 95n, []),
    ]);
    expect(await kinds(out)).toEqual(['applied', 'applied', 'wrongPartition', 'wrongPartition', 'wrongPartition', 'wrongPartition']);
    await right.idle();
    expect(right.frozen).toEqual({ into: LEFT, index: 2 });
    expect(right.range).toEqual(R_RANGE);
    expect((await e.get(150n, k('r'), MAX_TS, 0))?.value.toString()).toBe('1');
    expect(decodeRangeRecord((await e.getRaw(rangeRecordKey(RIGHT))) as Buffer).frozen).toEqual({ into: LEFT, index: 2 });
    // Reopened: still frozen. Its snapshot carries the frozen record; a lagging replica installing it is frozen too.
    const again = await open(e, RIGHT, R_RANGE);
    expect(again.frozen).toEqual({ into: LEFT, index: 2 });
    const snap = await again.snapshotData();
    expect(unwrapSnapshot(snap.data).record?.frozen).toEqual({ into: LEFT, index: 2 });
    const e2 = await engine();
    const lagging = await open(e2, RIGHT, R_RANGE);
    const record = unwrapSnapshot(snap.data).record as RangeRecord;
    const data = wrapSnapshot(
      record,
      encodePartitionSnapshot({ maxCommitTs: 60n, rows: [{ hash: 150n, key: k('r'), value: k('1'), version: 50n, expiresAtMs: 0 }] }),
    );
    await lagging.installSnapshot({ metadata: { index: 6, term: 1, confState: { voters: [], learners: [] } }, data });
    expect((await e2.get(150n, k('r'), MAX_TS, 0))?.value.toString()).toBe('1');
    expect(lagging.frozen).toEqual({ into: LEFT, index: 2 });
    expect(await kinds(lagging.apply([cmd(7, 100n, [put(150n, 'r', '3')])]))).toEqual(['wrongPartition']);
  });

  it('absorb: the left group owns the merged range from its log position on; misfits change nothing', async () => {
    const e = await engine();
    const right = await open(e, RIGHT, R_RANGE);
    await Promise.all(right.apply([cmd(1, 50n, [put(150n, 'r', '1')]), cmd(2, 60n, FREEZE)]).map((a) => a.done));
    const left = await open(e, LEFT, L_RANGE);
    left.assumeMembership(ABC_CONF);
    const out = left.apply([
      cmd(1, 70n, [put(150n, 'r', 'early')]), // before the absorb: not its range
      cmd(2, 80n, absorb(ABC, { start: 120n, end: 200n })), // does not start at its end
      cmd(3, 90n, absorbProposal({ group: LEFT, ...R_RANGE, freezeIndex: 2, confirmed: ABC })), // itself
      cmd(4, 100n, absorb()),
      cmd(5, 110n, [put(150n, 'r', '2'), put(50n, 'l', '1')]),
      cmd(6, 120n, [put(250n, 'x', '1')]),
    ]);
    expect(await kinds(out)).toEqual(['wrongPartition', 'wrongPartition', 'wrongPartition', 'applied', 'applied', 'wrongPartition']);
    await left.idle();
    expect(left.range).toEqual({ start: 0n, end: 200n });
    expect(left.rangeRecord.absorbed).toEqual([{ group: RIGHT, ...R_RANGE }]);
    expect(left.applied.maxCommitTs).toBe(110n); // refused commands stamp nothing
    expect((await e.get(150n, k('r'), MAX_TS, 0))?.value.toString()).toBe('2');
    expect((await e.get(150n, k('r'), 60n, 0))?.value.toString()).toBe('1');
    const reopened = await open(e, LEFT, L_RANGE);
    expect(reopened.range).toEqual({ start: 0n, end: 200n });
    // A lagging replica of the left group installing a later snapshot adopts the merged range.
    const snap = await reopened.snapshotData();
    const e2 = await engine();
    const lagging = await open(e2, LEFT, L_RANGE);
    const record = unwrapSnapshot(snap.data).record as RangeRecord;
    const data = wrapSnapshot(
      record,
      encodePartitionSnapshot({ maxCommitTs: 110n, rows: [{ hash: 150n, key: k('r'), value: k('2'), version: 110n, expiresAtMs: 0 }] }),
    );
    await lagging.installSnapshot({ metadata: { index: 6, term: 1, confState: { voters: [], learners: [] } }, data });
    expect((await e2.get(150n, k('r'), MAX_TS, 0))?.value.toString()).toBe('2');
    expect(lagging.range).toEqual({ start: 0n, end: 200n });
    expect(lagging.rangeRecord.absorbed).toEqual([{ group: RIGHT, ...R_RANGE }]);
  });

  it('absorb: refused on apply while the membership at its log position is not the confirmed one; every replica decides alike', async () => {
    const { AddLearner, RemoveReplica } = ConfChangeType;
    // The left group's log. A learner added before the absorb (2) makes it a no-op everywhere (3);
    // once it is removed again (5) the next absorb (6) applies; a change after it (7) changes nothing.
    const log: Entry[] = [
      cmd(1, 70n, [put(50n, 'l', '1')]),
      conf(2, AddLearner, 'd'),
      cmd(3, 80n, absorb()),
      cmd(4, 90n, [put(150n, 'r', 'refused')]),
      conf(5, RemoveReplica, 'd'),
      cmd(6, 100n, absorb()),
      conf(7, AddLearner, 'e'),
      cmd(8, 110n, [put(150n, 'r', '2')]),
    ];
    const expected = ['applied', 'noop', 'wrongPartition', 'wrongPartition', 'noop', 'applied', 'noop', 'applied'];
    /** A node holding the frozen right group (its rows: r = 1) and a left replica that knows `membership` at `at`. */
    const replica = async () => {
      const e = await engine();
      const right = await open(e, RIGHT, R_RANGE);
      await Promise.all(right.apply([cmd(1, 50n, [put(150n, 'r', '1')]), cmd(2, 60n, FREEZE)]).map((a) => a.done));
      const left = await open(e, LEFT, L_RANGE);
      left.assumeMembership(ABC_CONF);
      return { e, left };
    };
    const leftRow = { hash: 50n, key: k('l'), value: k('1'), version: 70n, expiresAtMs: 0 };
    const outcomes = async (out: readonly { index: number; done: Promise<ApplyOutcome> }[]) =>
      Object.fromEntries(await Promise.all(out.map(async (a) => [a.index, (await a.done).kind] as const)));

    // A: the whole log in one batch (the learner's addition and the absorb in the same Ready).
    const a = await replica();
    const outA = await outcomes(a.left.apply(log));
    // B: entry by entry; the refused absorb writes nothing, and the right group stays frozen.
    const b = await replica();
    const outB: Record<number, string> = {};
    const recordBefore = await b.e.getRaw(rangeRecordKey(LEFT));
    for (const entry of log) {
      Object.assign(outB, await outcomes(b.left.apply([entry])));
      await b.left.idle();
      if (entry.index === 3 || entry.index === 4) {
        expect(await b.e.getRaw(rangeRecordKey(LEFT))).toEqual(recordBefore);
        expect(b.left.range).toEqual(L_RANGE);
        expect(b.left.rangeRecord.absorbed).toBeUndefined();
        expect(decodeAppliedState((await b.e.getRaw(appliedStateKey(LEFT))) as Buffer)).toEqual({ index: entry.index, term: 1, maxCommitTs: 70n });
        expect((await b.e.get(150n, k('r'), MAX_TS, 0))?.value.toString()).toBe('1');
        expect(decodeRangeRecord((await b.e.getRaw(rangeRecordKey(RIGHT))) as Buffer).frozen).toEqual({ into: LEFT, index: 2 });
      }
    }
    // C: a snapshot at 2 (its membership has the learner), then the rest of the log.
    const c = await replica();
    await c.left.installSnapshot({
      metadata: { index: 2, term: 1, confState: { voters: ids('a', 'b', 'c'), learners: ids('d') } },
      data: encodePartitionSnapshot({ maxCommitTs: 70n, rows: [leftRow] }),
    });
    const outC = await outcomes(c.left.apply(log.slice(2)));
    // D: a snapshot at 5 (the learner removed again), then the rest.
    const d = await replica();
    await d.left.installSnapshot({
      metadata: { index: 5, term: 1, confState: ABC_CONF },
      data: encodePartitionSnapshot({ maxCommitTs: 70n, rows: [leftRow] }),
    });
    const outD = await outcomes(d.left.apply(log.slice(5)));

    const byIndex = Object.fromEntries(expected.map((kind, i) => [i + 1, kind]));
    expect(outA).toEqual(byIndex);
    expect(outB).toEqual(byIndex);
    expect(outC).toEqual(Object.fromEntries(Object.entries(byIndex).filter(([i]) => Number(i) > 2)));
    expect(outD).toEqual(Object.fromEntries(Object.entries(byIndex).filter(([i]) => Number(i) > 5)));
    for (const r of [a, b, c, d]) {
      await r.left.idle();
      expect(r.left.range).toEqual({ start: 0n, end: 200n });
      expect(decodeRangeRecord((await r.e.getRaw(rangeRecordKey(LEFT))) as Buffer)).toEqual({
        start: 0n,
        end: 200n,
        children: [],
        absorbed: [{ group: RIGHT, ...R_RANGE }],
      });
      expect(r.left.membership).toEqual({ voters: ids('a', 'b', 'c'), learners: ids('e') });
      expect(r.left.applied).toEqual({ index: 8, term: 1, maxCommitTs: 110n });
      expect((await r.e.scan({ startHash: 0n, endHash: 200n }, MAX_TS, 0, 10)).items.map((x) => `${x.key}=${x.value}@${x.version}`)).toEqual([
        'l=1@70',
        'r=2@110',
      ]);
    }
  });

  it('absorb: refused without a known membership; absorbs written before the check apply unchecked; bad membership fields are invalid', async () => {
    const e = await engine();
    const right = await open(e, RIGHT, R_RANGE);
    await Promise.all(right.apply([cmd(1, 50n, [put(150n, 'r', '1')]), cmd(2, 60n, FREEZE)]).map((a) => a.done));
    const unknown = await open(e, LEFT, L_RANGE);
    expect(await kinds(unknown.apply([cmd(1, 70n, absorb())]))).toEqual(['wrongPartition']);
    expect(unknown.range).toEqual(L_RANGE);
    // An old absorb, although the membership differs: applied as it was before the check existed (replay stays identical).
    const e2 = await engine();
    const old = await open(e2, LEFT, L_RANGE);
    old.assumeMembership({ voters: ids('a', 'b', 'c'), learners: ids('d') });
    expect(await kinds(old.apply([cmd(1, 70n, oldAbsorb())]))).toEqual(['applied']);
    expect(old.range).toEqual({ start: 0n, end: 200n });

    const decode = (fields: Record<string, unknown>) =>
      mergeCommandOf({
        id: 1n,
        commitTs: 1n,
        nowMs: 0,
        mutations: [
          {
            type: 'put',
            hash: 0n,
            key: ABSORB_COMMAND_KEY,
            value: Buffer.from(JSON.stringify({ v: 1, group: RIGHT, start: '100', end: '200', freezeIndex: 2, ...fields })),
            expiresAtMs: 0,
          },
        ],
      });
    expect(decode({})).toEqual({ kind: 'absorb', c: { group: RIGHT, ...R_RANGE, freezeIndex: 2 } });
    expect(decode({ voters: ['a', 'b'], learners: ['c'] })).toEqual({
      kind: 'absorb',
      c: { group: RIGHT, ...R_RANGE, freezeIndex: 2, confirmed: { voters: ['a', 'b'], learners: ['c'] } },
    });
    for (const bad of [
      { voters: ['a'] }, // learners missing
      { learners: [] }, // voters missing
      { voters: [], learners: [] },
      { voters: ['a', 'a'], learners: [] },
      { voters: ['a'], learners: ['a'] },
      { voters: ['A b'], learners: [] },
      { voters: 'a', learners: [] },
    ])
      expect(decode(bad), JSON.stringify(bad)).toBe('invalid');
    expect(mergeCommandOf({ id: 1n, commitTs: 1n, nowMs: 0, mutations: absorb() })).toEqual({
      kind: 'absorb',
      c: { group: RIGHT, ...R_RANGE, freezeIndex: 2, confirmed: ABC },
    });
    expect(() => absorb({ voters: [], learners: [] })).toThrow(/no voters/);
  });

  it('the runtime keeps the state machine membership in step with the Raft core, also after a restart', async () => {
    const e = await engine();
    const n1 = 'n1' as NodeId;
    const transport = { send: () => undefined, close: () => undefined };
    const clock = new HybridClock();
    const start = async () => {
      const mr = new MultiRaft({ nodeId: n1, engine: e, transport, clock, tickMs: 5, randomSeed: 3 });
      await mr.addGroup({ group: LEFT, range: L_RANGE, bootstrap: [n1] });
      await mr.addGroup({ group: RIGHT, range: R_RANGE, bootstrap: [n1] });
      mr.start();
      await until(() => mr.status(LEFT)?.serving === true && mr.status(RIGHT)?.serving === true);
      return mr;
    };
    const refusedOnApply = (p: Promise<unknown>) =>
      p.then(
        () => 'applied',
        (err: unknown) => (err instanceof KeyVaError ? err.code : String(err)),
      );
    let mr = await start();
    expect((await mr.propose(RIGHT, [put(150n, 'r', '1')])).ok).toBe(true);
    expect((await mr.propose(RIGHT, freezeProposal({ into: LEFT, ...R_RANGE, voters: ['n1'], learners: [] }))).ok).toBe(true);
    const added = mr.proposeConfChange(LEFT, { type: ConfChangeType.AddLearner, replica: replicaId('n2') });
    expect(added?.ok).toBe(true);
    await until(() => mr.status(LEFT)?.learners.includes('n2' as NodeId) === true);
    // The learner landed before the absorb: refused on apply, nothing changed.
    expect(await refusedOnApply(mr.propose(LEFT, absorb({ voters: ['n1'], learners: [] })))).toBe('WRONG_PARTITION');
    expect(mr.rangeRecordOf(LEFT)?.end).toBe(100n);
    await mr.stop();
    // Restarted: the state machine starts from the core's membership at its applied index (learner n2 included).
    mr = await start();
    expect(await refusedOnApply(mr.propose(LEFT, absorb({ voters: ['n1'], learners: [] })))).toBe('WRONG_PARTITION');
    expect(await refusedOnApply(mr.propose(LEFT, absorb({ voters: ['n1'], learners: ['n2'] })))).toBe('applied');
    expect(mr.rangeRecordOf(LEFT)).toMatchObject({ end: 200n, absorbed: [{ group: RIGHT, ...R_RANGE }] });
    expect((await e.get(150n, k('r'), MAX_TS, 0))?.value.toString()).toBe('1');
    await mr.stop();
  });

  it('retire: the absorbed group loses its Raft state (tombstone with no range), keeps its rows, and its request-record index moves', async () => {
    const e = await engine();
    const right = await open(e, RIGHT, R_RANGE);
    await Promise.all(right.apply([cmd(1, 50n, [put(150n, 'r', '1')]), cmd(2, 60n, FREEZE)]).map((a) => a.done));
    await e.write({
      mutations: [recordIndexPut({ group: RIGHT, version: 50n, hash: 150n, requestId: Buffer.alloc(16, 7) })],
      commitTs: 1n,
      nowMs: 0,
      sync: false,
    });
    let removed = 0;
    const moved = await retireAbsorbedGroup(e, { removeGroup: async () => (removed++, true) }, RIGHT, LEFT);
    expect(removed).toBe(1);
    expect(moved).toBe(1);
    expect(await e.getRaw(appliedStateKey(RIGHT))).toBeUndefined();
    expect(await e.getRaw(rangeRecordKey(RIGHT))).toBeUndefined();
    expect(await e.getRaw(tombstoneKey(RIGHT))).toBeDefined();
    expect((await e.get(150n, k('r'), MAX_TS, 0))?.value.toString()).toBe('1');
    const stored = await readStoredGroups(e);
    expect(stored.tombstones.get(RIGHT)).toEqual({ start: 0n, end: 0n });
    const { lo, hi } = recordIndexRange(LEFT, 1n << 63n);
    expect((await e.scanRaw(lo, hi, 10)).map((r) => decodeRecordIndexKey(r.key)?.group)).toEqual([LEFT]);
    const { lo: rlo, hi: rhi } = recordIndexRange(RIGHT, 1n << 63n);
    expect(await e.scanRaw(rlo, rhi, 10)).toEqual([]);
    // Again (a crash after the copy): nothing breaks, the rows stay.
    await retireAbsorbedGroup(e, { removeGroup: async () => false }, RIGHT, LEFT);
    expect((await e.get(150n, k('r'), MAX_TS, 0))?.value.toString()).toBe('1');
  });
});
