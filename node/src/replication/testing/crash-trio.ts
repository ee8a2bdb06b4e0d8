/**
 * The setting of the kill -9 replication tests (`multi-raft-crash.test.ts`,
 * `multi-raft-leader-crash.test.ts`): one group whose voters are a, b and c. a and b run in this
 * process on memory engines; c runs in a child process on RocksDB (`replica-process.ts`), is
 * SIGKILLed by the test and comes back in this process from its directory (`reopenCrashedC`).
 * Writes are `crashPut(i)`, the same ones c proposes for `put <group> <i>` on its stdin.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { MemoryEngine } from '../../engine/memory-engine.ts';
import { RocksDbEngine } from '../../engine/rocksdb-engine.ts';
import type { StorageEngine } from '../../engine/types.ts';
import type { GroupSpec } from '../multi-raft.ts';
import type { ReplicaProcessConfig } from './replica-process.ts';
import { ReplicationCluster } from './replication-cluster.ts';
import { type SpawnedReplica, spawnReplica } from './spawn-replica.ts';

export const CRASH_TICK_MS = 50;
export const CRASH_NODES = ['a', 'b', 'c'] as NodeId[];
const RANGE = { start: 0n, end: 1n << 64n };
export const CRASH_GROUPS: GroupSpec[] = [{ group: 1, range: RANGE, bootstrap: CRASH_NODES }];
/** Bound of every wait in these tests. */
export const CRASH_WAIT_MS = 15_000;

export { crashHash, crashKey, crashPut } from './crash-writes.ts';

export interface CrashTrio {
  readonly cluster: ReplicationCluster;
  /** Engines by node id: a's and b's now, c's once `reopenCrashedC` ran. */
  readonly engines: Map<string, StorageEngine>;
  readonly replica: SpawnedReplica;
}

/**
 * Starts a and b, waits until they elect a leader (2 of 3 voters) before c exists, then spawns c
 * on `dir` (`puts`: it also proposes what it reads on stdin; `onLine`: each line it prints).
 */
export async function startCrashTrio(dir: string, opts: { puts?: boolean; onLine?: (line: string) => void } = {}): Promise<CrashTrio> {
  const cluster = new ReplicationCluster({ tickMs: CRASH_TICK_MS });
  const engines = new Map<string, StorageEngine>();
  for (const id of ['a', 'b']) {
    const e = new MemoryEngine();
    await e.open();
    engines.set(id, e);
    await cluster.start(id, e, CRASH_GROUPS);
  }
  await cluster.waitForLeader(1, CRASH_WAIT_MS);
  const config: ReplicaProcessConfig = {
    nodeId: 'c',
    dir,
    peers: Object.fromEntries(cluster.addresses),
    groups: [{ group: 1, start: String(RANGE.start), end: String(RANGE.end), bootstrap: CRASH_NODES }],
    tickMs: CRASH_TICK_MS,
    ...(opts.puts ? { puts: true } : {}),
  };
  const replica = await spawnReplica(config, opts.onLine);
  cluster.addresses.set('c', replica.address);
  return { cluster, engines, replica };
}

/** Opens c's RocksDB directory in this process (after its kill) and restarts c on it. */
export async function reopenCrashedC(trio: CrashTrio, dir: string) {
  const engine = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 });
  await engine.open();
  trio.engines.set('c', engine);
  return trio.cluster.start('c', engine, CRASH_GROUPS);
}
