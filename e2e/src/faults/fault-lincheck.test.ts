/**
 * A 3-node replicated cluster of real processes (RocksDB, replication factor 3) with every Raft
 * link through a fault proxy. Concurrent SDK clients run get/put/delete/CAS on a few keys while a
 * seeded nemesis kills the busiest leader (kill -9), pauses a node (SIGSTOP), blackholes a node,
 * cuts one direction, flaps connections with resets and delays every link; porcupine checks the
 * recorded history per key. Then one client writes half the keys, every node is killed at once
 * and restarted, and every key is read again: the last acknowledged write must be there (checked
 * directly where the history pins it, and by porcupine on the whole history). Last, the
 * failover time after kill -9 of the busiest leader is measured over several trials.
 *
 * Replay a schedule with KEYVA_FAULT_SEED=<seed> (printed at the start).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyVa } from '@keyva/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { History, type HistoryOp } from '../lincheck/history.ts';
import { checkHistory } from '../lincheck/lincheck.ts';
import { FaultCluster } from './cluster.ts';
import { describeSchedule, runStep, schedule } from './nemesis.ts';
import { prng } from './prng.ts';
import { connectRetrying, recordGet, recordPut, Workload } from './workload.ts';

const PARTITIONS = 8;
const KEYS = ['a', 'b', 'c', 'd', 'e', 'f'];
const CLIENTS = 5;
/** Keys written last by one client after the nemesis (the rest keep the values written under faults). */
const FINAL_KEYS = KEYS.slice(0, 3);
/** Quiet time between faults, so the cluster recovers and the clients make progress. */
const GAP_MS = 1500;
/** Election timeout at the default tick: 10-20 ticks of 100 ms (node/src/replication/multi-raft.ts). */
const TICK_MS = 100;
const ELECTION_MS = [10 * TICK_MS, 20 * TICK_MS] as const;
/** Generous upper bound for a failover on this shared 2-core machine (expected ~2 election timeouts). */
const FAILOVER_BOUND_MS = 10_000;
/** Failover trials (KEYVA_FAILOVER_TRIALS for more, e.g. to measure alone: `-t 'fails over'`). */
const FAILOVER_TRIALS = Number(process.env.KEYVA_FAILOVER_TRIALS ?? 3);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const elapsed = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** Retries `fn` until it succeeds or `boundMs` passes. */
async function retrying<T>(what: string, boundMs: number, fn: () => Promise<T>): Promise<T> {
  const end = performance.now() + boundMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (performance.now() > end) throw new Error(`${what}: still failing after ${boundMs} ms: ${(e as Error).message}`);
      await sleep(100);
    }
  }
}

/**
 * The value a key must hold after the run, from the history: the last acknowledged write W (put,
 * delete, or successful CAS) when no other write could still land after it (every other write
 * returned before W was called, and no write of unknown outcome was called after W).
 */
function settledValue(ops: readonly HistoryOp[], key: string): { value: string | undefined } | undefined {
  const writes = ops.filter(
    (o) => o.key === key && o.status !== 'fail' && (o.op === 'put' || o.op === 'delete' || (o.op === 'cas' && (o.status === 'unknown' || o.ok))),
  );
  const acked = writes.filter((o) => o.status === 'ok').sort((a, b) => (a.return as number) - (b.return as number));
  const w = acked[acked.length - 1];
  if (w === undefined) return undefined;
  for (const o of writes) {
    if (o === w) continue;
    if (o.status === 'ok' && (o.return as number) > w.call) return undefined;
    if (o.status === 'unknown' && o.call > w.call) return undefined;
  }
  return { value: w.op === 'delete' ? undefined : w.value };
}

describe('3-node cluster under faults (porcupine)', () => {
  const root = mkdtempSync(join(tmpdir(), 'keyva-faults-'));
  const seed = Number(process.env.KEYVA_FAULT_SEED ?? Date.now() % 1_000_000);
  let cluster: FaultCluster;
  let admin: KeyVa;
  let failed = false;

  beforeAll(async () => {
    cluster = await FaultCluster.create({ root, partitions: PARTITIONS, random: prng(seed ^ 0x5eed) });
    await cluster.startAll();
    admin = await connectRetrying({ endpoints: cluster.endpoints, deadlineMs: 1500, retry: { attemptsMax: 3 } });
    // Until every group elected a leader, writes are refused (retryable).
    for (let i = 0; i < 32; i++) await retrying('first writes', 20_000, () => admin.put(`warm-${i}`, 'x'));
  }, 120_000);

  afterAll(async () => {
    await admin?.close();
    await cluster?.close();
    if (failed) console.log(`fault test data (node logs, history) kept in ${root}`);
    else rmSync(root, { recursive: true, force: true });
  });

  it('stays linearizable under a nemesis and keeps every acknowledged write across kill -9 of all nodes', { timeout: 240_000 }, async () => {
    failed = true; // until the end of this test: keep the logs and history for a post-mortem
    const t0 = performance.now();
    const steps = schedule(seed, cluster.ids);
    console.log(`fault schedule (KEYVA_FAULT_SEED=${seed}): ${describeSchedule(steps)}`);
    const history = new History();
    const events: string[] = [];
    const workload = new Workload({ endpoints: cluster.endpoints, history, keys: KEYS, clients: CLIENTS, seed, deadlineMs: 2000 });
    await workload.start();
    await sleep(GAP_MS);
    // The fault windows on the history's clock (process.hrtime ns), to line them up with the operations.
    const timeline: { start: string; end: string; fault: string }[] = [];
    for (const step of steps) {
      const start = process.hrtime.bigint();
      const line = await runStep(cluster, admin, step);
      timeline.push({ start: start.toString(), end: process.hrtime.bigint().toString(), fault: line });
      events.push(`${elapsed(t0)} ${line}`);
      await sleep(GAP_MS);
    }
    writeFileSync(join(root, 'faults.jsonl'), `${timeline.map((e) => JSON.stringify(e)).join('\n')}\n`);
    cluster.heal();
    await sleep(GAP_MS);
    await workload.stop();
    const chaos = history.counts();
    const why = new Map<string, number>();
    for (const o of history.ops) {
      if (o.status === 'ok') continue;
      const k = `${o.op} ${o.status}: ${o.note?.split(':')[0]}`;
      why.set(k, (why.get(k) ?? 0) + 1);
    }
    console.log(
      `nemesis done at ${elapsed(t0)}:\n  ${events.join('\n  ')}\n  operations without an answer: ${[...why.entries()].map(([k, n]) => `${n}× ${k}`).join('; ') || 'none'}`,
    );

    // Final writes on half the keys, one client, one key at a time, twice (the first value becomes the
    // stale one below); the other keys keep what the clients left under faults.
    const finalClient = CLIENTS;
    const final = await connectRetrying({ endpoints: cluster.endpoints, deadlineMs: 2000, retry: { attemptsMax: 4 } });
    for (const key of FINAL_KEYS)
      for (const round of [1, 2])
        await retrying(`final write of ${key}`, 15_000, async () => {
          const { op } = await recordPut(history, final, finalClient, key, `final${round}-${key}`);
          if (op.status !== 'ok') throw new Error(`final put ${key}: ${op.status}`);
        });
    for (const key of KEYS) await recordGet(history, final, finalClient, key);
    await final.close();
    // Where the history pins a key's value (its last acknowledged write cannot be overtaken), check it directly.
    const expected = new Map(KEYS.map((k) => [k, settledValue(history.ops, k)]));
    for (const k of FINAL_KEYS) expect(expected.get(k), k).toEqual({ value: `final2-${k}` });

    // Crash every node at once (no clean shutdown, no flush), restart on the same data dirs.
    await cluster.killAll();
    const restartAt = performance.now();
    await cluster.startAll();
    const processesReadyMs = performance.now() - restartAt;
    const after = await connectRetrying({ endpoints: cluster.endpoints, deadlineMs: 2000, retry: { attemptsMax: 4 } });
    const lost: string[] = [];
    try {
      for (const key of KEYS) {
        const value = await retrying(`read of ${key} after restarting every node`, 30_000, async () => {
          const { value: e, op } = await recordGet(history, after, finalClient + 1, key);
          if (op.status !== 'ok') throw new Error(`get ${key}: ${op.status}`);
          return e?.value.toString();
        });
        const want = expected.get(key);
        if (want !== undefined && value !== want.value) lost.push(`${key}: expected ${want.value ?? 'absent'}, read ${value ?? 'absent'}`);
      }
    } finally {
      await after.close();
    }
    const pinned = [...expected.values()].filter((v) => v !== undefined).length;
    console.log(
      `kill -9 of all 3 nodes: processes ready after ${Math.round(processesReadyMs)} ms, every key read back ${Math.round(performance.now() - restartAt)} ms after the restart began; ` +
        `${pinned} of ${KEYS.length} keys checked directly against their last acknowledged write, all by porcupine`,
    );
    expect(lost, 'acknowledged writes lost after kill -9 of every node').toEqual([]);

    // Porcupine on the whole history (nemesis, final writes, reads after the full restart).
    const path = join(root, 'history.jsonl');
    history.write(path);
    const verdict = await checkHistory(path, join(root, 'history.html'), '90s');
    const c = history.counts();
    console.log(
      `porcupine: ${verdict.result} on ${verdict.operations} checked operations over ${verdict.keys} keys in ${verdict.seconds.toFixed(2)} s ` +
        `(recorded under faults: ${chaos.ok} ok, ${chaos.fail} certainly failed, ${chaos.unknown} unknown; in all ${c.ok + c.fail + c.unknown}); total ${elapsed(t0)}`,
    );
    expect(chaos.ok, 'too few operations completed under faults for the check to mean anything').toBeGreaterThan(300);
    expect(chaos.fail + chaos.unknown, 'the nemesis should have cost some operations their answer').toBeGreaterThan(0);
    expect(
      verdict.result,
      `history not linearizable: history ${path}, visualisation ${verdict.visualization ?? '(none)'}, fault windows ${join(root, 'faults.jsonl')}, events:\n${events.join('\n')}\nreplay with KEYVA_FAULT_SEED=${seed}`,
    ).toBe('Ok');

    // The checker can fail on this very history: a read after the restart that returns the overwritten value is caught.
    const lastRead = [...history.ops].reverse().find((o) => o.op === 'get' && o.status === 'ok' && FINAL_KEYS.includes(o.key)) as HistoryOp;
    const broken = history.ops.map((o) => (o === lastRead ? { ...o, found: true, output: `final1-${o.key}` } : o));
    const brokenPath = join(root, 'history-stale-read.jsonl');
    History.writeOps(brokenPath, broken);
    expect((await checkHistory(brokenPath, undefined, '90s')).result).toBe('Illegal');
    failed = false;
  });

  it(`fails over within a bounded time after kill -9 of the busiest leader (${FAILOVER_TRIALS} trials)`, { timeout: 150_000 }, async () => {
    const trials: { victim: string; partitions: number; electedMs: number; writableMs: number }[] = [];
    for (let trial = 0; trial < FAILOVER_TRIALS; trial++) {
      // Every node up and every partition led before the trial.
      const map = await retrying('a map with a leader for every partition', 20_000, async () => {
        const m = await admin.partitionMap({ refresh: true });
        if (m.partitions.some((p) => p.leaderHint === undefined)) throw new Error('a partition has no leader yet');
        return m;
      });
      const busiest = FaultCluster.busiestLeader(map);
      if (!busiest) throw new Error('no leader in the partition map');
      const survivors = cluster.ids.filter((id) => id !== busiest.node);
      // One probe key per partition the victim leads.
      const probes = new Map<number, string>();
      for (let i = 0; probes.size < busiest.partitions.length; i++) {
        const k = `probe-${trial}-${i}`;
        const p = FaultCluster.partitionOf(map, k);
        if (busiest.partitions.includes(p) && !probes.has(p)) probes.set(p, k);
      }
      const probe = await connectRetrying({ endpoints: cluster.endpoints, deadlineMs: 1000, retry: { attemptsMax: 10 } });
      try {
        await cluster.kill(busiest.node);
        const killedAt = performance.now();
        // Server side: until a survivor knows a new leader for each of the victim's partitions.
        const elected = (async () => {
          const end = killedAt + FAILOVER_BOUND_MS * 2;
          const pending = new Set(busiest.partitions);
          while (pending.size > 0 && performance.now() < end) {
            for (const id of survivors) {
              const seen = await cluster.leadersSeenBy(id).catch(() => new Map<number, string | undefined>());
              for (const p of [...pending]) {
                const l = seen.get(p);
                if (l !== undefined && l !== busiest.node) pending.delete(p);
              }
            }
            await sleep(25);
          }
          return performance.now() - killedAt;
        })();
        // Client side: until an SDK write to each of them succeeds.
        const writable = Promise.all(
          [...probes.values()].map(async (k) => {
            await retrying(`write to ${k} after kill -9 of ${busiest.node}`, FAILOVER_BOUND_MS * 2, () => probe.put(k, 'v'));
            return performance.now() - killedAt;
          }),
        );
        trials.push({ victim: busiest.node, partitions: probes.size, electedMs: await elected, writableMs: Math.max(...(await writable)) });
      } finally {
        await probe.close();
      }
      await cluster.start(busiest.node);
      await sleep(1000);
    }
    const fmt = (ms: number) => `${Math.round(ms)} ms`;
    const stats = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return `min ${fmt(s[0] as number)}, median ${fmt(s[Math.floor(s.length / 2)] as number)}, max ${fmt(s[s.length - 1] as number)}`;
    };
    console.log(
      `failover after kill -9 of the busiest leader (tick ${TICK_MS} ms, election timeout ${ELECTION_MS[0]}-${ELECTION_MS[1]} ms, heartbeat ${2 * TICK_MS} ms; ${PARTITIONS} partitions, 3 nodes, ${FAILOVER_TRIALS} trials):\n` +
        `  new leader known for all its partitions: ${stats(trials.map((t) => t.electedMs))}\n` +
        `  SDK writes to all its partitions succeed: ${stats(trials.map((t) => t.writableMs))}\n` +
        `  trials: ${trials.map((t) => `${t.victim} led ${t.partitions} → elected ${fmt(t.electedMs)}, writable ${fmt(t.writableMs)}`).join('; ')}`,
    );
    for (const t of trials) expect(t.writableMs).toBeLessThan(FAILOVER_BOUND_MS);
  });
});
