/**
 * One KeyVa storage node: opens the engine, hosts its partitions, serves gRPC and REST, runs
 * version GC, and shuts down gracefully (refuse new work, finish in-flight, close the engine).
 */
import { randomBytes } from 'node:crypto';
import type * as http from 'node:http';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { type NodeId, PartitionMap } from '@keyva/client/keyspace';
import type { NodeInfoResponse } from '@keyva/proto';
import { ClockGuard } from './clock/clock-guard.ts';
import { HybridClock, systemClock, type WallClock } from './clock/hybrid-clock.ts';
import type { NodeConfig } from './config/config.ts';
import { DEFAULT_REPLICATION_FACTOR, parsePeers } from './config/peers.ts';
import { metaKey } from './engine/key-codec.ts';
import { openEngine } from './engine/open-engine.ts';
import type { StorageEngine } from './engine/types.ts';
import { startGcTimer } from './gc-timer.ts';
import { groupOf, KvStore } from './kv/kv-store.ts';
import { PartitionLoad } from './kv/partition-load.ts';
import { PartitionSizer } from './kv/partition-size.ts';
import { MapFollower } from './membership/map-follower.ts';
import { checkIncarnation, incarnationGuard, loadNodeIdentity } from './membership/node-identity.ts';
import { PeerAdmin } from './membership/peer-admin.ts';
import { QuorumRecovery } from './membership/quorum-recovery.ts';
import { ReplicaDigests } from './membership/replica-digest.ts';
import { dropGroupData, groupRawRows, readStoredGroups } from './membership/replica-hosting.ts';
import { ReplicaMembership } from './membership/replica-membership.ts';
import { MetaForwarder } from './meta/meta-forwarder.ts';
import { LocalMeta, type MetaService, partitionMapOf } from './meta/meta-service.ts';
import { initialMap, type MetaState, type NodeAddresses } from './meta/meta-state.ts';
import { META_GROUP, MetaStateMachine } from './meta/meta-state-machine.ts';
import { MetaVotersKeeper } from './meta/meta-voters-keeper.ts';
import { ReplicatedMeta } from './meta/replicated-meta.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { NodeMetrics } from './observability/metrics.ts';
import { PartitionTable } from './partition/partition-table.ts';
import { ReadOnlyOption } from './raft/types.ts';
import { LeaderBalancer } from './replication/leader-balancer.ts';
import { MultiRaft, NO_RANGE } from './replication/multi-raft.ts';
import { hostOf, RaftTransport } from './replication/raft-transport.ts';
import { FileSnapshotStaging } from './replication/snapshot-staging-files.ts';
import { Forwarder } from './routing/forwarder.ts';
import { StaticNodeDirectory } from './routing/node-directory.ts';
import { type AdminSource, adminGrpcHandlers } from './server/admin-grpc.ts';
import { bindGrpc, createGrpcServer } from './server/grpc-server.ts';
import { KvOps, kvGrpcHandlers } from './server/kv-grpc.ts';
import { RequestRunner } from './server/request-runner.ts';
import { createRestGateway } from './server/rest-gateway.ts';
import { MergeCoordinator } from './split/merge-coordinator.ts';
import { decodeRangeRecord, rangeRecordKey } from './split/split-command.ts';
import { SplitCoordinator } from './split/split-coordinator.ts';
import { SplitHost } from './split/split-host.ts';

export const KEYVA_VERSION = '0.1.0';

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
  /** The partition map and node registry (the meta group's with `--peers`, a local one otherwise). */
  readonly meta: MetaService;
  /** Graceful stop: refuses new requests, waits up to shutdownGraceMs for in-flight ones, closes storage. */
  stop(): Promise<void>;
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
  if (groups.length === 0) return;
  for (const [i, g] of groups.entries()) {
    // The group's other voters (membership changes may have moved it off the --peers list).
    const voters = raft.status(g)?.voters.filter((v) => v !== self) ?? others;
    const to = voters[i % Math.max(1, voters.length)];
    if (to !== undefined) raft.transferLeader(g, to);
  }
  const end = Date.now() + timeoutMs;
  while (led().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const left = led().length;
  log.info({ ledBefore: groups.length, ledAfter: left }, 'leadership handed off before stopping');
}

/** Logs when the map's partitions on this node differ from the groups it hosts (hosting follows the map at start only). */
function checkHosting(s: MetaState, self: NodeId, raft: MultiRaft, log: Logger): void {
  const listed = s.partitions.filter((p) => p.replicas.includes(self)).map((p) => groupOf(p.id));
  const hosted = raft.groups().filter((g) => g !== META_GROUP);
  const missing = listed.filter((g) => !hosted.includes(g));
  const extra = hosted.filter((g) => !listed.includes(g));
  if (missing.length > 0 || extra.length > 0)
    log.warn(
      { epoch: s.epoch.toString(), missingGroups: missing.slice(0, 10), unlistedGroups: extra.slice(0, 10) },
      'the partition map differs from the Raft groups this node hosts (e.g. another --partitions at bootstrap); routing follows the map',
    );
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
          walCompression: config.walCompression,
        },
    // A node with peers sends and takes snapshots: its dump thread starts now, not inside the first move.
    {
      latestCacheBytes: config.readCacheBytes,
      groupLimits: { gcChunkRowsMax: config.gcChunkRows },
      startDumpThread: config.peers !== undefined,
      backgroundNice: config.backgroundNice,
    },
  );
  let grpcServer: grpc.Server | undefined;
  let httpServer: http.Server | undefined;
  let transport: RaftTransport | undefined;
  let raft: MultiRaft | undefined;
  let replicatedMeta: ReplicatedMeta | undefined;
  let membership: ReplicaMembership | undefined;
  let peerAdmin: PeerAdmin | undefined;
  let mapFollower: MapFollower | undefined;
  let splits: SplitCoordinator | undefined;
  let merges: MergeCoordinator | undefined;
  // Per-partition request rates: counted by the KV store, reported by partition leaders.
  const load = new PartitionLoad();
  let recovery: QuorumRecovery | undefined;
  let digests: ReplicaDigests | undefined;
  let balancer: LeaderBalancer | undefined;
  let metaVoters: MetaVotersKeeper | undefined;
  /** The replicated node's background work, stopped before the runtime (a clean stop and a failed start alike). */
  const stopBackground = async (): Promise<void> => {
    mapFollower?.stop();
    await metaVoters?.stop();
    await membership?.stop();
    await splits?.stop();
    await merges?.stop();
    peerAdmin?.close();
  };
  try {
    const guard = new ClockGuard(engine, clock);
    await guard.start();
    const identity = await loadNodeIdentity(engine, config.nodeId, clock, randomBytes);
    const nodeId = identity.id;
    // A memory engine's directory is new at every start: its incarnation means nothing, so it is
    // neither checked at start, sent on Raft streams nor registered (membership/node-identity.ts).
    const incarnation = engine.kind === 'memory' ? undefined : identity.incarnation;
    const log = (deps.logger ?? createLogger(config.logLevel, nodeId)).child({ component: 'node' });
    const partitions = await partitionCount(engine, config.partitions, clock, log);
    // Replicated mode (ADR 0008): the meta group (group 0, on every peer) holds the partition map
    // and the node registry; the node hosts one Raft group per partition listing it.
    const peers = config.peers === undefined ? undefined : parsePeers(config.peers);
    const peerIds = peers?.map((p) => p.id as NodeId);
    // --join: this node founds nothing; it hosts what partition leaders ask it to (HostReplica).
    const joining = peers !== undefined && config.join === true;
    const metaSm = peers === undefined ? undefined : await MetaStateMachine.open(engine);
    // The map the meta leader proposes if the group is empty; a lone node's whole map.
    const initial =
      peers === undefined || peerIds === undefined
        ? initialMap(partitions, [], [nodeId])
        : initialMap(
            partitions,
            peers.map((p) => ({ id: p.id as NodeId, grpcAddress: p.grpcAddress, httpAddress: '' })),
            joining ? peerIds.filter((id) => id !== nodeId) : peerIds,
            // Founders: each partition on --replication-factor of them (config checks RF <= peers);
            // the meta group (group 0) stays on every founder.
            Math.min(config.replicationFactor ?? DEFAULT_REPLICATION_FACTOR, joining ? peerIds.length - 1 : peerIds.length),
          );
    // Until the meta group delivers the map: the initial one at epoch 0 (a lone node: epoch 1, as before).
    const table = new PartitionTable(
      metaSm !== undefined && metaSm.state.epoch > 0n
        ? partitionMapOf(metaSm.state)
        : new PartitionMap(
            metaSm === undefined ? 1n : 0n,
            initial.partitions.map((p) => ({ ...p, leaderHint: metaSm === undefined ? nodeId : undefined })),
            initial.nodes,
          ),
      nodeId,
    );
    let meta: MetaService;
    if (peers !== undefined && peerIds !== undefined && metaSm !== undefined) {
      if (engine.kind === 'memory')
        log.warn('memory engine with --peers: a restarted node rejoins with no Raft state, which can lose acknowledged writes; for tests only');
      // One pool of Admin channels to the other nodes: the identity check, meta forwarding, membership, the map follower.
      peerAdmin = new PeerAdmin();
      // Before any Raft group opens: a node whose data directory was wiped must not rejoin under its old id.
      if (incarnation !== undefined) await checkIncarnation(identity, peers, peerAdmin);
      // Raft dials the --peers addresses unless --raft-dial routes a peer elsewhere (a proxy); clients keep the --peers ones.
      const dial = config.raftDial === undefined ? [] : parsePeers(config.raftDial);
      const addresses = new Map([...peers, ...dial].map((p) => [p.id, p.grpcAddress]));
      const dialed = new Set(dial.map((p) => p.id));
      const addressOf = (id: string) => addresses.get(id) ?? replicatedMeta?.addressOf(id as NodeId);
      let runtime: MultiRaft | undefined;
      transport = new RaftTransport({
        self: nodeId,
        addressOf,
        onReceive: (from, group, m) => runtime?.receive(from, group, m),
        snapshotBytesPerSecond: config.snapshotBytesPerSec,
        snapshotRowsOnly: config.snapshotFormat === 'rows',
        log: log.child({ component: 'snapshot' }),
        // SST-file snapshots over the snapshot socket (ADR 0014), except to peers routed through --raft-dial (a proxy
        // sees all their traffic); no socket on a node that cannot take SST files (the published binding).
        ...(config.snapshotTransport === 'socket' && engine.sst !== undefined
          ? {
              snapshotSocket: { host: config.grpcHost, port: config.snapshotPort },
              snapshotSocketHostOf: (id: string) => (dialed.has(id) ? undefined : hostOf(addressOf(id))),
            }
          : {}),
        // Raft traffic from a node back on a wiped disk is refused (membership/node-identity.ts).
        ...(incarnation === undefined ? {} : { incarnation }),
        refuses: incarnationGuard(
          // The routing map's registry: the meta group's on a founder, the followed one on a joined node.
          (id) => table.current.nodes.get(id as NodeId)?.incarnation,
          (from, message) => log.error({ from }, `refusing Raft traffic: ${message}`),
        ),
      });
      // Splits (docs/adr/0010-splits.md): a split entry creates the child group here.
      const splitHost = new SplitHost({
        self: nodeId,
        hosted: (g) => runtime?.status(g) !== undefined,
        open: async (g, range) => {
          await runtime?.addGroup({ group: g, range });
        },
        onNarrowed: () => splits?.kick(),
        onMerge: () => merges?.kick(),
        leads: (g) => runtime?.leads(g) === true,
        campaign: (g) => runtime?.campaign(g),
        log: log.child({ component: 'split' }),
      });
      // Received snapshots are staged in files beside the RocksDB directory (ADR 0008 "Snapshots staged in files").
      const staging = config.engine === 'memory' ? undefined : new FileSnapshotStaging(join(config.dataDir, 'snapshots'));
      runtime = new MultiRaft({
        nodeId,
        engine,
        staging,
        transport,
        clock,
        splits: splitHost,
        tickMs: config.raftTickMs,
        electionTick: config.raftElectionTicks,
        // Lease reads need CheckQuorum (the core's default, like PreVote): docs/adr/0008 "Changes".
        raft: { readOnlyOption: config.readMode === 'lease' ? ReadOnlyOption.Lease : ReadOnlyOption.Safe },
        onFatal: (e) => log.fatal({ err: e }, 'replication runtime failed: this node no longer serves writes'),
      });
      table.followLocalLeadership((partitionId) => runtime?.leads(groupOf(partitionId)) === true);
      // Hosting is durable (node/src/membership/replica-hosting.ts): dropped replicas finish
      // their deletion; groups a leader asked this node to host reopen; founders' groups follow the map.
      const stored = await readStoredGroups(engine);
      for (const [g, range] of stored.tombstones) if ((await groupRawRows(engine, g, 1)) > 0) await dropGroupData(engine, g, range);
      // Every founding member bootstraps with all peers as voters (ADR 0008 §10); ignored once a group has state.
      // (A tombstone: this node was removed from the meta group; it must never bootstrap a new one.)
      if ((!joining || stored.withState.has(META_GROUP)) && !stored.tombstones.has(META_GROUP))
        await runtime.addGroup({ group: META_GROUP, range: NO_RANGE, bootstrap: joining ? undefined : peerIds, content: metaSm });
      // Data groups: the partitions of the stored map that list this node (before the first map: of the initial one).
      // Only founding partitions (generation 1) are created from the map; a split-off one is created by its
      // parent's split entry (or hosted empty once no group here owns its range: node/src/split).
      for (const p of table.current.partitions)
        if (p.replicas.includes(nodeId) && !stored.tombstones.has(groupOf(p.id)) && (p.generation === 1n || stored.withState.has(groupOf(p.id))))
          await runtime.addGroup({ group: groupOf(p.id), range: { start: p.start, end: p.end }, bootstrap: joining ? undefined : p.replicas });
      const hostedNow = new Set(runtime.groups());
      for (const [g, range] of stored.hosting) if (!hostedNow.has(g)) await runtime.addGroup({ group: g, range });
      // Raft state on disk the map no longer lists for this node: reopened, so a removal in its log is cleaned up.
      for (const g of stored.withState) {
        const p = table.current.partitions.find((x) => groupOf(x.id) === g);
        if (g !== META_GROUP && p !== undefined && !runtime.groups().includes(g)) await runtime.addGroup({ group: g, range: { start: p.start, end: p.end } });
        // A group merged away in the map but not retired here yet: reopened from its own range record, so it
        // applies the freeze (every replica must) and is retired after the absorb (docs/adr/0010-splits.md "Merges").
        const own = g === META_GROUP || p !== undefined || runtime.groups().includes(g) ? undefined : await engine.getRaw(rangeRecordKey(g));
        if (own !== undefined) {
          const r = decodeRangeRecord(own);
          await runtime.addGroup({ group: g, range: { start: r.start, end: r.end } });
        }
      }
      // Staging left by groups no longer hosted (dropped, retired or merged away while a transfer was cut off).
      await staging?.sweep(new Set(runtime.groups()));
      raft = runtime;
      const hostRuntime = runtime;
      if (config.leaderBalanceIntervalMs > 0) {
        const balanceLog = log.child({ component: 'leader-balance' });
        balancer = new LeaderBalancer({
          self: nodeId,
          host: runtime,
          intervalMs: config.leaderBalanceIntervalMs,
          maxTransfers: config.leaderBalanceTransfersMax,
          onTransfer: (t, r) => balanceLog.debug({ group: t.group, to: t.to, ok: r?.ok ?? false }, 'leadership transfer to even out leaders'),
        });
      }

      const peerAddress = new Map(peers.map((p) => [p.id, p.grpcAddress]));
      replicatedMeta = new ReplicatedMeta({
        self: nodeId,
        raft: runtime,
        sm: metaSm,
        forwarder: new MetaForwarder(peerAdmin),
        // A joined node holds no meta replica: nodes registered after it are known from the followed map.
        fallbackAddressOf: (id) => peerAddress.get(id) ?? (table.current.nodes.get(id)?.grpcAddress || undefined),
        contacts: joining ? peerIds : undefined,
        log: log.child({ component: 'meta' }),
      });
      meta = replicatedMeta;
      splits = new SplitCoordinator({
        self: nodeId,
        raft: runtime,
        meta: replicatedMeta,
        map: () => table.current,
        engine,
        // A replica being dropped (removed from its group) is not an orphan to host again.
        creating: (g) => splitHost.isCreating(g) || membership?.isDropping(g) === true,
        dropping: (range) => membership?.dropOverlaps(range) === true,
        log: log.child({ component: 'split' }),
      });
      merges = new MergeCoordinator({
        self: nodeId,
        raft: runtime,
        meta: replicatedMeta,
        map: () => table.current,
        peers: peerAdmin,
        addressOf: (id) => replicatedMeta?.addressOf(id),
        engine,
        log: log.child({ component: 'merge' }),
      });
      const metaView = replicatedMeta;
      const sizer = new PartitionSizer(engine);
      membership = new ReplicaMembership({
        self: nodeId,
        raft: runtime,
        engine,
        replicationFactor: config.replicationFactor ?? 3,
        rangeOf: (id) => {
          const p = table.current.partitions.find((x) => x.id === id);
          return p === undefined ? undefined : { start: p.start, end: p.end };
        },
        addressOf: (id) => metaView.addressOf(id),
        peers: peerAdmin,
        metaContent: metaSm,
        knownNodes: () => [...table.current.nodes.keys()],
        sizeOf: (g, r) => sizer.sizeOf(g, r),
        loadOf: (p) => load.rate(p),
        log: log.child({ component: 'membership' }),
      });
      // The meta group's voters follow the registry's active nodes (founders can retire).
      metaVoters = new MetaVotersKeeper({
        self: nodeId,
        status: () => runtime.status(META_GROUP),
        state: () => metaSm.state,
        membership,
        downGraceMs: config.metaVoterDownGraceMs,
        log: log.child({ component: 'meta-voters' }),
      });
      digests = new ReplicaDigests({ self: nodeId, raft: runtime, engine, peers: peerAdmin, addressOf: (id) => metaView.addressOf(id) });
      recovery = new QuorumRecovery({
        self: nodeId,
        raft: runtime,
        engine,
        peers: peerAdmin,
        addressOf: (id) => metaView.addressOf(id),
        // Whether this node hosts a meta replica is checked at recovery time (it may be added later).
        metaContent: metaSm,
        log: log.child({ component: 'quorum-recovery' }),
      });
      {
        // A node without a meta replica (joined, or removed from the meta group) follows the map
        // from the registered nodes, founders last.
        const founders = peers.filter((p) => p.id !== nodeId).map((p) => p.grpcAddress);
        mapFollower = new MapFollower({
          peers: peerAdmin,
          active: () => runtime.status(META_GROUP) === undefined,
          addresses: () => [
            ...new Set([...[...table.current.nodes.values()].filter((n) => n.id !== nodeId && n.grpcAddress !== '').map((n) => n.grpcAddress), ...founders]),
          ],
          apply: (m) =>
            table.replace(
              new PartitionMap(
                m.epoch,
                m.partitions.map((p) => ({ ...p, leaderHint: undefined })),
                [...m.nodes.values()],
              ),
            ),
          log,
        });
      }
      meta.onChange((s) => {
        table.replace(partitionMapOf(s));
        checkHosting(s, nodeId, hostRuntime, log);
      });
    } else {
      meta = new LocalMeta();
      meta.onChange((s) => table.replace(partitionMapOf(s, () => nodeId)));
    }
    const kv = new KvStore(engine, table, clock, config, guard, raft, load);
    const metrics = new NodeMetrics(engine, { defaultMetrics: deps.defaultMetrics ?? false });
    if (transport !== undefined) {
      const t = transport;
      metrics.watchSnapshotStreams(() => t.snapshotTotals());
      metrics.watchRaftTransport(() => t.stats);
    }
    if (raft !== undefined) {
      const r = raft;
      metrics.watchRaft(() => r.stats);
    }
    const runner = new RequestRunner(metrics, log, config.slowOpMs);
    // Replicated mode: requests for partitions led elsewhere are forwarded to their leader (ADR 0008 §8).
    const forwarder =
      peers === undefined
        ? undefined
        : new Forwarder({ self: nodeId, directory: replicatedMeta ?? new StaticNodeDirectory(peers), messageBytesMax: config.messageBytesMax });
    const ops = new KvOps(kv, forwarder);

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
      meta,
      membership,
      splits,
      merges,
      recovery,
      digests,
    };

    grpcServer = createGrpcServer(
      { messageBytesMax: config.messageBytesMax },
      { kv: kvGrpcHandlers(ops, kv, runner), admin: adminGrpcHandlers(admin, runner), raft: transport?.handlers() },
    );
    const grpcPort = await bindGrpc(grpcServer, `${config.grpcHost}:${config.grpcPort}`);
    httpServer = createRestGateway({ messageBytesMax: config.messageBytesMax }, { kv, ops, runner, metrics, admin, ready: () => ready && !runner.isDraining });
    const httpPort = await listen(httpServer, config.httpHost, config.httpPort);
    const snapshotPort = await transport?.startSnapshotSocket();
    grpcAddress = `${advertise}:${grpcPort}`;
    httpAddress = `${config.advertiseHost ?? config.httpHost}:${httpPort}`;
    const self: NodeAddresses = { id: nodeId, grpcAddress, httpAddress, ...(incarnation === undefined ? {} : { incarnation }) };
    if (replicatedMeta === undefined) {
      // A lone node: its map at epoch 1 with itself as the only node.
      const r = await meta.proposeMetaChange(initialMap(partitions, [self], [nodeId]));
      if (!r.ok) throw new Error(`local partition map: ${r.message}`);
    } else {
      // Until the meta group has a map: the initial one, with this node's HTTP address.
      if (table.current.epoch === 0n) table.withNodes(initial.nodes.map((n) => (n.id === nodeId ? self : n)));
      raft?.start();
      // Proposes the initial map if this node leads an empty meta group; registers its addresses.
      replicatedMeta.start({ initial: joining ? undefined : initial, self });
      membership?.start();
      splits?.start();
      merges?.start();
      mapFollower?.start();
      metaVoters?.start();
      balancer?.start();
    }

    const stopGc = startGcTimer({
      intervalMs: config.gcIntervalMs,
      run: () =>
        kv.gc(config.versionRetentionMs).then(
          (n) => n > 0 && log.debug({ removed: n }, 'version gc'),
          (e) => log.error({ err: e }, 'version gc failed'),
        ),
    });
    ready = true;
    // How this node sends and takes snapshots (ADR 0013): SST files need KeyVa's build of the binding.
    const snapshots =
      peers === undefined
        ? undefined
        : engine.sst !== undefined && config.snapshotFormat === 'auto'
          ? snapshotPort === undefined
            ? 'sst-files over grpc'
            : `sst-files, socket port ${snapshotPort}`
          : 'rows';
    // Tiered compression (ADR 0015) comes with the same build of the binding as SST snapshots.
    const compression =
      config.engine === 'memory'
        ? undefined
        : config.compression === 'tiered' && engine.sst === undefined
          ? "zstd (tiered needs KeyVa's build of the RocksDB binding)"
          : config.compression;
    log.info({ grpcAddress, httpAddress, engine: engine.kind, partitions, dataDir: config.dataDir, peers: peerIds, snapshots, compression }, 'node ready');

    let stopping: Promise<void> | undefined;
    const g = grpcServer;
    const h = httpServer;
    const stop = () => {
      stopping ??= (async () => {
        ready = false;
        stopGc();
        balancer?.stop();
        runner.drain();
        splits?.drain();
        merges?.drain();
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
        forwarder?.close();
        await stopBackground();
        const metaStopped = replicatedMeta?.stop();
        await raft?.stop();
        await metaStopped;
        await engine.close();
        log.info('stopped cleanly');
      })();
      return stopping;
    };
    return { nodeId, grpcAddress, httpAddress, engine, kv, metrics, log, raft, meta, stop };
  } catch (e) {
    balancer?.stop();
    await stopBackground();
    const metaStopped = replicatedMeta?.stop();
    grpcServer?.forceShutdown();
    httpServer?.close();
    await raft?.stop();
    await metaStopped;
    transport?.close();
    await engine.close();
    throw e;
  }
}
