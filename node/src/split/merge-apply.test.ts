/**
 * The merge commands applied by data groups' state machines (memory engine): a freeze makes the
 * right group refuse every later data command and split alike (nothing written) and survives
 * reopening and snapshots (the wrapped record carries it); an absorb extends the left group's range
 * over the frozen one's at its log position (commands for the absorbed range apply from then on,
 * reading the rows the right group wrote); merge commands that do not fit are refused and change
 * nothing; retiring the absorbed group deletes its Raft state and keeps its rows and request
 * records, moving the records' GC index under the left group.
 */
import { describe, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import { readStoredGroups, tombstoneKey } from '../membership/replica-hosting.ts';
import type { Entry } from '../raft/types.ts';
import { GroupStateMachine } from '../replication/group-state-machine.ts';
import { encodePartitionSnapshot } from '../replication/partition-snapshot.ts';
import { appliedStateKey } from '../replication/raft-keys.ts';
import { type DataMutation, encodeCommand } from '../replication/replicated-command.ts';
import { decodeRecordIndexKey, recordIndexPut, recordIndexRange } from '../replication/request-record.ts';
import { absorbProposal, freezeProposal } from './merge-command.ts';
import { retireAbsorbedGroup } from './merge-retire.ts';
import { decodeRangeRecord, type RangeRecord, rangeRecordKey, splitProposal, unwrapSnapshot, wrapSnapshot } from './split-command.ts';

const LEFT = 2;
const RIGHT = 5;
const L_RANGE = { start: 0n, end: 100n };
const R_RANGE = { start: 100n, end: 200n };
const k = (s: string) => Buffer.from(s);
const put = (hash: bigint, key: string, value: string): DataMutation => ({ type: 'put', hash, key: k(key), value: k(value), expiresAtMs: 0 });
const cmd = (index: number, commitTs: bigint, mutations: readonly DataMutation[]): Entry => ({
  type: 'normal',
  index,
  term: 1,
  data: new Uint8Array(encodeCommand({ id: BigInt(index), commitTs, nowMs: 1000, mutations })),
});
const FREEZE = freezeProposal({ into: LEFT, ...R_RANGE, voters: ['a', 'b', 'c'], learners: [] });

async function engine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

const open = (e: StorageEngine, group: number, range: { start: bigint; end: bigint }) =>
  GroupStateMachine.open({ engine: e, group, range, clock: new HybridClock({ nowMs: () => 1 }) });

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
    const out = left.apply([
      cmd(1, 70n, [put(150n, 'r', 'early')]), // before the absorb: not its range
      cmd(2, 80n, absorbProposal({ group: RIGHT, start: 120n, end: 200n, freezeIndex: 2 })), // does not start at its end
      cmd(3, 90n, absorbProposal({ group: LEFT, ...R_RANGE, freezeIndex: 2 })), // itself
      cmd(4, 100n, absorbProposal({ group: RIGHT, ...R_RANGE, freezeIndex: 2 })),
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
