/**
 * One KeyVa storage node: opens the engine, hosts its partitions, serves gRPC and REST, runs
 * version GC, and shuts down gracefully (refuse new work, finish in-flight, close the engine).
 */
import { randomBytes } from 'node:crypto';
import type * as http from 'node:http';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { type NodeId, PartitionMap, uniformPartitions } from '@keyva/client/keyspace';
import type { NodeInfoResponse } from '@keyva/proto';
import { ClockGuard } from './clock/clock-guard.ts';
import { HybridClock, systemClock, type WallClock } from './clock/hybrid-clock.ts';
import type { NodeConfig } from './config/config.ts';
import { metaKey } from './engine/key-codec.ts';
import { openEngine } from './engine/open-engine.ts';
import type { StorageEngine } from './engine/types.ts';
import { KvStore } from './kv/kv-store.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { NodeMetrics } from './observability/metrics.ts';
import { PartitionTable } from './partition/partition-table.ts';
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
  try {
    const guard = new ClockGuard(engine, clock);
    await guard.start();
    const nodeId = await nodeIdentity(engine, config.nodeId, clock);
    const log = (deps.logger ?? createLogger(config.logLevel, nodeId)).child({ component: 'node' });
    const partitions = await partitionCount(engine, config.partitions, clock, log);
    const table = new PartitionTable(new PartitionMap(1n, uniformPartitions(partitions, [nodeId], nodeId)), nodeId);
    const kv = new KvStore(engine, table, clock, config, guard);
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
      partitionMap: () => table.current,
    };

    grpcServer = createGrpcServer(
      { messageBytesMax: config.messageBytesMax },
      { kv: kvGrpcHandlers(ops, kv, runner), admin: adminGrpcHandlers(admin, runner) },
    );
    const grpcPort = await bindGrpc(grpcServer, `${config.grpcHost}:${config.grpcPort}`);
    httpServer = createRestGateway({ messageBytesMax: config.messageBytesMax }, { kv, runner, metrics, admin, ready: () => ready && !runner.isDraining });
    const httpPort = await listen(httpServer, config.httpHost, config.httpPort);
    grpcAddress = `${advertise}:${grpcPort}`;
    httpAddress = `${config.advertiseHost ?? config.httpHost}:${httpPort}`;
    table.withNodes([{ id: nodeId, grpcAddress, httpAddress }]);

    const gcTimer = setInterval(() => {
      kv.gc(config.versionRetentionMs).then(
        (n) => n > 0 && log.debug({ removed: n }, 'version gc'),
        (e) => log.error({ err: e }, 'version gc failed'),
      );
    }, config.gcIntervalMs);
    gcTimer.unref();
    ready = true;
    log.info({ grpcAddress, httpAddress, engine: engine.kind, partitions, dataDir: config.dataDir }, 'node ready');

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
        const outcome = await Promise.race([Promise.all([runner.drained(), grpcDone]).then(() => 'drained' as const), grace]);
        if (outcome === 'timeout') log.warn('shutdown grace period over; cancelling remaining calls');
        g.forceShutdown();
        h.closeAllConnections();
        await runner.drained();
        await engine.close();
        log.info('stopped cleanly');
      })();
      return stopping;
    };
    return { nodeId, grpcAddress, httpAddress, engine, kv, metrics, log, stop };
  } catch (e) {
    grpcServer?.forceShutdown();
    httpServer?.close();
    await engine.close();
    throw e;
  }
}
