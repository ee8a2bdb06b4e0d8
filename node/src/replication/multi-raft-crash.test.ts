/**
 * kill -9 of a replica: nodes a and b run in this process (memory engines); node c runs in a
 * child process on RocksDB. With b stopped, every write the leader acknowledges was committed
 * by {leader, c}, so it is in c's durable log. c is SIGKILLed while writes stream, the old
 * leader is then lost for good, and b (which never saw those writes) and c (restarted in this
 * process from its RocksDB directory) must form a quorum that still holds every acknowledged
 * write, with the same versions: no acknowledged write may depend on anything c had not synced.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { MAX_TS, type Timestamp } from '../engine/types.ts';
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
import type { ClusterNode } from './testing/replication-cluster.ts';

/** Acknowledged writes before the kill is armed. */
const ACKS_BEFORE_KILL = 60;
const KILL_DELAY_MS_MAX = 30;
const WRITERS = 8;

it('kill -9 of the replica completing the quorum loses no acknowledged write', { timeout: 45_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-repl-crash-'));
  let trio: CrashTrio | undefined;
  try {
    // a and b elect a leader between them (2 of 3 voters) before c exists.
    trio = await startCrashTrio(dir);
    const { cluster: c, engines, replica } = trio;
    const child = replica.child;
    const { exited } = replica;

    // Stop the follower among a and b: from now on every commit needs c.
    const leader = c.leader(1)!;
    const follower = CRASH_NODES.find((id) => id !== 'c' && id !== leader.id)!;
    await c.stop(follower);

    const acked = new Map<number, Timestamp>();
    let next = 0;
    let killed = false;
    let ackedAtKill = 0;
    const deadline = performance.now() + CRASH_WAIT_MS;
    const writer = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const l = c.leader(1);
        const i = next++;
        const r = l === undefined ? undefined : await l.runtime.propose(1, [crashPut(i)]).catch(() => undefined);
        if (r?.ok) {
          acked.set(i, r.commitTs);
          if (!killed && acked.size >= ACKS_BEFORE_KILL) {
            killed = true;
            ackedAtKill = acked.size;
            // At an arbitrary moment of the write stream, not right after an ack.
            setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * KILL_DELAY_MS_MAX));
          }
        } else if (killed) {
          return; // the leader lost its quorum
        } else {
          await new Promise((res) => setTimeout(res, CRASH_TICK_MS));
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, () => writer()));
    expect(await exited, replica.stderr()).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);

    // The old leader is gone for good (its memory with it). b and c come back.
    await c.stop(leader.id);
    await c.start(follower, engines.get(follower)!, CRASH_GROUPS);
    const restarted: ClusterNode = await reopenCrashedC(trio, dir);
    const heldAfterCrash = restarted.runtime.status(1)!.lastIndex;

    // A fresh write through the new leader commits (and so applies) everything before it.
    let final: { index: number } | undefined;
    for (const end = performance.now() + CRASH_WAIT_MS; final === undefined; ) {
      if (performance.now() > end) throw new Error('no write through a new leader');
      const { node } = await c.waitForLeader(1, CRASH_WAIT_MS);
      const r = await node.runtime.propose(1, [crashPut(1_000_000)]).catch(() => undefined);
      if (r?.ok) final = r;
      else await new Promise((res) => setTimeout(res, CRASH_TICK_MS));
    }
    await c.waitApplied(1, final!.index, CRASH_WAIT_MS);
    for (const id of [follower, 'c']) {
      const e = engines.get(id)!;
      for (const [i, ts] of acked) {
        const v = await e.get(crashHash(i), crashKey(i), MAX_TS, 0);
        expect(v?.version, `node ${id} key ${i}`).toBe(ts);
      }
    }
    console.log(
      `kill -9 replication: ${acked.size} writes acknowledged (${ackedAtKill} when the kill was armed), c's log held ${heldAfterCrash} entries after the crash; all acknowledged writes present on ${follower} and c after recovery`,
    );
  } finally {
    trio?.replica.child.kill('SIGKILL');
    for (const n of [...(trio?.cluster.nodes.values() ?? [])]) await trio?.cluster.stop(n.id);
    await trio?.engines.get('c')?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
