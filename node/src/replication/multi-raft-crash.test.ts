/**
 * kill -9 of a replica: nodes a and b run in this process (memory engines); node c runs in a
 * child process on RocksDB. With b stopped, every write the leader acknowledges was committed
 * by {leader, c}, so it is in c's durable log. c is SIGKILLed while writes stream, the old
 * leader is then lost for good, and b (which never saw those writes) and c (restarted in this
 * process from its RocksDB directory) must form a quorum that still holds every acknowledged
 * write, with the same versions: no acknowledged write may depend on anything c had not synced.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeId } from '@keyva/client/keyspace';
import { expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { RocksDbEngine } from '../engine/rocksdb-engine.ts';
import { MAX_TS, type StorageEngine, type Timestamp } from '../engine/types.ts';
import type { GroupSpec } from './multi-raft.ts';
import type { DataMutation } from './replicated-command.ts';
import type { ReplicaProcessConfig } from './testing/replica-process.ts';
import { type ClusterNode, ReplicationCluster } from './testing/replication-cluster.ts';
import { spawnReplica } from './testing/spawn-replica.ts';

const TICK_MS = 50;
const NODES = ['a', 'b', 'c'] as NodeId[];
const RANGE = { start: 0n, end: 1n << 64n };
const GROUPS: GroupSpec[] = [{ group: 1, range: RANGE, bootstrap: NODES }];
/** Acknowledged writes before the kill is armed. */
const ACKS_BEFORE_KILL = 60;
const KILL_DELAY_MS_MAX = 30;
const WRITERS = 8;
const WAIT_MS = 15_000;

const key = (i: number) => Buffer.from(`crash-${i}`);
const hashOf = (i: number) => BigInt(i) * 7919n;
const put = (i: number): DataMutation => ({ type: 'put', hash: hashOf(i), key: key(i), value: Buffer.from(`v${i}`), expiresAtMs: 0 });

async function memoryEngine(): Promise<StorageEngine> {
  const e = new MemoryEngine();
  await e.open();
  return e;
}

it('kill -9 of the replica completing the quorum loses no acknowledged write', { timeout: 45_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-repl-crash-'));
  const c = new ReplicationCluster({ tickMs: TICK_MS });
  const engines = new Map<string, StorageEngine>();
  let child: ChildProcess | undefined;
  try {
    for (const id of ['a', 'b']) {
      engines.set(id, await memoryEngine());
      await c.start(id, engines.get(id)!, GROUPS);
    }
    // a and b elect a leader between them (2 of 3 voters) before c exists.
    await c.waitForLeader(1, WAIT_MS);

    const config: ReplicaProcessConfig = {
      nodeId: 'c',
      dir,
      peers: Object.fromEntries(c.addresses),
      groups: [{ group: 1, start: String(RANGE.start), end: String(RANGE.end), bootstrap: NODES }],
      tickMs: TICK_MS,
    };
    const replica = await spawnReplica(config);
    child = replica.child;
    const { exited } = replica;
    c.addresses.set('c', replica.address);

    // Stop the follower among a and b: from now on every commit needs c.
    const leader = c.leader(1)!;
    const follower = NODES.find((id) => id !== 'c' && id !== leader.id)!;
    await c.stop(follower);

    const acked = new Map<number, Timestamp>();
    let next = 0;
    let killed = false;
    let ackedAtKill = 0;
    const deadline = performance.now() + WAIT_MS;
    const writer = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const l = c.leader(1);
        const i = next++;
        const r = l === undefined ? undefined : await l.runtime.propose(1, [put(i)]).catch(() => undefined);
        if (r?.ok) {
          acked.set(i, r.commitTs);
          if (!killed && acked.size >= ACKS_BEFORE_KILL) {
            killed = true;
            ackedAtKill = acked.size;
            // At an arbitrary moment of the write stream, not right after an ack.
            setTimeout(() => child?.kill('SIGKILL'), Math.floor(Math.random() * KILL_DELAY_MS_MAX));
          }
        } else if (killed) {
          return; // the leader lost its quorum
        } else {
          await new Promise((res) => setTimeout(res, TICK_MS));
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, () => writer()));
    expect(await exited, replica.stderr()).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);

    // The old leader is gone for good (its memory with it). b and c come back.
    await c.stop(leader.id);
    await c.start(follower, engines.get(follower)!, GROUPS);
    const cEngine = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 });
    await cEngine.open();
    engines.set('c', cEngine);
    const restarted: ClusterNode = await c.start('c', cEngine, GROUPS);
    const heldAfterCrash = restarted.runtime.status(1)!.lastIndex;

    // A fresh write through the new leader commits (and so applies) everything before it.
    let final: { index: number } | undefined;
    for (const end = performance.now() + WAIT_MS; final === undefined; ) {
      if (performance.now() > end) throw new Error('no write through a new leader');
      const { node } = await c.waitForLeader(1, WAIT_MS);
      const r = await node.runtime.propose(1, [put(1_000_000)]).catch(() => undefined);
      if (r?.ok) final = r;
      else await new Promise((res) => setTimeout(res, TICK_MS));
    }
    await c.waitApplied(1, final!.index, WAIT_MS);
    for (const id of [follower, 'c']) {
      const e = engines.get(id)!;
      for (const [i, ts] of acked) {
        const v = await e.get(hashOf(i), key(i), MAX_TS, 0);
        expect(v?.version, `node ${id} key ${i}`).toBe(ts);
      }
    }
    console.log(
      `kill -9 replication: ${acked.size} writes acknowledged (${ackedAtKill} when the kill was armed), c's log held ${heldAfterCrash} entries after the crash; all acknowledged writes present on ${follower} and c after recovery`,
    );
  } finally {
    child?.kill('SIGKILL');
    for (const n of [...c.nodes.values()]) await c.stop(n.id);
    await engines.get('c')?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
