import { describe, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { HASH_SPACE_END, MAX_TS, type StorageEngine } from '../engine/types.ts';
import type { Entry, ReplicaId } from '../raft/types.ts';
import { GroupStateMachine } from './group-state-machine.ts';
import { decodeSnapshotDescriptor, encodeRows, isStreamedSnapshot, scanPartition, snapshotReadTs } from './partition-snapshot.ts';
import { appliedStateKey } from './raft-keys.ts';
import { type DataMutation, encodeCommand } from './replicated-command.ts';
import { EngineSnapshotStaging } from './snapshot-staging-engine.ts';

const RANGE = { start: 100n, end: 200n };
const k = (s: string) => Buffer.from(s);
const put = (hash: bigint, key: string, value: string, condition?: DataMutation['condition']): DataMutation => ({
  type: 'put',
  hash,
  key: k(key),
  value: k(value),
  expiresAtMs: 0,
  condition,
});
const cmd = (index: number, term: number, commitTs: bigint, mutations: DataMutation[]): Entry => ({
  type: 'normal',
  index,
  term,
  data: new Uint8Array(encodeCommand({ id: BigInt(index), commitTs, nowMs: 1000, mutations })),
});
const empty = (index: number, term: number): Entry => ({ type: 'normal', index, term, data: new Uint8Array(0) });

async function engine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

async function open(e: StorageEngine, clock = new HybridClock({ nowMs: () => 1 })) {
  return GroupStateMachine.open({ engine: e, group: 3, range: RANGE, clock });
}

describe('GroupStateMachine', () => {
  it('applies each command as one write at its commitTs, with the applied state, and reopens there', async () => {
    const e = await engine();
    const sm = await open(e);
    const applied = sm.apply([
      empty(1, 1),
      cmd(2, 1, 50n, [put(150n, 'a', '1'), put(151n, 'b', '1')]),
      cmd(3, 1, 60n, [put(150n, 'a', '2'), { type: 'delete', hash: 151n, key: k('b') }, { type: 'delete', hash: 152n, key: k('c') }]),
      { type: 'confChange', index: 4, term: 1, change: { type: 'addLearner', replica: 'x' as ReplicaId } },
    ]);
    const outcomes = await Promise.all(applied.map((a) => a.done));
    expect(outcomes).toEqual([
      { kind: 'noop' },
      { kind: 'applied', existed: [false, false] },
      { kind: 'applied', existed: [true, true, false] },
      { kind: 'noop' },
    ]);
    await sm.idle();
    expect(sm.applied).toEqual({ index: 4, term: 1, maxCommitTs: 60n });
    expect((await e.get(150n, k('a'), MAX_TS, 0))?.version).toBe(60n);
    expect((await e.get(150n, k('a'), 55n, 0))?.value.toString()).toBe('1');
    expect(await e.get(151n, k('b'), MAX_TS, 0)).toBeUndefined();

    const clock = new HybridClock({ nowMs: () => 0 });
    const again = await open(e, clock);
    expect(again.applied).toEqual({ index: 4, term: 1, maxCommitTs: 60n });
    expect(clock.now() > 60n).toBe(true);
  });

  it('a failed condition writes nothing (applied state included), the same way on every replica', async () => {
    const replicas = [await engine(), await engine()];
    const results = [];
    for (const e of replicas) {
      const sm = await open(e);
      const a = sm.apply([
        cmd(1, 1, 10n, [put(150n, 'a', '1', { kind: 'absent' })]),
        cmd(2, 1, 11n, [put(150n, 'a', '2', { kind: 'absent' })]),
        cmd(3, 1, 12n, [put(150n, 'a', '3', { kind: 'versionEquals', version: 10n })]),
        cmd(4, 1, 13n, [put(150n, 'a', '4', { kind: 'versionEquals', version: 10n })]),
      ]);
      results.push(await Promise.all(a.map((x) => x.done)));
      await sm.idle();
      // In memory the failed entry is applied (as a no-op) ...
      expect(sm.applied.index).toBe(4);
      expect((await e.get(150n, k('a'), MAX_TS, 0))?.version).toBe(12n);
    }
    expect(results[0]).toEqual(results[1]);
    expect(results[0]?.map((o) => o.kind)).toEqual(['applied', 'conditionFailed', 'applied', 'conditionFailed']);
    expect(results[0]?.[3]).toEqual({ kind: 'conditionFailed', failedIndex: 0, currentVersion: 12n });
    // ... on disk the applied state stops at the last write that happened: replay re-fails entry 4.
    expect((await open(replicas[0]!)).applied.index).toBe(3);
  });

  it('skips bytes that are not a command on every replica, counted', async () => {
    const e = await engine();
    const sm = await open(e);
    const [a] = sm.apply([{ type: 'normal', index: 1, term: 1, data: new Uint8Array([9, 9, 9]) }]);
    expect(await a?.done).toEqual({ kind: 'noop' });
    expect(sm.stats.corruptCommands).toBe(1);
    expect(() => sm.apply([empty(3, 1)])).toThrow(/entry 3 applied after 1/);
  });

  /** What the snapshot streams do (`snapshot-sender.ts` / `snapshot-receiver.ts`), without gRPC: read the rows, stage them. */
  async function stream(src: StorageEngine, dst: StorageEngine, data: Uint8Array, id: { index: number; term: number }): Promise<void> {
    const desc = decodeSnapshotDescriptor(data);
    let seq = 0;
    let rows = 0;
    let bytes = 0;
    const staging = new EngineSnapshotStaging(dst);
    for await (const page of scanPartition(src, desc.range, snapshotReadTs(src, desc.maxCommitTs))) {
      const chunk = encodeRows(page);
      await staging.stage(3, id, seq++, chunk);
      rows += page.length;
      bytes += chunk.length;
    }
    await staging.complete(3, id, { chunks: seq, rows, bytes });
  }

  it('a snapshot is a descriptor of the range and max commit timestamp; the staged rows replace only the range on install', async () => {
    const src = await engine();
    const sm = await open(src);
    sm.apply([
      cmd(1, 1, 10n, [put(150n, 'a', '1'), put(199n, 'z', 'z')]),
      cmd(2, 1, 20n, [put(150n, 'a', '2'), put(160n, 'ttl', 't')]),
      cmd(3, 2, 30n, [{ type: 'delete', hash: 199n, key: k('z') }]),
    ]);
    const snap = await sm.snapshotData();
    expect(snap?.state).toEqual({ index: 3, term: 2, maxCommitTs: 30n });
    expect(isStreamedSnapshot(snap!.data)).toBe(true);
    expect(decodeSnapshotDescriptor(snap!.data)).toEqual({ maxCommitTs: 30n, range: RANGE });
    // The leader keeps applying while it streams: the rows are read at the snapshot's timestamp.
    await sm.apply([cmd(4, 2, 40n, [put(150n, 'a', 'after'), put(170n, 'new', 'x')])])[0]?.done;

    const dst = await engine();
    await dst.write({ mutations: [put(120n, 'stale', 'x'), put(99n, 'outside', 'x'), put(200n, 'outside2', 'x')], commitTs: 5n, nowMs: 0, sync: false });
    const clock = new HybridClock({ nowMs: () => 0 });
    const target = await open(dst, clock);
    const id = { index: 3, term: 2 };
    await stream(src, dst, snap!.data, id);
    await target.installSnapshot({ metadata: { index: 3, term: 2, confState: { voters: [], learners: [] } }, data: snap!.data });
    expect(target.installing).toBe(false);
    expect(target.applied).toEqual({ index: 3, term: 2, maxCommitTs: 30n });
    expect(clock.now() > 30n).toBe(true);
    const rows = async (eng: StorageEngine) =>
      (await eng.scan({ startHash: 0n, endHash: HASH_SPACE_END }, MAX_TS, 0, 100)).items.map((i) => `${i.hash}/${i.key}@${i.version}=${i.value}`);
    expect(await rows(dst)).toEqual(['99/outside@5=x', '150/a@20=2', '160/ttl@20=t', '200/outside2@5=x']);
    expect((await dst.getRaw(appliedStateKey(3)))?.length).toBe(24);
    expect(await new EngineSnapshotStaging(dst).ids(3)).toEqual([]); // the staging is cleared once installed
    // Applying continues after the snapshot.
    const [next] = target.apply([cmd(4, 2, 40n, [put(150n, 'a', '3', { kind: 'versionEquals', version: 20n })])]);
    expect((await next?.done)?.kind).toBe('applied');
  });

  it('installing a streamed snapshot whose rows are not completely staged fails and leaves the data', async () => {
    const src = await engine();
    const sm = await open(src);
    await sm.apply([cmd(1, 1, 10n, [put(150n, 'a', '1')])])[0]?.done;
    const snap = await sm.snapshotData();
    const dst = await engine();
    await dst.write({ mutations: [put(120n, 'old', 'x')], commitTs: 5n, nowMs: 0, sync: false });
    let fatal: Error | undefined;
    const target = await GroupStateMachine.open({ engine: dst, group: 3, range: RANGE, clock: new HybridClock(), onFatal: (e) => (fatal = e) });
    // A chunk staged, no completion record (a transfer cut off).
    await new EngineSnapshotStaging(dst).stage(3, { index: 1, term: 1 }, 0, encodeRows([]));
    await expect(target.installSnapshot({ metadata: { index: 1, term: 1, confState: { voters: [], learners: [] } }, data: snap!.data })).rejects.toThrow(
      /not staged/,
    );
    expect(fatal?.message).toMatch(/not staged/);
    expect((await dst.scan({ startHash: 0n, endHash: HASH_SPACE_END }, MAX_TS, 0, 100)).items.map((i) => i.key.toString())).toEqual(['old']);
  });
});
