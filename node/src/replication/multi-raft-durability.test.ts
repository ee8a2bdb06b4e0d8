/**
 * Failover and restart on RocksDB: three in-process nodes over real gRPC, each with its own
 * RocksDB in a temp dir, default timing (100 ms ticks, election 10 ticks, heartbeat 2). The
 * leader's node is stopped (runtime, gRPC server and engine closed); a new leader must serve
 * within a bounded time and writes continue; the old leader's log is compacted meanwhile, so
 * the stopped node, restarted from its RocksDB data, catches up by snapshot and then holds
 * every acknowledged write with the same versions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, expect, it } from 'vitest';
import { RocksDbEngine } from '../engine/rocksdb-engine.ts';
import { MAX_TS, type StorageEngine, type Timestamp } from '../engine/types.ts';
import { DEFAULT_ELECTION_TICK, DEFAULT_TICK_MS, type GroupSpec } from './multi-raft.ts';
import type { DataMutation } from './replicated-command.ts';
import { equalRanges, ReplicationCluster, until } from './testing/replication-cluster.ts';

const NODES = ['n1', 'n2', 'n3'] as NodeId[];
const RANGES = equalRanges(2);
const GROUPS: GroupSpec[] = [
  { group: 1, range: RANGES[0]!, bootstrap: NODES },
  { group: 2, range: RANGES[1]!, bootstrap: NODES },
];
/** Small, so the log is compacted while a node is down and it needs a snapshot. */
const LOG_ENTRIES_MAX = 16;
const ELECTION_TIMEOUT_MS = DEFAULT_TICK_MS * DEFAULT_ELECTION_TICK;
/** A new leader must serve within this (randomized timeout is 1-2 election timeouts, plus a round). */
const FAILOVER_BOUND_MS = 4 * ELECTION_TIMEOUT_MS;

const dirs = new Map<string, string>();
afterAll(() => {
  for (const d of dirs.values()) rmSync(d, { recursive: true, force: true });
});

async function openEngine(id: string): Promise<StorageEngine> {
  let dir = dirs.get(id);
  if (dir === undefined) {
    dir = mkdtempSync(join(tmpdir(), `keyva-repl-${id}-`));
    dirs.set(id, dir);
  }
  const e = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 });
  await e.open();
  return e;
}

const key = (i: number) => Buffer.from(`key-${i}`);
const hashOf = (i: number) => RANGES[0]!.start + BigInt(i);
const put = (i: number): DataMutation => ({ type: 'put', hash: hashOf(i), key: key(i), value: Buffer.from(`value-${i}`), expiresAtMs: 0 });

it('fails over within a bounded time, keeps writing, and a restarted node catches up by snapshot with every acknowledged write', {
  timeout: 40_000,
}, async () => {
  const c = new ReplicationCluster({ logEntriesMax: LOG_ENTRIES_MAX });
  const acked = new Map<number, Timestamp>();
  let next = 0;
  /** Writes `n` keys to group 1 through whoever leads it, one at a time, retrying refusals. */
  const write = async (n: number): Promise<number> => {
    let lastIndex = 0;
    for (let done = 0, attempts = 0; done < n; attempts++) {
      if (attempts > n + 200) throw new Error('too many refusals');
      const { node } = await c.waitForLeader(1, FAILOVER_BOUND_MS);
      const r = await node.runtime.propose(1, [put(next)]).catch(() => undefined);
      if (r?.ok) {
        acked.set(next++, r.commitTs);
        lastIndex = r.index;
        done++;
      } else {
        await new Promise((res) => setTimeout(res, DEFAULT_TICK_MS));
      }
    }
    return lastIndex;
  };
  const verify = async (id: string): Promise<void> => {
    const e = c.node(id).engine;
    for (const [i, ts] of acked) {
      const v = await e.get(hashOf(i), key(i), MAX_TS, 0);
      expect(v?.version, `node ${id} key ${i}`).toBe(ts);
      expect(v?.value.toString()).toBe(`value-${i}`);
    }
  };

  try {
    for (const id of NODES) await c.start(id, await openEngine(id), GROUPS);
    await c.waitForLeader(1, 3 * FAILOVER_BOUND_MS);
    await write(10);

    const failovers: number[] = [];
    for (let round = 0; round < 2; round++) {
      const old = c.leader(1)!;
      const t0 = performance.now();
      const stopped = await c.stop(old.id);
      await stopped.engine.close();
      const { node: fresh } = await c.waitForLeader(1, FAILOVER_BOUND_MS);
      const ms = performance.now() - t0;
      failovers.push(ms);
      expect(fresh.id).not.toBe(old.id);
      // Writes continue; enough of them to compact the log past what the stopped node holds.
      const last = await write(2 * LOG_ENTRIES_MAX);
      expect(fresh.runtime.stats.compactions).toBeGreaterThan(0);

      const back = await c.start(old.id, await openEngine(old.id), GROUPS);
      await until(() => (back.runtime.status(1)?.applied.index ?? 0) >= last, 10_000, `${old.id} to catch up to ${last}`);
      // It caught up by snapshot: its log now starts above what it held when it stopped.
      expect(back.runtime.status(1)!.firstIndex).toBeGreaterThan(2);
      await c.waitApplied(1, last, 10_000);
      for (const id of NODES) await verify(id);
    }
    console.log(
      `failover (100 ms ticks, election timeout ${ELECTION_TIMEOUT_MS}-${2 * ELECTION_TIMEOUT_MS} ms): new leader serving after ${failovers
        .map((ms) => `${ms.toFixed(0)} ms`)
        .join(', ')}; ${acked.size} acknowledged writes verified on all three replicas`,
    );
    for (const ms of failovers) expect(ms).toBeLessThan(FAILOVER_BOUND_MS);
  } finally {
    for (const n of [...c.nodes.values()]) {
      await c.stop(n.id);
      await n.engine.close();
    }
  }
});
