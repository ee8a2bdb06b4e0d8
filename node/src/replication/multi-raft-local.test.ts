/**
 * MultiRaft without a network: injected timers (ticks and turns run only when the test says
 * so) and single-voter groups or a transport that records what would be sent.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { MAX_TS, type StorageEngine } from '../engine/types.ts';
import type { Message } from '../raft/messages.ts';
import { DurableRaftLog } from './durable-raft-log.ts';
import { GroupStateMachine } from './group-state-machine.ts';
import { MultiRaft, type RaftSender, type RuntimeTimers } from './multi-raft.ts';
import { encodePartitionSnapshot } from './partition-snapshot.ts';
import type { GroupId } from './raft-keys.ts';
import { replicaOf } from './replica-id.ts';
import type { DataMutation } from './replicated-command.ts';
import { ProposalOutcomeUnknownError } from './replication-results.ts';

const RANGE = { start: 0n, end: 1n << 64n };
const N1 = 'n1' as NodeId;

/** Timers that fire only when the test calls `tick()` / `settle()`. */
class ManualTimers implements RuntimeTimers {
  private intervalFn: (() => void) | undefined;
  private immediates: (() => void)[] = [];
  setInterval(fn: () => void): unknown {
    this.intervalFn = fn;
    return 1;
  }
  clearInterval(): void {
    this.intervalFn = undefined;
  }
  setImmediate(fn: () => void): void {
    this.immediates.push(fn);
  }
  tick(n = 1): void {
    for (let i = 0; i < n; i++) this.intervalFn?.();
  }
  /** Runs scheduled turns (and lets engine writes finish) until nothing is left; bounded. */
  async settle(): Promise<void> {
    for (let round = 0; round < 200; round++) {
      await new Promise((r) => setTimeout(r, 0));
      const batch = this.immediates;
      this.immediates = [];
      for (const fn of batch) fn();
      if (batch.length === 0 && this.immediates.length === 0) {
        await new Promise((r) => setTimeout(r, 1));
        if (this.immediates.length === 0) return;
      }
    }
    throw new Error('the runtime did not settle');
  }
}

class RecordingSender implements RaftSender {
  readonly sent: { to: string; group: GroupId; m: Message }[] = [];
  closed = false;
  send(to: string, group: GroupId, m: Message): void {
    this.sent.push({ to, group, m });
  }
  close(): void {
    this.closed = true;
  }
}

async function memoryEngine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

const put = (key: string, value: string): DataMutation => ({ type: 'put', hash: 42n, key: Buffer.from(key), value: Buffer.from(value), expiresAtMs: 0 });

function runtime(engine: StorageEngine, timers: ManualTimers, transport: RaftSender = new RecordingSender(), clock = new HybridClock()) {
  return new MultiRaft({ nodeId: N1, engine, transport, clock, timers, randomSeed: 7 });
}

describe('MultiRaft with injected timers', () => {
  it('a new leader holds proposals while warming up, proposes them once it applied its first entry, then serves', async () => {
    const timers = new ManualTimers();
    const engine = await memoryEngine();
    const mr = runtime(engine, timers);
    await mr.addGroup({ group: 1, range: RANGE, bootstrap: [N1] });
    mr.start();
    expect(await mr.propose(1, [put('k', 'v')])).toMatchObject({ refused: true, reason: 'notLeader', leaderHint: undefined });
    // A single voter elects itself at its election timeout (10-20 ticks).
    timers.tick(20);
    expect(mr.status(1)?.role).toBe('leader');
    // Leader, but its empty entry is not applied yet: the proposal is held, nothing is proposed.
    const lastBefore = mr.status(1)!.lastIndex;
    const held = mr.propose(1, [put('k', 'v')]);
    // Held before it was encoded: a mutation the engine would refuse is found when it is tried
    // again, and rejected without stopping the group.
    let badHeld: unknown;
    mr.propose(1, [{ ...put('bad', 'v'), expiresAtMs: -1 } as DataMutation]).catch((e: unknown) => {
      badHeld = e;
    });
    expect(mr.status(1)!.lastIndex).toBe(lastBefore);
    expect(mr.status(1)?.serving).toBe(false);
    await timers.settle();
    expect(mr.status(1)?.serving).toBe(true);
    // Proposed once the leader applied its first entry: after it in the log.
    const first = await held;
    expect(first.ok && first.index).toBe(lastBefore + 1);
    expect(badHeld).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const p = mr.propose(1, [put('k', 'v')]);
    await timers.settle();
    const r = await p;
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect((await engine.get(42n, Buffer.from('k'), MAX_TS, 0))?.version).toBe(r.commitTs);
    const read = mr.read(1);
    await timers.settle();
    await read;
    await mr.stop();
  });

  it('a turn asks only the groups given input for a Ready; a tick looks at every group', async () => {
    const timers = new ManualTimers();
    const engine = await memoryEngine();
    const mr = runtime(engine, timers);
    const groups = 30;
    for (let g = 1; g <= groups; g++) await mr.addGroup({ group: g, range: { start: BigInt(g) << 32n, end: BigInt(g + 1) << 32n }, bootstrap: [N1] });
    mr.start();
    timers.tick(20); // every single-voter group elects itself
    await timers.settle();
    for (let g = 1; g <= groups; g++) expect(mr.status(g)?.serving).toBe(true);
    const before = mr.stats.readyChecks;
    const mutation = (i: number): DataMutation => ({ ...put(`k${i}`, 'v'), hash: (7n << 32n) + BigInt(i) });
    for (let i = 0; i < 20; i++) {
      const p = mr.propose(7, [mutation(i)]);
      await timers.settle();
      expect((await p).ok).toBe(true);
    }
    // Each write takes a few turns over group 7 alone (propose, persist, apply); polling every
    // group would cost 30 checks per turn.
    const perWrite = (mr.stats.readyChecks - before) / 20;
    expect(perWrite).toBeGreaterThan(0);
    expect(perWrite).toBeLessThan(5);
    const beforeTick = mr.stats.readyChecks;
    timers.tick();
    await timers.settle();
    expect(mr.stats.readyChecks - beforeTick).toBeGreaterThanOrEqual(groups);
    await mr.stop();
  });

  it('a restarted node installs a snapshot that was persisted but not applied before a crash', async () => {
    const engine = await memoryEngine();
    // What a crash right after persisting a leader's snapshot leaves: the snapshot in the log,
    // the applied state still at 1, stale data in the range.
    await engine.write({ mutations: [put('stale', 'x')], commitTs: 3n, nowMs: 0, sync: true });
    const log = await DurableRaftLog.open(engine, 1);
    const rows = [{ hash: 42n, key: Buffer.from('k'), value: Buffer.from('from-snapshot'), version: 900n, expiresAtMs: 0 }];
    const snapshot = {
      metadata: { index: 50, term: 4, confState: { voters: [replicaOf('n1'), replicaOf('n2'), replicaOf('n3')], learners: [] } },
      data: encodePartitionSnapshot({ maxCommitTs: 1000n, rows }),
    };
    const w = { snapshot, entries: [], hardState: { term: 4, vote: undefined, commit: 50 } };
    await engine.write({ mutations: log.stage(w), commitTs: 1n, nowMs: 0, sync: true });
    const clock = new HybridClock({ nowMs: () => 0 });
    const mr = runtime(engine, new ManualTimers(), new RecordingSender(), clock);
    await mr.addGroup({ group: 1, range: RANGE });
    expect(mr.status(1)?.applied).toEqual({ index: 50, term: 4, maxCommitTs: 1000n });
    expect(mr.status(1)?.voters).toEqual(['n1', 'n2', 'n3']);
    expect((await engine.get(42n, Buffer.from('k'), MAX_TS, 0))?.version).toBe(900n);
    expect(await engine.get(42n, Buffer.from('stale'), MAX_TS, 0)).toBeUndefined();
    // The clock moved past the snapshot's highest commit timestamp (a deleted key's, maybe).
    expect(clock.now() > 1000n).toBe(true);
    const sm = await GroupStateMachine.open({ engine, group: 1, range: RANGE, clock });
    expect(sm.applied.index).toBe(50);
    await mr.stop();
  });

  it('sends nothing before the Ready that produced it is persisted; stop rejects waiters and closes the transport', async () => {
    const timers = new ManualTimers();
    const engine = await memoryEngine();
    const sender = new RecordingSender();
    const mr = runtime(engine, timers, sender);
    await mr.addGroup({ group: 1, range: RANGE, bootstrap: [N1, 'n2' as NodeId, 'n3' as NodeId] });
    mr.start();
    timers.tick(20); // campaigns: pre-vote requests are in the next Ready
    expect(sender.sent).toEqual([]);
    await timers.settle();
    expect(sender.sent.map((s) => [s.to, s.m.type])).toEqual([
      ['n2', 'preVote'],
      ['n3', 'preVote'],
    ]);
    // Grant the pre-vote and the vote from n2: n1 leads, but n2/n3 never answer its appends.
    const term = sender.sent[0]!.m.term;
    const from = replicaOf('n2');
    const to = replicaOf('n1');
    const base = { from, to, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
    mr.receive('n2', 1, { ...base, type: 'preVoteResponse', term });
    await timers.settle();
    mr.receive('n2', 1, { ...base, type: 'voteResponse', term });
    await timers.settle();
    expect(mr.status(1)?.role).toBe('leader');
    // Its vote was persisted (synced) before the vote requests went out.
    expect(mr.stats.syncedWrites).toBeGreaterThan(0);
    const read = mr.read(1).catch((e: unknown) => e);
    await mr.stop();
    expect(sender.closed).toBe(true);
    expect(await read).toMatchObject({ code: 'UNAVAILABLE' });
    expect(await mr.propose(1, [put('k', 'v')])).toMatchObject({ refused: true, reason: 'stopped' });
  });

  it('rejects a pending proposal as outcome-unknown when the runtime stops before it commits', async () => {
    const timers = new ManualTimers();
    const engine = await memoryEngine();
    const sender = new RecordingSender();
    const mr = runtime(engine, timers, sender);
    await mr.addGroup({ group: 1, range: RANGE, bootstrap: [N1, 'n2' as NodeId, 'n3' as NodeId] });
    mr.start();
    timers.tick(20);
    await timers.settle();
    const term = sender.sent[0]!.m.term;
    const base = { from: replicaOf('n2'), to: replicaOf('n1'), logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
    mr.receive('n2', 1, { ...base, type: 'preVoteResponse', term });
    await timers.settle();
    mr.receive('n2', 1, { ...base, type: 'voteResponse', term });
    await timers.settle();
    // n2 acknowledges the leader's empty entry: it commits and applies, the leader serves.
    const last = mr.status(1)!.lastIndex;
    mr.receive('n2', 1, { ...base, type: 'appendResponse', term, index: last });
    await timers.settle();
    expect(mr.status(1)?.serving).toBe(true);
    const pending = mr.propose(1, [put('k', 'v')]);
    await timers.settle();
    await mr.stop();
    await expect(pending).rejects.toBeInstanceOf(ProposalOutcomeUnknownError);
  });
});
