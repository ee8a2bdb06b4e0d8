/**
 * A split applied by a data group's state machine (memory engine): the range narrows at the
 * split's log position, later commands for the split-off part are refused alike on every replica
 * and write nothing, the child's founding state is written in the same write (applied state with
 * the split's commit timestamp as floor, range record, hosting record, Raft bootstrap), the range
 * survives reopening; a lagging replica that installs a later snapshot of the parent adopts the
 * narrower range and the children; bad split commands change nothing.
 */
import { describe, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import { hostingKey } from '../membership/replica-hosting.ts';
import { DurableRaftLog } from '../replication/durable-raft-log.ts';
import { decodeAppliedState, GroupStateMachine } from '../replication/group-state-machine.ts';
import { encodePartitionSnapshot, type HashRange } from '../replication/partition-snapshot.ts';
import { appliedStateKey } from '../replication/raft-keys.ts';
import { commandEntry as cmd, putMutation as put } from '../testing/mutations.ts';
import { type ChildRange, decodeRangeRecord, rangeRecordKey, type SplitCommand, splitProposal, unwrapSnapshot, wrapSnapshot } from './split-command.ts';
import { SplitHost } from './split-host.ts';

const RANGE = { start: 100n, end: 200n };
const PARENT = 3;
const CHILD = 9;
const k = (s: string) => Buffer.from(s);
const SPLIT: SplitCommand = { at: 150n, childGroup: CHILD, childEnd: 200n, voters: ['a', 'b', 'c'], learners: [] };

async function engine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

function host(hosted: Set<number>, opened: ChildRange[], narrowed: HashRange[]): SplitHost {
  return new SplitHost({
    self: 'a' as never,
    hosted: (g) => hosted.has(g),
    open: async (g, range) => {
      hosted.add(g);
      opened.push({ group: g, ...range });
    },
    onNarrowed: (_p, cut) => narrowed.push(cut),
  });
}

describe('split apply', () => {
  it('narrows the range at the split, refuses later commands for the cut-off part, and founds the child in the same write', async () => {
    const e = await engine();
    const opened: ChildRange[] = [];
    const splits = host(new Set([PARENT]), opened, []);
    const sm = await GroupStateMachine.open({ engine: e, group: PARENT, range: RANGE, clock: new HybridClock({ nowMs: () => 1 }), splits });
    const out = sm.apply([
      cmd(1, 50n, [put(120n, 'low', '1'), put(170n, 'high', '1')]),
      cmd(2, 60n, splitProposal(SPLIT)),
      cmd(3, 70n, [put(170n, 'high', '2')]),
      cmd(4, 80n, [put(120n, 'low', '2')]),
      cmd(5, 90n, [put(120n, 'low', '3'), put(171n, 'other', '1')]),
    ]);
    expect((await Promise.all(out.map((a) => a.done))).map((o) => o.kind)).toEqual(['applied', 'applied', 'wrongPartition', 'applied', 'wrongPartition']);
    await sm.idle();
    expect(sm.range).toEqual({ start: 100n, end: 150n });
    expect(sm.applied.index).toBe(5);
    // Nothing of the refused commands was written; the split-off data stays where it was.
    expect((await e.get(170n, k('high'), MAX_TS, 0))?.value.toString()).toBe('1');
    expect((await e.get(120n, k('low'), MAX_TS, 0))?.value.toString()).toBe('2');
    expect(await e.get(171n, k('other'), MAX_TS, 0)).toBeUndefined();
    // The child: applied state with the floor, range record, hosting record, a founding Raft state.
    expect(decodeAppliedState((await e.getRaw(appliedStateKey(CHILD))) as Buffer)).toEqual({ index: 1, term: 1, maxCommitTs: 60n });
    expect(decodeRangeRecord((await e.getRaw(rangeRecordKey(CHILD))) as Buffer)).toEqual({ start: 150n, end: 200n, children: [] });
    expect(await e.getRaw(hostingKey(CHILD))).toBeDefined();
    const log = await DurableRaftLog.open(e, CHILD);
    expect(log.snapshotMetadata().confState.voters).toEqual(['a', 'b', 'c']);
    expect(opened).toEqual([{ group: CHILD, start: 150n, end: 200n }]);
    // The parent's range is its own from now on, whatever range it is opened with.
    const again = await GroupStateMachine.open({ engine: e, group: PARENT, range: RANGE, clock: new HybridClock({ nowMs: () => 1 }) });
    expect(again.range).toEqual({ start: 100n, end: 150n });
  });

  it('applies a split that does not fit the range as a refused no-op, and skips a child already hosted', async () => {
    const e = await engine();
    const hosted = new Set([PARENT, CHILD]);
    const sm = await GroupStateMachine.open({
      engine: e,
      group: PARENT,
      range: RANGE,
      clock: new HybridClock({ nowMs: () => 1 }),
      splits: host(hosted, [], []),
    });
    const out = sm.apply([
      cmd(1, 50n, splitProposal({ ...SPLIT, at: 250n, childEnd: 300n })),
      cmd(2, 51n, splitProposal({ ...SPLIT, childEnd: 190n })),
      cmd(3, 52n, splitProposal(SPLIT)),
    ]);
    expect((await Promise.all(out.map((a) => a.done))).map((o) => o.kind)).toEqual(['wrongPartition', 'wrongPartition', 'applied']);
    await sm.idle();
    expect(sm.range).toEqual({ start: 100n, end: 150n });
    expect(await e.getRaw(appliedStateKey(CHILD))).toBeUndefined();
  });

  it('a lagging replica installing a later snapshot of the parent adopts its range and children', async () => {
    const leader = await engine();
    const sm = await GroupStateMachine.open({
      engine: leader,
      group: PARENT,
      range: RANGE,
      clock: new HybridClock({ nowMs: () => 1 }),
      splits: host(new Set([PARENT]), [], []),
    });
    await Promise.all(sm.apply([cmd(1, 50n, [put(120n, 'low', '1'), put(170n, 'high', '1')]), cmd(2, 60n, splitProposal(SPLIT))]).map((a) => a.done));
    const record = { start: 100n, end: 150n, children: [{ group: CHILD, start: 150n, end: 200n }] };
    const data = wrapSnapshot(
      record,
      encodePartitionSnapshot({ maxCommitTs: 60n, rows: [{ hash: 120n, key: k('low'), value: k('1'), version: 50n, expiresAtMs: 0 }] }),
    );
    expect(unwrapSnapshot(data).record).toEqual(record);

    const lagging = await engine();
    const narrowed: HashRange[] = [];
    const replica = await GroupStateMachine.open({
      engine: lagging,
      group: PARENT,
      range: RANGE,
      clock: new HybridClock({ nowMs: () => 1 }),
      splits: host(new Set([PARENT]), [], narrowed),
    });
    await replica.installSnapshot({ metadata: { index: 2, term: 1, confState: { voters: [], learners: [] } }, data });
    expect(replica.range).toEqual({ start: 100n, end: 150n });
    expect(narrowed).toEqual([{ start: 150n, end: 200n }]);
    expect(decodeRangeRecord((await lagging.getRaw(rangeRecordKey(PARENT))) as Buffer)).toEqual(record);
    // Entries after the snapshot are judged by the narrower range, like on every other replica.
    const [later] = replica.apply([cmd(3, 70n, [put(170n, 'high', '2')])]);
    expect((await later?.done)?.kind).toBe('wrongPartition');
  });
});
