/**
 * Exactly-once writes in the partition state machine (docs/adr/0011-exactly-once-writes.md):
 * duplicates skipped with the first result, the same decision on every replica, on replay and
 * after a snapshot, and expiry by replicated deletes only.
 */
import { keyHash } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { HybridClock, tsFromMs } from '../clock/hybrid-clock.ts';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { HASH_SPACE_END, MAX_TS, type StorageEngine } from '../engine/types.ts';
import type { Entry } from '../raft/types.ts';
import { type ApplyOutcome, GroupStateMachine } from './group-state-machine.ts';
import { decodeSnapshotDescriptor, encodeRows, scanPartition, snapshotReadTs } from './partition-snapshot.ts';
import { type DataMutation, encodeCommand } from './replicated-command.ts';
import { decodeRecordIndexKey, isRequestRecord, REQUEST_RECORD_PREFIX, recordIndexRange, requestRecordKey } from './request-record.ts';
import { RequestRecordGc } from './request-record-gc.ts';
import { EngineSnapshotStaging } from './snapshot-staging-engine.ts';

const GROUP = 3;
const RANGE = { start: 100n, end: 200n };
const k = (s: string) => Buffer.from(s);
const rid = (n: number) => Buffer.alloc(16, n);
const put = (hash: bigint, key: string, value: string, condition?: DataMutation['condition']): DataMutation => ({
  type: 'put',
  hash,
  key: k(key),
  value: k(value),
  expiresAtMs: 0,
  condition,
});
/** A command at log position `index`, stamped at `ms` (HLC `ms << 16`). */
const cmd = (index: number, ms: number, mutations: DataMutation[], requestId?: Buffer): Entry => ({
  type: 'normal',
  index,
  term: 1,
  data: new Uint8Array(encodeCommand({ id: BigInt(index), commitTs: tsFromMs(ms), nowMs: ms, mutations, requestId })),
});

async function engine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

const open = (e: StorageEngine) => GroupStateMachine.open({ engine: e, group: GROUP, range: RANGE, clock: new HybridClock({ nowMs: () => 1 }) });

async function applyAll(sm: GroupStateMachine, entries: Entry[]): Promise<ApplyOutcome[]> {
  const out = await Promise.all(sm.apply(entries).map((a) => a.done));
  await sm.idle();
  return out;
}

/** User-visible rows (what a scan answers): records filtered out as `KvStore.scan` does. */
async function userRows(e: StorageEngine): Promise<string[]> {
  const page = await e.scan({ startHash: 0n, endHash: HASH_SPACE_END }, MAX_TS, 0, 1000);
  return page.items.filter((i) => !isRequestRecord(i.hash, i.key)).map((i) => `${i.key}@${i.version >> 16n}=${i.value}`);
}

async function indexEntries(e: StorageEngine, group = GROUP) {
  const { lo, hi } = recordIndexRange(group, MAX_TS);
  return (await e.scanRaw(lo, hi, 1000)).map((r) => decodeRecordIndexKey(r.key));
}

describe('exactly-once writes in the partition state machine', () => {
  it('a resent command is not applied again and answers with the first application, on every replica and on replay', async () => {
    const log: Entry[] = [
      cmd(1, 1000, [put(150n, 'a', '1')], rid(1)),
      cmd(2, 1001, [put(150n, 'a', '2')]), // another client's write in between
      cmd(3, 1002, [put(150n, 'a', '1')], rid(1)), // the delayed resend of entry 1
      cmd(4, 1003, [{ type: 'delete', hash: 151n, key: k('b') }, put(150n, 'c', 'x')], rid(2)),
      cmd(5, 1004, [{ type: 'delete', hash: 151n, key: k('b') }, put(150n, 'c', 'x')], rid(2)),
    ];
    const results: ApplyOutcome[][] = [];
    const replicas = [await engine(), await engine()];
    for (const e of replicas) {
      const sm = await open(e);
      results.push(await applyAll(sm, log));
      expect(sm.stats.duplicates).toBe(2);
      expect(sm.applied.index).toBe(5);
    }
    expect(results[0]).toEqual(results[1]);
    expect(results[0]).toEqual([
      { kind: 'applied', existed: [false] },
      { kind: 'applied', existed: [true] },
      // The resend: nothing written, the first application's version; the later write survives.
      { kind: 'applied', existed: [false], version: tsFromMs(1000), deduplicated: true },
      { kind: 'applied', existed: [false, false] },
      { kind: 'applied', existed: [false, false], version: tsFromMs(1003), deduplicated: true },
    ]);
    expect(await userRows(replicas[0] as StorageEngine)).toEqual(['a@1001=2', 'c@1003=x']);
    // Records are data rows in the range, at the first mutation's hash, invisible to user scans.
    const raw = (await (replicas[0] as StorageEngine).scan({ startHash: RANGE.start, endHash: RANGE.end }, MAX_TS, 0, 100)).items;
    expect(raw.filter((i) => isRequestRecord(i.hash, i.key)).map((i) => [i.hash, i.version])).toEqual([
      [150n, tsFromMs(1000)],
      [151n, tsFromMs(1003)], // the hash of entry 4's first mutation
    ]);
    expect((await indexEntries(replicas[0] as StorageEngine)).map((x) => x?.version)).toEqual([tsFromMs(1000), tsFromMs(1003)]);

    // Replay after a crash: a duplicate writes nothing (applied state included), so the stored
    // applied index is 4 and entry 5 is replayed; it meets the same record and is skipped again.
    const reopened = await open(replicas[1] as StorageEngine);
    expect(reopened.applied.index).toBe(4);
    expect(await applyAll(reopened, [log[4] as Entry])).toEqual([results[0]?.[4]]);
    expect(await userRows(replicas[1] as StorageEngine)).toEqual(['a@1001=2', 'c@1003=x']);
  });

  it('a conditional write: a resend of one that applied is answered as applied (not CONDITION_FAILED); a resend of one that failed is evaluated again', async () => {
    const e = await engine();
    const sm = await open(e);
    const out = await applyAll(sm, [
      cmd(1, 1000, [put(150n, 'a', '1', { kind: 'absent' })], rid(1)),
      cmd(2, 1001, [put(150n, 'a', '1', { kind: 'absent' })], rid(1)),
      cmd(3, 1002, [put(160n, 'b', '1', { kind: 'exists' })], rid(2)), // fails: b does not exist; writes nothing, no record
      cmd(4, 1003, [put(160n, 'b', '0')]),
      cmd(5, 1004, [put(160n, 'b', '1', { kind: 'exists' })], rid(2)), // the resend meets b and applies
      cmd(6, 1005, [put(150n, 'z', 'z'), put(160n, 'b', '2', { kind: 'absent' })], rid(3)), // user condition on mutation 1
    ]);
    expect(out).toEqual([
      { kind: 'applied', existed: [false] },
      { kind: 'applied', existed: [false], version: tsFromMs(1000), deduplicated: true },
      { kind: 'conditionFailed', failedIndex: 0, currentVersion: 0n },
      { kind: 'applied', existed: [false] },
      { kind: 'applied', existed: [true] },
      // failedIndex counts the command's own mutations, not the record.
      { kind: 'conditionFailed', failedIndex: 1, currentVersion: tsFromMs(1004) },
    ]);
    expect(await userRows(e)).toEqual(['a@1000=1', 'b@1004=1']);
  });

  it('records travel with a snapshot: the installed replica skips the same resends and indexes them for GC', async () => {
    const src = await engine();
    const sm = await open(src);
    await applyAll(sm, [cmd(1, 1000, [put(150n, 'a', '1')], rid(7)), cmd(2, 1001, [put(150n, 'a', '2')])]);
    const snap = await sm.snapshotData();
    const dst = await engine();
    const id = { index: 2, term: 1 };
    const desc = decodeSnapshotDescriptor(snap.data);
    let seq = 0;
    let rows = 0;
    let bytes = 0;
    const staging = new EngineSnapshotStaging(dst);
    for await (const page of scanPartition(src, desc.range, snapshotReadTs(src, desc.maxCommitTs))) {
      const chunk = encodeRows(page);
      await staging.stage(GROUP, id, seq++, chunk);
      rows += page.length;
      bytes += chunk.length;
    }
    await staging.complete(GROUP, id, { chunks: seq, rows, bytes });
    const target = await open(dst);
    await target.installSnapshot({ metadata: { index: 2, term: 1, confState: { voters: [], learners: [] } }, data: snap.data });
    expect((await indexEntries(dst)).map((x) => x?.version)).toEqual([tsFromMs(1000)]);
    const resend = cmd(3, 1002, [put(150n, 'a', '1')], rid(7));
    const [a] = await applyAll(sm, [resend]);
    const [b] = await applyAll(target, [resend]);
    expect(b).toEqual(a);
    expect(b).toMatchObject({ deduplicated: true, version: tsFromMs(1000) });
    expect(await userRows(dst)).toEqual(['a@1001=2']);
  });

  it('expiry is a replicated delete proposed by the leader: every replica forgets the id at the same log position', async () => {
    const replicas = [await engine(), await engine()];
    const sms = await Promise.all(replicas.map(open));
    let index = 0;
    /** The log: every entry goes to both replicas, in order. */
    const append = async (ms: number, mutations: DataMutation[], requestId?: Buffer) => {
      index++;
      const e = cmd(index, ms, mutations, requestId);
      const outs = await Promise.all(sms.map((sm) => applyAll(sm, [e])));
      expect(outs[0]).toEqual(outs[1]);
      return outs[0]?.[0] as ApplyOutcome;
    };
    await append(1000, [put(150n, 'a', '1')], rid(1));
    await append(5000, [put(160n, 'b', '1')], rid(2));
    let nowMs = 1000 + 60_000;
    const proposed: DataMutation[][] = [];
    // The leader's GC, on replica 0: it proposes deletes into the shared log.
    const gc = new RequestRecordGc({
      engine: replicas[0] as StorageEngine,
      now: () => tsFromMs(nowMs),
      retentionMs: 60_000,
      groups: () => [GROUP],
      leaderOf: () => GROUP,
      propose: async (_group, mutations) => {
        proposed.push(mutations);
        await append(nowMs, mutations);
      },
    });
    // Within retention (at exactly 60 s): nothing is deleted and the id still deduplicates.
    await gc.run();
    expect(proposed).toEqual([]);
    expect(await append(nowMs, [put(150n, 'a', 'resend')], rid(1))).toMatchObject({ deduplicated: true });

    nowMs = 1000 + 60_001;
    await gc.run();
    expect(proposed).toEqual([[{ type: 'delete', hash: 150n, key: requestRecordKey(rid(1)) }]]);
    expect(gc.stats.deleted).toBe(1);
    // Replica 0's index entry is gone with its record; replica 2's record (5000 ms) is kept.
    expect((await indexEntries(replicas[0] as StorageEngine)).map((x) => x?.version)).toEqual([tsFromMs(5000)]);
    // Past the delete, a resend of id 1 applies again, on both replicas alike.
    expect(await append(nowMs + 1, [put(150n, 'a', 'late')], rid(1))).toEqual({ kind: 'applied', existed: [true] });
    expect(await userRows(replicas[0] as StorageEngine)).toEqual(await userRows(replicas[1] as StorageEngine));
    expect(await append(nowMs + 2, [put(160n, 'b', 'resend')], rid(2))).toMatchObject({ deduplicated: true, version: tsFromMs(5000) });

    // A follower's stale index entry (its record deleted through the log) is dropped by its own sweep, proposing nothing.
    const followerGc = new RequestRecordGc({
      engine: replicas[1] as StorageEngine,
      now: () => tsFromMs(nowMs + 10_000),
      retentionMs: 60_000,
      groups: () => [GROUP],
      leaderOf: () => undefined,
      propose: async () => {
        throw new Error('a follower proposes nothing');
      },
    });
    const before = (await indexEntries(replicas[1] as StorageEngine)).length;
    await followerGc.run();
    expect(followerGc.stats.indexDropped).toBe(1);
    expect(await indexEntries(replicas[1] as StorageEngine)).toHaveLength(before - 1);
  });

  it('a record stays with its hash: after a split, the child group (same engine, no bytes moved) finds it', async () => {
    const e = await engine();
    const parent = await open(e);
    await applyAll(parent, [cmd(1, 1000, [put(180n, '{t}a', '1'), put(180n, '{t}b', '1')], rid(4))]);
    // The child owns [150, 200) from the split on (docs/adr/0010-splits.md); a resend goes to it.
    const child = await GroupStateMachine.open({ engine: e, group: 4, range: { start: 150n, end: 200n }, clock: new HybridClock({ nowMs: () => 1 }) });
    const [out] = await applyAll(child, [cmd(1, 1001, [put(180n, '{t}a', '1'), put(180n, '{t}b', '1')], rid(4))]);
    expect(out).toMatchObject({ kind: 'applied', deduplicated: true, version: tsFromMs(1000) });
  });

  it('a record is never reachable as user data: a user key with the same bytes lives at its own hash', () => {
    const key = requestRecordKey(rid(9));
    expect(key.subarray(0, REQUEST_RECORD_PREFIX.length).equals(REQUEST_RECORD_PREFIX)).toBe(true);
    expect(isRequestRecord(150n, key)).toBe(true);
    expect(isRequestRecord(keyHash(key), key)).toBe(false);
    expect(isRequestRecord(150n, k('a'))).toBe(false);
  });
});
