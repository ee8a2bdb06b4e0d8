/**
 * One KeyVa storage node: opens the engine, hosts its partitions, serves gRPC and REST, runs
 * version GC, and shuts down gracefully (refuse new work, finish in-flight, close the engine).
 */
import { randomBytes } from 'node:crypto';
import type * as http from 'node:http';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { type NodeAddressInfo, type NodeId, PartitionMap, uniformPartitions } from '@keyva/client/keyspace';
import type { NodeInfoResponse } from '@keyva/proto';
import { ClockGuard } from './clock/clock-guard.ts';
import { HybridClock, systemClock, type WallClock } from './clock/hybrid-clock.ts';
import type { NodeConfig } from './config/config.ts';
import { parsePeers } from './config/peers.ts';
import { metaKey } from './engine/key-codec.ts';
import { openEngine } from './engine/open-engine.ts';
import type { StorageEngine } from './engine/types.ts';
import { groupOf, KvStore } from './kv/kv-store.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { NodeMetrics } from './observability/metrics.ts';
import { PartitionTable } from './partition/partition-table.ts';
import { MultiRaft } from './replication/multi-raft.ts';
import { RaftTransport } from './replication/raft-transport.ts';
import { type AdminSource, adminGrpcHandlers } from './server/admin-grpc.ts';
import { bindGrpc, createGrpcServer } from './server/grpc-server.ts';
import { KvOps, kvGrpcHandlers } from './server/kv-grpc.ts';
import { RequestRunner } from './server/request-runner.ts';
import { createRestGateway } from './server/rest-gateway.ts';

export const KEYVA_VERSION = '0.1.0';

const NODE_ID_KEY = metaKey('node-id');
const PARTITION_COUNT_KEY = metaKey('partition-count');

export interface NodeDeps {
  readonly wall?: WallClock;
  readonly logger?: Logger;
  /** Collect process-wide default metrics (off when several nodes share a process). */
  readonly defaultMetrics?: boolean;
}

export interface RunningNode {
  readonly nodeId: NodeId;
  readonly grpcAddress: string;
  readonly httpAddress: string;
  readonly engine: StorageEngine;
  readonly kv: KvStore;
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  /** Replicated mode (`--peers`): the node's Multi-Raft runtime; undefined on a lone node. */
  readonly raft: MultiRaft | undefined;
  /** Graceful stop: refuses new requests, waits up to shutdownGraceMs for in-flight ones, closes storage. */
  stop(): Promise<void>;
}

async function nodeIdentity(engine: StorageEngine, configured: string | undefined, clock: HybridClock): Promise<NodeId> {
  const stored = (await engine.getRaw(NODE_ID_KEY))?.toString('utf8');
  if (stored && configured && stored !== configured)
    throw new Error(`data dir belongs to node '${stored}' but --node-id is '${configured}': refusing to start with another node's data`);
  const id = stored ?? configured ?? `n-${randomBytes(4).toString('hex')}`;
  if (!stored)
    await engine.write({ mutations: [{ type: 'rawPut', key: NODE_ID_KEY, value: Buffer.from(id) }], commitTs: clock.now(), nowMs: clock.nowMs(), sync: true });
  return id as NodeId;
}

async function partitionCount(engine: StorageEngine, configured: number, clock: HybridClock, log: Logger): Promise<number> {
  const stored = await engine.getRaw(PARTITION_COUNT_KEY);
  if (stored) {
    const n = stored.readUInt32BE(0);
    if (n !== configured) log.warn({ stored: n, configured }, 'partition count is fixed at first start; using the stored count');
    return n;
  }
  const v = Buffer.alloc(4);
  v.writeUInt32BE(configured);
  await engine.write({ mutations: [{ type: 'rawPut', key: PARTITION_COUNT_KEY, value: v }], commitTs: clock.now(), nowMs: clock.nowMs(), sync: true });
  return configured;
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/**
 * Graceful stop in replicated mode: asks the other voters to take over the groups this node
 * leads, so clients see a leader change instead of an election timeout; waits up to `timeoutMs`.
 */
async function handOffLeadership(raft: MultiRaft, self: NodeId, peers: readonly NodeId[], timeoutMs: number, log: Logger): Promise<void> {
  const others = peers.filter((p) => p !== self);
  const led = () => raft.groups().filter((g) => raft.status(g)?.leader === self);
  const groups = led();
  if (others.length === 0 || groups.length === 0) return;
  for (const [i, g] of groups.entries()) raft.transferLeader(g, others[i % others.length] as NodeId);
  const end = Date.now() + timeoutMs;
  while (led().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const left = led().length;
  log.info({ ledBefore: groups.length, ledAfter: left }, 'leadership handed off before stopping');
}

/** The partition map with each partition's current Raft leader as its leader hint. */
function withLeaders(map: PartitionMap, raft: MultiRaft): PartitionMap {
  return new PartitionMap(
    map.epoch,
    map.partitions.map((p) => ({ ...p, leaderHint: raft.status(groupOf(p.id))?.leader })),
    [...map.nodes.values()],
  );
}

export async function startNode(config: NodeConfig, deps: NodeDeps = {}): Promise<RunningNode> {
  const startedAt = Date.now();
  const clock = new HybridClock(deps.wall ?? systemClock);
  const engine = await openEngine(
    config.engine === 'memory'
      ? { kind: 'memory' }
      : {
          kind: 'rocksdb',
          path: join(config.dataDir, 'rocksdb'),
          compression: config.compression,
          bloomBitsPerKey: config.bloomBitsPerKey,
          blockCacheBytes: config.blockCacheBytes,
        },
  );
  let grpcServer: grpc.Server | undefined;
  let httpServer: http.Server | undefined;
  let transport: RaftTransport | undefined;
  let raft: MultiRaft | undefined;
  try {
    const guard = new ClockGuard(engine, clock);
    await guard.start();
    const nodeId = await nodeIdentity(engine, config.nodeId, clock);
    const log = (deps.logger ?? createLogger(config.logLevel, nodeId)).child({ component: 'node' });
    const partitions = await partitionCount(engine, config.partitions, clock, log);
    // Replicated mode (ADR 0008): every partition lives on every peer, one Raft group each.
    const peers = config.peers === undefined ? undefined : parsePeers(config.peers);
    const peerIds = peers?.map((p) => p.id as NodeId);
    const table = new PartitionTable(
      new PartitionMap(1n, peerIds === undefined ? uniformPartitions(partitions, [nodeId], nodeId) : uniformPartitions(partitions, peerIds)),
      nodeId,
    );
    if (peers !== undefined && peerIds !== undefined) {
      if (engine.kind === 'memory')
        log.warn('memory engine with --peers: a restarted node rejoins with no Raft state, which can lose acknowledged writes; for tests only');
      const addresses = new Map(peers.map((p) => [p.id, p.grpcAddress]));
      let runtime: MultiRaft | undefined;
      transport = new RaftTransport({ self: nodeId, addressOf: (id) => addresses.get(id), onReceive: (from, group, m) => runtime?.receive(from, group, m) });
      runtime = new MultiRaft({
        nodeId,
        engine,
        transport,
        clock,
        tickMs: config.raftTickMs,
        onFatal: (e) => log.fatal({ err: e }, 'replication runtime failed: this node no longer serves writes'),
      });
      // Every founding member bootstraps with all peers as voters (ADR 0008 §10); ignored once a group has state.
      for (const p of table.current.partitions) await runtime.addGroup({ group: groupOf(p.id), range: { start: p.start, end: p.end }, bootstrap: peerIds });
      raft = runtime;
    }
    const kv = new KvStore(engine, table, clock, config, guard, raft);
    const metrics = new NodeMetrics(engine, { defaultMetrics: deps.defaultMetrics ?? false });
    const runner = new RequestRunner(metrics, log, config.slowOpMs);
    const ops = new KvOps(kv);

    let ready = false;
    let grpcAddress = '';
    let httpAddress = '';
    const advertise = config.advertiseHost ?? config.grpcHost;
    const admin: AdminSource = {
      health: () => ({ status: ready && !runner.isDraining ? 'SERVING' : 'NOT_SERVING', nodeId }),
      nodeInfo: (): NodeInfoResponse => {
        const s = engine.stats();
        return {
          nodeId,
          version: KEYVA_VERSION,
          grpcAddress,
          httpAddress,
          engine: engine.kind,
          dataDir: config.engine === 'memory' ? '' : config.dataDir,
          partitions: table.hosted().length,
          uptimeMs: String(Date.now() - startedAt),
          storageBytes: String(Math.max(0, Math.round(s.sizeBytes || 0))),
          keysEstimate: String(Math.max(0, Math.round(s.keysEstimate || 0))),
        };
      },
      partitionMap: () => (raft === undefined ? table.current : withLeaders(table.current, raft)),
    };

    grpcServer = createGrpcServer(
      { messageBytesMax: config.messageBytesMax },
      { kv: kvGrpcHandlers(ops, kv, runner), admin: adminGrpcHandlers(admin, runner), raft: transport?.handlers() },
    );
    const grpcPort = await bindGrpc(grpcServer, `${config.grpcHost}:${config.grpcPort}`);
    httpServer = createRestGateway({ messageBytesMax: config.messageBytesMax }, { kv, runner, metrics, admin, ready: () => ready && !runner.isDraining });
    const httpPort = await listen(httpServer, config.httpHost, config.httpPort);
    grpcAddress = `${advertise}:${grpcPort}`;
    httpAddress = `${config.advertiseHost ?? config.httpHost}:${httpPort}`;
    const self: NodeAddressInfo = { id: nodeId, grpcAddress, httpAddress };
    // Other peers' HTTP addresses are unknown here (only their gRPC addresses are configured).
    table.withNodes(
      peers === undefined ? [self] : peers.map((p) => (p.id === nodeId ? self : { id: p.id as NodeId, grpcAddress: p.grpcAddress, httpAddress: '' })),
    );
    raft?.start();

    const gcTimer = setInterval(() => {
      kv.gc(config.versionRetentionMs).then(
        (n) => n > 0 && log.debug({ removed: n }, 'version gc'),
        (e) => log.error({ err: e }, 'version gc failed'),
      );
    }, config.gcIntervalMs);
    gcTimer.unref();
    ready = true;
    log.info({ grpcAddress, httpAddress, engine: engine.kind, partitions, dataDir: config.dataDir, peers: peerIds }, 'node ready');

    let stopping: Promise<void> | undefined;
    const g = grpcServer;
    const h = httpServer;
    const stop = () => {
      stopping ??= (async () => {
        ready = false;
        clearInterval(gcTimer);
        runner.drain();
        log.info('draining: refusing new requests, finishing in-flight ones');
        const grace = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.shutdownGraceMs).unref());
        const grpcDone = new Promise<void>((r) => g.tryShutdown(() => r()));
        h.close();
        // Replicated mode: peers' Raft streams never end on their own (and must keep flowing while
        // in-flight proposals commit), so only the KV requests are waited for.
        const outcome = await Promise.race([Promise.all([runner.drained(), raft === undefined ? grpcDone : undefined]).then(() => 'drained' as const), grace]);
        if (outcome === 'timeout') log.warn('shutdown grace period over; cancelling remaining calls');
        if (raft !== undefined && peerIds !== undefined) await handOffLeadership(raft, nodeId, peerIds, Math.min(2000, config.shutdownGraceMs), log);
        g.forceShutdown();
        h.closeAllConnections();
        await runner.drained();
        await raft?.stop();
        await engine.close();
        log.info('stopped cleanly');
      })();
      return stopping;
    };
    return { nodeId, grpcAddress, httpAddress, engine, kv, metrics, log, raft, stop };
  } catch (e) {
    grpcServer?.forceShutdown();
    httpServer?.close();
    await raft?.stop();
    transport?.close();
    await engine.close();
    throw e;
  }
}
