/**
 * A KeyVa cluster of real node processes on loopback for the benchmarks: `nodes` processes
 * started with `--peers` (ADR 0008), each partition a Raft group of `replicationFactor`
 * replicas. Resolves once every partition has a leader and took a write, so the measured
 * window starts on a settled cluster (no elections, no leaderless partitions).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { KeyVa } from '@keyva/client';
import { keyHash } from '@keyva/client/keyspace';
import { freePort } from '@keyva/node/net/free-port';

export interface KeyvaClusterOptions {
  readonly nodes: number;
  readonly replicationFactor: number;
  readonly partitions: number;
  readonly engine: 'rocksdb' | 'memory';
  /** Writes a V8 CPU profile of every node (node --cpu-prof, one file per process) into this directory when it stops. */
  readonly cpuProfDir?: string | undefined;
  /** Copies each node's log here when the cluster stops (`<time>-node-<i>.log`); the data dirs are removed either way. */
  readonly keepLogsDir?: string | undefined;
  /** Bound on start-up: every node ready and every partition led and writable. */
  readonly readyTimeoutMs?: number | undefined;
}

export interface KeyvaCluster {
  /** gRPC addresses (host:port), node-1 first. */
  readonly endpoints: readonly string[];
  readonly pids: readonly number[];
  readonly dataDir: string;
  /** Each partition's leader from the partition map (partition id -> node id, '(none)' while leaderless). */
  leaders(): Promise<Record<string, string>>;
  /** The nodes' Multi-Raft counters summed (`raftTotals`). */
  raftTotals(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Partitions led per node, e.g. {"node-1": 22, ...}, from partition -> leader. */
export function countLeaders(leaders: Readonly<Record<string, string>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of Object.values(leaders)) out[l] = (out[l] ?? 0) + 1;
  return out;
}

/** Partitions whose leader differs between two samples, or that had none at either. */
export function leaderChanges(before: Readonly<Record<string, string>>, after: Readonly<Record<string, string>>): number {
  let n = 0;
  for (const id of new Set([...Object.keys(before), ...Object.keys(after)])) if (before[id] !== after[id] || before[id] === '(none)') n++;
  return n;
}

/** One key per partition (found by hashing candidates), so a write to each proves the partition is led. */
export function keyPerPartition(partitionCount: number, locate: (hash: bigint) => number, prefix = '__bench-ready-'): string[] {
  const keys = new Map<number, string>();
  for (let i = 0; keys.size < partitionCount; i++) {
    if (i > partitionCount * 1000) throw new Error(`no probe key found for some of ${partitionCount} partitions after ${i} candidates`);
    const k = `${prefix}${i}`;
    const p = locate(keyHash(Buffer.from(k)));
    if (!keys.has(p)) keys.set(p, k);
  }
  return [...keys.values()];
}

export async function startKeyvaCluster(o: KeyvaClusterOptions): Promise<KeyvaCluster> {
  if (!Number.isInteger(o.nodes) || o.nodes < 1) throw new Error(`KeyVa nodes must be a positive integer, got ${o.nodes}`);
  if (!Number.isInteger(o.replicationFactor) || o.replicationFactor < 1 || o.replicationFactor > o.nodes)
    throw new Error(`replication factor must be an integer in 1..${o.nodes} (the node count), got ${o.replicationFactor}`);
  const root = mkdtempSync(join(tmpdir(), 'keyva-bench-cluster-'));
  const specs = [];
  for (let i = 0; i < o.nodes; i++)
    specs.push({ id: `node-${i + 1}`, dataDir: join(root, `node-${i + 1}`), grpcPort: await freePort(), httpPort: await freePort() });
  const peers = specs.map((s) => `${s.id}=127.0.0.1:${s.grpcPort}`).join(',');
  const started: LocalNode[] = [];
  const stop = async () => {
    await Promise.all(started.map((n) => n.stop(15_000)));
    if (o.keepLogsDir) {
      mkdirSync(o.keepLogsDir, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      for (const n of started) if (existsSync(n.logFile)) copyFileSync(n.logFile, join(o.keepLogsDir, `${stamp}-${n.nodeId}.log`));
    }
    rmSync(root, { recursive: true, force: true });
  };
  const timeoutMs = o.readyTimeoutMs ?? 60_000;
  try {
    await Promise.all(
      specs.map(async (s) => {
        const n = await startLocalNode({
          dataDir: s.dataDir,
          engine: o.engine,
          grpcPort: s.grpcPort,
          httpPort: s.httpPort,
          nodeId: s.id,
          logLevel: 'warn',
          readyTimeoutMs: timeoutMs,
          extraArgs: ['--peers', peers, '--replication-factor', String(o.replicationFactor), '--partitions', String(o.partitions)],
          // NODE_OPTIONS accepts --cpu-prof; the profile is written at a clean exit (SIGTERM).
          ...(o.cpuProfDir ? { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${o.cpuProfDir}` } } : {}),
        });
        started.push(n);
      }),
    );
    await waitSettled(
      specs.map((s) => `127.0.0.1:${s.grpcPort}`),
      specs.map((s) => `127.0.0.1:${s.httpPort}`),
      o.partitions,
      timeoutMs,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  const endpoints = specs.map((s) => `127.0.0.1:${s.grpcPort}`);
  const https = specs.map((s) => `127.0.0.1:${s.httpPort}`);
  const byId = new Map(started.map((n) => [n.nodeId, n]));
  return {
    endpoints,
    pids: specs.map((s) => byId.get(s.id)?.process.pid as number),
    dataDir: root,
    leaders: async () => {
      const { leaders, partitions } = await clusterLeaders(https);
      const out: Record<string, string> = {};
      for (let id = 0; id < partitions; id++) out[String(id)] = leaders.get(id) ?? '(none)';
      return out;
    },
    raftTotals: () => raftTotals(https),
    stop,
  };
}

/** The Multi-Raft counters (`keyva_raft_*` on /metrics) summed over the nodes that answer; name without the prefix -> total. */
export async function raftTotals(httpAddresses: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await Promise.all(
    httpAddresses.map(async (a) => {
      try {
        const r = await fetch(`http://${a}/metrics`, { signal: AbortSignal.timeout(3000) });
        if (r.status !== 200) return;
        for (const line of (await r.text()).split('\n')) {
          const m = /^keyva_raft_([a-z_]+) ([0-9.e+]+)$/.exec(line);
          if (m) out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
        }
      } catch {
        // a node that is down: its work is not counted
      }
    }),
  );
  return out;
}

/**
 * Each partition's leader, from every node's map (REST /v1/partitions): a node names the leaders
 * of the partitions it hosts only, so with more nodes than the replication factor no single map
 * names them all. Nodes that do not answer are skipped.
 */
export async function clusterLeaders(httpAddresses: readonly string[]): Promise<{ leaders: Map<number, string>; partitions: number }> {
  const leaders = new Map<number, string>();
  let partitions = 0;
  await Promise.all(
    httpAddresses.map(async (a) => {
      try {
        const r = await fetch(`http://${a}/v1/partitions`, { signal: AbortSignal.timeout(3000) });
        if (r.status !== 200) return;
        const m = (await r.json()) as { map?: { partitions?: { id: number; leaderHint?: string }[] } };
        const ps = m.map?.partitions ?? [];
        partitions = Math.max(partitions, ps.length);
        for (const p of ps) if (p.leaderHint) leaders.set(p.id, p.leaderHint);
      } catch {
        // a node that is down or starting: the others may know
      }
    }),
  );
  return { leaders, partitions };
}

/** Every partition has a leader (in some node's map) and takes a write (probe keys are deleted again). */
async function waitSettled(endpoints: readonly string[], httpAddresses: readonly string[], partitions: number, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  const kv = await KeyVa.connect({ endpoints, deadlineMs: 3000, retry: { attemptsMax: 10 } });
  try {
    for (;;) {
      const seen = await clusterLeaders(httpAddresses);
      const led = seen.leaders.size;
      if (seen.partitions === partitions && led === partitions) break;
      if (performance.now() > until) throw new Error(`KeyVa cluster: ${led} of ${partitions} partitions have a leader after ${timeoutMs} ms`);
      await sleep(100);
    }
    const map = await kv.partitionMap();
    const keys = keyPerPartition(partitions, (h) => map.locate(h).id);
    await Promise.all(
      keys.map(async (k) => {
        for (;;) {
          try {
            await kv.put(k, 'ready');
            await kv.delete(k);
            return;
          } catch (e) {
            if (performance.now() > until) throw new Error(`KeyVa cluster: probe write ${k} failed within ${timeoutMs} ms: ${(e as Error).message}`);
            await sleep(50);
          }
        }
      }),
    );
  } finally {
    await kv.close();
  }
}
