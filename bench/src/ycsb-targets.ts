/**
 * The systems a YCSB run measures, side by side in one run: KeyVa 1 node (`keyva`; or a
 * replicated cluster of `--keyva-nodes` processes), KeyVa 3 nodes RF 3 (`keyva-3`, always a
 * replicated cluster, keyva-cluster.ts), its peers (a 3-node etcd cluster, Redis with two fsync
 * policies) and the ceilings (a bare grpc-js echo server, raw RocksDB through KeyVa's binding). This file is the coordinator's side: start and stop the
 * servers on loopback, in temp dirs, and say which durability setting is in force. The
 * workers' side (clients) is in ycsb-drivers.ts.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startLocalNode } from '@keyva/cli/local-node';
import { stopProcess } from '@keyva/cli/stop-process';
import { freePort } from '@keyva/node/net/free-port';
import { startKeyvaCluster } from './keyva-cluster.ts';
import { startEchoProcess } from './single-node.ts';
import type { OpType } from './ycsb-workloads.ts';

export const TARGET_NAMES = ['keyva', 'keyva-3', 'keyva-unary', 'etcd', 'redis-always', 'redis-everysec', 'echo', 'rocksdb-raw'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];
export const DEFAULT_TARGETS: readonly TargetName[] = ['keyva', 'keyva-3', 'etcd', 'redis-always', 'redis-everysec', 'echo', 'rocksdb-raw'];

/** The KeyVa targets: `keyva` and `keyva-unary` at `--keyva-nodes` (default 1), `keyva-3` always 3 nodes RF 3. */
export type KeyvaTargetName = 'keyva' | 'keyva-3' | 'keyva-unary';

export function isKeyvaTarget(name: string): name is KeyvaTargetName {
  return name === 'keyva' || name === 'keyva-3' || name === 'keyva-unary';
}

/** Nodes, replication factor and endpoint (bench a running one) of a KeyVa target. */
export function keyvaShape(
  name: KeyvaTargetName,
  o: TargetOptions,
): { nodes: number; replicationFactor: number; endpoint: string | undefined; replicated: boolean } {
  if (name === 'keyva-3') return { nodes: 3, replicationFactor: 3, endpoint: undefined, replicated: true };
  return {
    nodes: o.keyvaNodes,
    replicationFactor: keyvaReplicationFactor(o),
    endpoint: o.keyvaEndpoint,
    replicated: o.keyvaNodes > 1 || o.keyvaLone === false,
  };
}

/** What a client process needs to reach a target (JSON, crosses the IPC channel). */
export type TargetSpec =
  | { readonly kind: 'keyva'; readonly endpoints: readonly string[]; readonly useStream: boolean; readonly exactlyOnce: boolean }
  | { readonly kind: 'etcd'; readonly endpoints: readonly string[] }
  | { readonly kind: 'redis'; readonly host: string; readonly port: number }
  | { readonly kind: 'echo'; readonly address: string }
  | { readonly kind: 'rocksdb-raw' };

export type TargetRole = 'system' | 'peer' | 'ceiling';

export interface TargetInfo {
  readonly name: TargetName;
  readonly label: string;
  readonly role: TargetRole;
  /** The durability setting in force for every figure of this target. */
  readonly durability: string;
  readonly nodes: number;
  readonly notes: string;
}

export interface StartedTarget extends TargetInfo {
  readonly spec: TargetSpec;
  /** Server processes (for CPU and RSS); empty for in-process ceilings. */
  readonly pids: readonly number[];
  /** Operation types the target serves (others' workloads are skipped, with the reason). */
  readonly supports: ReadonlySet<OpType>;
  /** Client processes to use at most (raw RocksDB is one process: the database is locked). */
  readonly clientsMax: number;
  /** Each partition's leader (replicated KeyVa only): partition id -> node id, '(none)' while leaderless. */
  readonly leaders?: () => Promise<Record<string, string>>;
  /** Multi-Raft counters summed over the nodes (replicated KeyVa only; `raftTotals` in keyva-cluster.ts). */
  readonly raftTotals?: () => Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export interface TargetOptions {
  readonly keyvaNodes: number;
  /** Replicas per partition; default min(3, keyvaNodes). */
  readonly keyvaReplicationFactor?: number | undefined;
  /** Partitions (Raft groups when replicated); default the node's own default (64). */
  readonly keyvaPartitions?: number | undefined;
  /** Directory for V8 CPU profiles of the KeyVa node processes (node --cpu-prof), written when they stop. */
  readonly keyvaCpuProfDir?: string | undefined;
  /** Keep the replicated KeyVa nodes' logs in this directory (the data dirs go). */
  readonly keyvaLogDir?: string | undefined;
  readonly keyvaEngine: 'rocksdb' | 'memory';
  /** The SDK's `exactlyOnce` (request ids on writes, docs/adr/0011-exactly-once-writes.md); default true, as the SDK's. */
  readonly keyvaExactlyOnce?: boolean | undefined;
  /**
   * One node: a lone node, no Raft (default true); false starts it like a cluster member (`--peers`
   * itself), so every write takes the one-voter Raft path (log write, turn, apply).
   */
  readonly keyvaLone?: boolean | undefined;
  /** Bench an already running KeyVa instead of starting one (no server CPU/RSS then). */
  readonly keyvaEndpoint?: string | undefined;
  readonly etcdMembers: number;
  readonly etcdBinary?: string | undefined;
  readonly redisBinary?: string | undefined;
}

const ALL_OPS: ReadonlySet<OpType> = new Set(['read', 'update', 'insert', 'scan', 'rmw']);
const POINT_OPS: ReadonlySet<OpType> = new Set(['read', 'update', 'insert', 'rmw']);
const REPO = resolve(import.meta.dirname, '..', '..');

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>, exited?: () => string | undefined): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const why = exited?.();
    if (why) throw new Error(`${what}: ${why}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The node's own default partition count (node/src/config/config.ts). */
export const KEYVA_PARTITIONS_DEFAULT = 64;

/** Replicas per partition: as given, else min(3, nodes). */
export function keyvaReplicationFactor(o: Pick<TargetOptions, 'keyvaNodes' | 'keyvaReplicationFactor'>): number {
  return o.keyvaReplicationFactor ?? Math.min(3, o.keyvaNodes);
}

export function describeTarget(name: TargetName, o: TargetOptions): TargetInfo {
  switch (name) {
    case 'keyva':
    case 'keyva-3':
    case 'keyva-unary': {
      const { nodes, replicationFactor: rf, replicated } = keyvaShape(name, o);
      const size = !replicated ? 'KeyVa 1 node' : nodes === 1 ? 'KeyVa 1 node Raft RF 1' : `KeyVa ${nodes} nodes RF ${rf}`;
      return {
        name,
        label: name === 'keyva-unary' ? `${size} (unary)` : `${size} (stream)`,
        role: 'system',
        durability:
          o.keyvaEngine === 'rocksdb'
            ? rf > 1
              ? `Raft log fsync (RocksDB WAL, group commit) on a majority of the ${rf} replicas before a write is acknowledged (write concern majority, the default)`
              : 'RocksDB WAL fsync per group commit before every write is acknowledged'
            : 'none (memory engine: nothing survives a restart)',
        nodes,
        notes:
          `${name !== 'keyva-unary' ? 'SDK with useStream: single-key ops pipelined on one bidi stream per node per client process' : 'SDK with useStream: false: one unary RPC per op'}; ` +
          `linearizable reads (default); engine ${o.keyvaEngine}; RF ${rf}` +
          `${replicated ? `, ${o.keyvaPartitions ?? KEYVA_PARTITIONS_DEFAULT} partitions (one Raft group each), clients route each key to its partition's leader (partition map + NOT_LEADER hints)` : ''}`,
      };
    }
    case 'etcd':
      return {
        name,
        label: `etcd ${o.etcdMembers}-member cluster`,
        role: 'peer',
        durability: 'Raft WAL fsync on every member before a write is acknowledged (default; --unsafe-no-fsync NOT set)',
        nodes: o.etcdMembers,
        notes: 'etcd v3.6 on loopback, npm etcd3 client (gRPC KV Range/Put/Txn), linearizable reads (default), clients spread over all members',
      };
    case 'redis-always':
    case 'redis-everysec': {
      const always = name === 'redis-always';
      return {
        name,
        label: always ? 'Redis (AOF fsync always)' : 'Redis (AOF fsync everysec)',
        role: 'peer',
        durability: always
          ? 'AOF with appendfsync always: fsync before replies (batched per event-loop turn)'
          : 'AOF with appendfsync everysec: up to ~1 s of acknowledged writes can be lost',
        nodes: 1,
        notes:
          "single redis-server, --save '' --appendonly yes; npm @redis/client, one connection per client process, auto-pipelined; no ordered scans (workload E skipped)",
      };
    }
    case 'echo':
      return {
        name,
        label: 'grpc-js echo (transport ceiling)',
        role: 'ceiling',
        durability: 'n/a (stores nothing)',
        nodes: 1,
        notes: 'bare grpc-js bidi-stream echo server, each op one round trip of a payload the size of the KeyVa request/answer: what the transport allows',
      };
    case 'rocksdb-raw':
      return {
        name,
        label: 'raw RocksDB (storage ceiling)',
        role: 'ceiling',
        durability: 'fsync per group commit (all writes pending in one event-loop turn in one synced batch)',
        nodes: 1,
        notes: 'same binding KeyVa uses (@nxtedition/rocksdb), in the client process: no network, no MVCC; one client process (the database is locked)',
      };
  }
}

export function etcdBinary(explicit?: string): string {
  if (explicit) return explicit;
  const script = join(REPO, 'scripts', 'go-tools.sh');
  try {
    return execFileSync('bash', [script, 'cached', 'etcd'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    throw new Error(`etcd is not built yet: run 'bash scripts/go-tools.sh path etcd' (builds etcd v3.6 from Go modules, cached) or pass --etcd-binary`);
  }
}

export function redisBinary(explicit?: string): string {
  const p = explicit ?? '/usr/bin/redis-server';
  if (!existsSync(p)) throw new Error(`redis-server not found at ${p}: apt-get update && apt-get install -y redis-server (or pass --redis-binary)`);
  return p;
}

export async function startTarget(name: TargetName, o: TargetOptions): Promise<StartedTarget> {
  const info = describeTarget(name, o);
  switch (name) {
    case 'keyva':
    case 'keyva-3':
    case 'keyva-unary': {
      const useStream = name !== 'keyva-unary';
      const exactlyOnce = o.keyvaExactlyOnce !== false;
      const shape = keyvaShape(name, o);
      if (shape.endpoint)
        return {
          ...info,
          spec: { kind: 'keyva', endpoints: [shape.endpoint], useStream, exactlyOnce },
          pids: [],
          supports: ALL_OPS,
          clientsMax: 64,
          stop: async () => {},
        };
      if (shape.replicated) {
        const cluster = await startKeyvaCluster({
          nodes: shape.nodes,
          replicationFactor: shape.replicationFactor,
          partitions: o.keyvaPartitions ?? KEYVA_PARTITIONS_DEFAULT,
          engine: o.keyvaEngine,
          cpuProfDir: o.keyvaCpuProfDir,
          keepLogsDir: o.keyvaLogDir,
        });
        return {
          ...info,
          spec: { kind: 'keyva', endpoints: cluster.endpoints, useStream, exactlyOnce },
          pids: cluster.pids,
          supports: ALL_OPS,
          clientsMax: 64,
          leaders: () => cluster.leaders(),
          raftTotals: () => cluster.raftTotals(),
          stop: () => cluster.stop(),
        };
      }
      const dir = mkdtempSync(join(tmpdir(), 'keyva-ycsb-node-'));
      const node = await startLocalNode({
        dataDir: dir,
        engine: o.keyvaEngine,
        grpcPort: 0,
        httpPort: 0,
        logLevel: 'warn',
        extraArgs: o.keyvaPartitions ? ['--partitions', String(o.keyvaPartitions)] : [],
        ...(o.keyvaCpuProfDir ? { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${o.keyvaCpuProfDir}` } } : {}),
      });
      return {
        ...info,
        spec: { kind: 'keyva', endpoints: [node.grpc], useStream, exactlyOnce },
        pids: [node.process.pid as number],
        supports: ALL_OPS,
        clientsMax: 64,
        stop: async () => {
          await node.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    case 'etcd':
      return { ...info, ...(await startEtcdCluster(etcdBinary(o.etcdBinary), o.etcdMembers)), supports: ALL_OPS, clientsMax: 64 };
    case 'redis-always':
    case 'redis-everysec':
      return {
        ...info,
        ...(await startRedis(redisBinary(o.redisBinary), name === 'redis-always' ? 'always' : 'everysec')),
        supports: POINT_OPS,
        clientsMax: 64,
      };
    case 'echo': {
      const echo = await startEchoProcess();
      return {
        ...info,
        spec: { kind: 'echo', address: echo.address },
        pids: [echo.pid],
        supports: ALL_OPS,
        clientsMax: 64,
        stop: async () => echo.stop(),
      };
    }
    case 'rocksdb-raw':
      return { ...info, spec: { kind: 'rocksdb-raw' }, pids: [], supports: ALL_OPS, clientsMax: 1, stop: async () => {} };
  }
}

async function startEtcdCluster(bin: string, members: number): Promise<{ spec: TargetSpec; pids: number[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-ycsb-etcd-'));
  const ms = [];
  for (let i = 0; i < members; i++) ms.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const initialCluster = ms.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const procs: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => stopProcess(p)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const m of ms) {
      const p = spawn(
        bin,
        [
          '--name',
          m.name,
          '--data-dir',
          join(dir, m.name),
          '--listen-client-urls',
          `http://127.0.0.1:${m.client}`,
          '--advertise-client-urls',
          `http://127.0.0.1:${m.client}`,
          '--listen-peer-urls',
          `http://127.0.0.1:${m.peer}`,
          '--initial-advertise-peer-urls',
          `http://127.0.0.1:${m.peer}`,
          '--initial-cluster',
          initialCluster,
          '--initial-cluster-token',
          'keyva-bench',
          '--initial-cluster-state',
          'new',
          '--quota-backend-bytes',
          String(8 * 1024 ** 3),
          '--log-level',
          'error',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let tail = '';
      p.stderr?.on('data', (d: Buffer) => {
        tail = (tail + d.toString()).slice(-2000);
      });
      p.once('exit', (c) => {
        if (c !== 0 && c !== null) process.stderr.write(`etcd ${m.name} exited ${c}: ${tail}\n`);
      });
      procs.push(p);
    }
    for (const m of ms)
      await waitFor(
        `etcd ${m.name}`,
        30_000,
        async () => {
          const r = await fetch(`http://127.0.0.1:${m.client}/health`);
          return r.ok && ((await r.json()) as { health?: string }).health === 'true';
        },
        () => (procs.some((p) => p.exitCode !== null) ? 'a member exited' : undefined),
      );
  } catch (e) {
    await stop();
    throw e;
  }
  return { spec: { kind: 'etcd', endpoints: ms.map((m) => `127.0.0.1:${m.client}`) }, pids: procs.map((p) => p.pid as number), stop };
}

async function startRedis(bin: string, fsync: 'always' | 'everysec'): Promise<{ spec: TargetSpec; pids: number[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-ycsb-redis-'));
  const port = await freePort();
  const p = spawn(
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--protected-mode',
      'yes',
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      fsync,
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--logfile',
      join(dir, 'redis.log'),
    ],
    { stdio: 'ignore' },
  );
  const stop = async () => {
    await stopProcess(p);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const { createClient } = await import('@redis/client');
    await waitFor(
      'redis-server',
      15_000,
      async () => {
        const c = createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false } });
        c.on('error', () => undefined);
        try {
          await c.connect();
          return (await c.ping()) === 'PONG';
        } finally {
          if (c.isOpen) c.destroy();
        }
      },
      () => (p.exitCode !== null ? `exited ${p.exitCode}` : undefined),
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { spec: { kind: 'redis', host: '127.0.0.1', port }, pids: [p.pid as number], stop };
}
