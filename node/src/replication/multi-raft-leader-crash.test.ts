/**
 * kill -9 of the LEADER while writes stream (ADR 0008 "Changes": a leader sends its appends
 * while its own copy is being written, and submits applies before that write completes).
 * Nodes a and b run in this process (memory engines); node c runs in a child process on
 * RocksDB, is made the leader, and proposes the writes it reads on stdin. The follower other
 * than a is stopped, so every commit needs c and a. c is SIGKILLed at an arbitrary moment:
 * its durable log must hold every entry it acknowledged (it answered only after its own
 * write), a must hold them all, and a and b must elect a leader that keeps them; c, restarted
 * from its RocksDB directory (its log possibly shorter than a's: a may hold entries c never
 * made durable), must rejoin and converge to the same log and the same versions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeId } from '@keyva/client/keyspace';
import { expect, it } from 'vitest';
import { MAX_TS } from '../engine/types.ts';
import {
  CRASH_GROUPS,
  CRASH_NODES,
  CRASH_TICK_MS,
  CRASH_WAIT_MS,
  type CrashTrio,
  crashHash,
  crashKey,
  crashPut,
  reopenCrashedC,
  startCrashTrio,
} from './testing/crash-trio.ts';
import { until } from './testing/replication-cluster.ts';

const ACKS_BEFORE_KILL = 80;
const KILL_DELAY_MS_MAX = 30;
const WRITERS = 16;

it('kill -9 of the leader loses no acknowledged write, and the restarted leader converges', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-repl-leader-crash-'));
  const answers = new Map<number, (ack: { commitTs: bigint; index: number } | undefined) => void>();
  let trio: CrashTrio | undefined;
  try {
    trio = await startCrashTrio(dir, {
      puts: true,
      onLine: (l) => {
        const [word, i, ts, index] = l.split(' ');
        if (word === 'ack' || word === 'fail') {
          answers.get(Number(i))?.(word === 'ack' ? { commitTs: BigInt(ts as string), index: Number(index) } : undefined);
          answers.delete(Number(i));
        }
      },
    });
    const { cluster: c, engines, replica } = trio;
    const child = replica.child;
    const { exited } = replica;
    exited.then(() => {
      for (const done of answers.values()) done(undefined);
      answers.clear();
    });

    // Make c the leader (the in-process leader hands over once c has caught up).
    await until(
      () => {
        const l = c.leader(1);
        if (l !== undefined) l.runtime.transferLeader(1, 'c' as NodeId);
        return ['a', 'b'].every((id) => c.node(id).runtime.status(1)?.leader === 'c');
      },
      CRASH_WAIT_MS,
      'c to lead group 1',
    );

    // From now on every commit needs c and a.
    await c.stop('b');

    const propose = (i: number): Promise<{ commitTs: bigint; index: number } | undefined> =>
      new Promise((resolve) => {
        answers.set(i, resolve);
        child.stdin?.write(`put 1 ${i}\n`);
      });
    const acked = new Map<number, bigint>();
    let ackedIndexMax = 0;
    let next = 0;
    let killed = false;
    const deadline = performance.now() + CRASH_WAIT_MS;
    const writer = async (): Promise<void> => {
      while (performance.now() < deadline && child.exitCode === null && child.signalCode === null) {
        const i = next++;
        const ack = await propose(i);
        if (ack !== undefined) {
          acked.set(i, ack.commitTs);
          ackedIndexMax = Math.max(ackedIndexMax, ack.index);
          if (!killed && acked.size >= ACKS_BEFORE_KILL) {
            killed = true;
            setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * KILL_DELAY_MS_MAX));
          }
        } else {
          await new Promise((res) => setTimeout(res, CRASH_TICK_MS));
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, () => writer()));
    expect(await exited, replica.stderr()).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);

    // a and b elect a leader; a write through it commits (and so applies) everything before it.
    const commitThroughLeader = async (i: number): Promise<number> => {
      for (const end = performance.now() + CRASH_WAIT_MS; ; ) {
        if (performance.now() > end) throw new Error('no write through a new leader');
        const { node } = await c.waitForLeader(1, CRASH_WAIT_MS);
        const r = await node.runtime.propose(1, [crashPut(i)]).catch(() => undefined);
        if (r?.ok) return r.index;
        await new Promise((res) => setTimeout(res, CRASH_TICK_MS));
      }
    };
    const expectAcked = async (ids: readonly string[]): Promise<void> => {
      for (const id of ids) {
        const e = engines.get(id)!;
        for (const [i, ts] of acked) expect((await e.get(crashHash(i), crashKey(i), MAX_TS, 0))?.version, `node ${id} key ${i}`).toBe(ts);
      }
    };
    // a alone is not a quorum: b comes back (with its pre-stop state) and a and b elect a leader.
    await c.start('b', engines.get('b')!, CRASH_GROUPS);
    await c.waitApplied(1, await commitThroughLeader(1_000_000), CRASH_WAIT_MS);
    await expectAcked(['a', 'b']);

    // c comes back from its RocksDB directory and catches up.
    const restarted = await reopenCrashedC(trio, dir);
    // Read before any message reached it: what c made durable before the kill.
    const heldAfterCrash = restarted.runtime.status(1)!.lastIndex;
    expect(heldAfterCrash, 'c acknowledged an entry it had not made durable').toBeGreaterThanOrEqual(ackedIndexMax);
    const final = await commitThroughLeader(1_000_001);
    await c.waitApplied(1, final, CRASH_WAIT_MS);
    await expectAcked(['a', 'b', 'c']);
    // One log: the same (index, term) everywhere up to the final write.
    const terms = (id: string) =>
      c
        .node(id)
        .runtime.logEntries(1, 0, final + 1)
        .map((e) => `${e.index}:${e.term}`);
    const lo = Math.max(...CRASH_NODES.map((id) => c.node(id).runtime.status(1)!.firstIndex));
    const fromLo = (id: string) => terms(id).filter((t) => Number(t.split(':')[0]) >= lo);
    expect(fromLo('c')).toEqual(fromLo('a'));
    expect(fromLo('b')).toEqual(fromLo('a'));
    for (const i of [1_000_000, 1_000_001]) {
      const vs = await Promise.all(CRASH_NODES.map((id) => engines.get(id)!.get(crashHash(i), crashKey(i), MAX_TS, 0)));
      expect(new Set(vs.map((v) => v?.version)).size).toBe(1);
    }
    console.log(
      `kill -9 of the leader: ${acked.size} writes acknowledged by c before it died; its log held ${heldAfterCrash} entries after the crash; all acknowledged writes on a, b and the restarted c, one log`,
    );
  } finally {
    trio?.replica.child.kill('SIGKILL');
    for (const n of [...(trio?.cluster.nodes.values() ?? [])]) await trio?.cluster.stop(n.id);
    await trio?.engines.get('c')?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
