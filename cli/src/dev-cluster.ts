/**
 * The local platform's supervisor (`keyva dev --nodes N`): the node processes of a dev cluster,
 * the placement control loop over them (in this process), and a loopback HTTP control endpoint
 * for `keyva node add|remove` and `keyva status`.
 *
 * - Founders node-1..N start as before (fixed ports, base + 10·i). Added nodes (node-N+1, ...)
 *   start with `--join` on free ports; `cluster.json` in the data folder remembers them (and the
 *   removed ones) so the next `keyva dev` restarts the same cluster.
 * - `addNode` starts the process; the control loop rebalances it in (learner first).
 * - `removeNode` is refused up front when unsafe (the planner's reason); otherwise it sets the
 *   node DRAINING in the meta group and returns. The loop drains it; once the data plane confirms
 *   by the node's durable id that it hosts no replica, the loop marks it REMOVED, and this
 *   supervisor stops its process.
 * Every decision reads the cluster, so a restarted loop (`restartLoop`) continues where it was.
 */
import { mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { freePort } from '@keyva/node/net/free-port';
import { ControlLoop, DigestAuditor, GrpcAdminCaller, type LoopStatus, type ObservedCluster, Observer, StepExecutor } from '@keyva/operator/dataplane';
import { type ClusterSpec, ClusterView, decommissionRefusal, nodeId, resolveSpec } from '@keyva/operator/placement';
import { KeyVaError } from '@keyva/proto/errors';
import { CONTROL_FILE } from './dev-control.ts';
import { type LocalNode, startLocalNode } from './local-node.ts';

const CLUSTER_FILE = 'cluster.json';

export interface DevClusterOptions {
  readonly dataDir: string;
  readonly memory: boolean;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Founding nodes: 3 or 5 (= the replication factor). */
  readonly founders: number;
  /** Partitions at first start (node default 64). */
  readonly partitions?: number | undefined;
  /** Control endpoint port on 127.0.0.1 (0: any free port). */
  readonly controlPort?: number | undefined;
  readonly intervalMs?: number | undefined;
  /** Size split threshold of the placement spec (its default otherwise). */
  readonly splitSizeBytes?: number | undefined;
  /** Load split threshold (keys read and written per second) of the placement spec. */
  readonly splitQps?: number | undefined;
  /** Merges on: neighbours holding fewer bytes together than this merge, down to one partition (off without it). */
  readonly mergeSizeBytes?: number | undefined;
  readonly log?: ((msg: string) => void) | undefined;
}

interface NodeRecord {
  readonly id: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly founder: boolean;
  removed: boolean;
}

export interface DevNodeStatus {
  readonly id: string;
  readonly state: string;
  readonly health: string;
  readonly grpc: string;
  readonly http: string;
  readonly process: 'running' | 'stopped';
  readonly pid?: number | undefined;
  readonly partitions: number;
  readonly learners: number;
  readonly leaders: number;
  readonly storageBytes?: string | undefined;
}

export interface DevStatus {
  readonly epoch?: string | undefined;
  readonly replicationFactor: number;
  readonly partitions: number;
  readonly nodes: readonly DevNodeStatus[];
  readonly loop: LoopStatus;
  readonly control: string;
  /** The meta group (partition map and registry): its voters and leader, from a node that hosts it. */
  readonly meta?: { readonly voters: readonly string[]; readonly leader: string } | undefined;
}

export class DevCluster {
  readonly o: DevClusterOptions;
  readonly spec: ClusterSpec;
  private readonly records: NodeRecord[] = [];
  private readonly procs = new Map<string, LocalNode>();
  private readonly admin = new GrpcAdminCaller();
  private readonly executor = new StepExecutor(this.admin);
  private observer: Observer;
  private loop: ControlLoop;
  private server: Server | undefined;
  private controlAddress = '';
  private topologyBusy = false;
  private stopping = false;
  /** Resolves when a node process exits on its own (not stopped by us). */
  readonly unexpectedExit: Promise<{ id: string; code: number | null; log: string }>;
  private onUnexpected: (x: { id: string; code: number | null; log: string }) => void = () => {};

  constructor(o: DevClusterOptions) {
    this.o = o;
    this.spec = resolveSpec({
      replicationFactor: o.founders,
      // Merges only with --merge-size (docs/adr/0010-splits.md "Merges"); the nodes balance leadership
      // themselves. (The merge threshold must stay at most half the split threshold, also when the latter is lowered.)
      merge: {
        enabled: o.mergeSizeBytes !== undefined,
        ...(o.splitSizeBytes === undefined ? {} : { sizeBytes: Math.floor(o.splitSizeBytes / 4) }),
        ...(o.splitQps === undefined ? {} : { qps: Math.floor(o.splitQps / 4) }),
        ...(o.mergeSizeBytes === undefined ? {} : { sizeBytes: o.mergeSizeBytes, partitionsMin: 1 }),
      },
      leaders: { transfersPerPlanMax: 0 },
      moves: { catchUpLagMax: 64 },
      split: {
        ...(o.splitSizeBytes === undefined ? {} : { sizeBytes: o.splitSizeBytes }),
        ...(o.splitQps === undefined ? {} : { qps: o.splitQps }),
      },
    });
    this.observer = this.newObserver();
    this.loop = this.newLoop();
    this.unexpectedExit = new Promise((r) => {
      this.onUnexpected = r;
    });
  }

  get dataDir(): string {
    return resolve(this.o.dataDir);
  }

  get control(): string {
    return this.controlAddress;
  }

  nodes(): readonly LocalNode[] {
    return [...this.procs.values()].sort((a, b) => byNodeNumber(a.nodeId, b.nodeId));
  }

  /** Starts the founders (and nodes added in an earlier run), the control loop and the endpoint. */
  async start(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    this.loadRecords();
    const live = this.records.filter((r) => !r.removed);
    const started = await Promise.allSettled(live.map((r) => this.startProcess(r)));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      await this.stop();
      throw (failed as PromiseRejectedResult).reason;
    }
    this.saveRecords();
    this.loop.start();
    await this.listen();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop.stop();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections();
    await Promise.all([...this.procs.values()].map((n) => n.stop()));
    this.admin.close();
  }

  /** Starts node-<next> with --join on free ports; the loop moves its ring share onto it. */
  async addNode(): Promise<{ id: string; grpc: string; http: string }> {
    const oc = await this.observer.observe();
    const draining = oc.observation.nodes.find((n) => n.state === 'draining');
    if (draining !== undefined || this.topologyBusy)
      throw new KeyVaError(
        'CONDITION_FAILED',
        `another topology change is under way (${draining ? `${draining.id} is draining` : 'a node is starting'}); one at a time`,
        {
          reason: 'WAITING_FOR_OPERATION',
        },
      );
    this.topologyBusy = true;
    try {
      const used = [...this.records.map((r) => r.id), ...oc.registry.map((n) => n.id)].map((id) => Number(/^node-(\d+)$/.exec(id)?.[1] ?? 0));
      const id = `node-${Math.max(0, ...used) + 1}`;
      const rec: NodeRecord = { id, grpcPort: await freePort(), httpPort: await freePort(), founder: false, removed: false };
      this.records.push(rec);
      this.saveRecords();
      let n: LocalNode;
      try {
        n = await this.startProcess(rec);
      } catch (e) {
        this.records.splice(this.records.indexOf(rec), 1);
        this.saveRecords();
        throw e;
      }
      this.loop.nudge();
      return { id, grpc: n.grpc, http: n.http };
    } finally {
      this.topologyBusy = false;
    }
  }

  /**
   * Starts draining `id` if that is safe now (else CONDITION_FAILED with the planner's refusal
   * code as `reason`); idempotent for a node already draining or removed.
   */
  async removeNode(id: string): Promise<{ id: string; state: string; changed: boolean }> {
    const oc = await this.observer.observe();
    const o = oc.observation;
    const n = o.nodes.find((x) => x.id === id);
    if (n === undefined)
      throw new KeyVaError('INVALID_ARGUMENT', `node ${id} is not in the node registry (${o.nodes.map((x) => x.id).join(', ')})`, { field: 'id' });
    if (n.state !== 'active') return { id, state: n.state, changed: false };
    const other = o.nodes.find((x) => x.state === 'draining');
    if (other !== undefined || this.topologyBusy)
      throw new KeyVaError('CONDITION_FAILED', `${other ? `${other.id} is still draining` : 'a node is starting'}: one topology change at a time`, {
        reason: 'WAITING_FOR_OPERATION',
      });
    const view = new ClusterView(this.spec, o, Date.now());
    const why = decommissionRefusal(view, n);
    if (why !== undefined) throw new KeyVaError('CONDITION_FAILED', why.message, { reason: why.code, nodeId: id });
    const changed = await this.executor.setNodeState(oc, nodeId(id), 'DRAINING', o.epoch);
    this.loop.nudge();
    return { id, state: 'draining', changed };
  }

  /** Drops the control loop object WITHOUT waiting for its calls (as a crash would) and starts a fresh one. */
  restartLoop(): void {
    void this.loop.stop();
    this.observer = this.newObserver();
    this.loop = this.newLoop();
    this.loop.start();
  }

  async status(): Promise<DevStatus> {
    const st = this.loop.status();
    const oc = this.loop.observed;
    const count = new Map<string, { partitions: number; learners: number; leaders: number }>();
    for (const p of oc?.observation.partitions ?? []) {
      for (const r of p.replicas) {
        const c = count.get(r.nodeId) ?? { partitions: 0, learners: 0, leaders: 0 };
        if (r.role === 'voter') c.partitions++;
        else c.learners++;
        if (p.leader === r.nodeId) c.leaders++;
        count.set(r.nodeId, c);
      }
    }
    const ids = [...new Set([...(oc?.registry.map((n) => n.id) ?? []), ...this.records.map((r) => r.id)])].sort(byNodeNumber);
    const nodes: DevNodeStatus[] = ids.map((id) => {
      const reg = oc?.registry.find((n) => n.id === id);
      const view = oc?.observation.nodes.find((n) => n.id === id);
      const proc = this.procs.get(id);
      const c = count.get(id) ?? { partitions: 0, learners: 0, leaders: 0 };
      return {
        id,
        state: reg?.state ?? (this.records.find((r) => r.id === id)?.removed ? 'removed' : 'joining'),
        health: view?.health ?? 'unknown',
        grpc: reg?.grpcAddress ?? proc?.grpc ?? '',
        http: reg?.httpAddress ?? proc?.http ?? '',
        process: proc ? 'running' : 'stopped',
        pid: proc?.process.pid,
        ...c,
        storageBytes: oc?.info.get(id)?.storageBytes,
      };
    });
    return {
      epoch: oc?.observation.epoch.toString(),
      replicationFactor: this.spec.replicationFactor,
      partitions: oc?.observation.partitions.length ?? 0,
      nodes,
      loop: st,
      control: this.controlAddress,
      meta: await this.metaGroup(nodes),
    };
  }

  /** The meta group's voters and leader, as the first running node hosting a meta replica sees them. */
  private async metaGroup(nodes: readonly DevNodeStatus[]): Promise<DevStatus['meta']> {
    for (const n of nodes.filter((x) => x.process === 'running' && x.grpc !== '')) {
      try {
        const r = await this.admin.call<{ hosted: boolean; voters: string[]; leader: string }>(
          n.grpc,
          'LocalReplica',
          { partitionId: 0, metaGroup: true },
          1000,
        );
        if (r.hosted) return { voters: [...r.voters].sort(byNodeNumber), leader: r.leader };
      } catch {
        // the next node
      }
    }
    return undefined;
  }

  // --- internals --------------------------------------------------------------------------------

  private newObserver(): Observer {
    return new Observer({
      admin: this.admin,
      seeds: () => [...this.procs.values()].map((n) => n.grpc),
      capacityOf: (id) => {
        // The space the node could use: what is free on its disk plus what it already stores.
        try {
          const s = statfsSync(join(this.dataDir, id));
          const free = Number(s.bavail) * Number(s.bsize);
          const stored = Number(this.loop?.observed?.info.get(id)?.storageBytes ?? 0);
          return { capacityBytes: free + stored, freeBytes: free };
        } catch {
          return undefined;
        }
      },
    });
  }

  private newLoop(): ControlLoop {
    return new ControlLoop({
      observer: this.observer,
      executor: this.executor,
      spec: () => this.spec,
      intervalMs: this.o.intervalMs,
      log: this.o.log,
      onObserved: (oc) => this.reapRemoved(oc),
      // LESSONS #10, at the operator's pace: an audit every 5 s took 15-25 % of a loaded
      // 2-core dev cluster's throughput (docs/benchmarks.md, "Background replica audits").
      auditor: new DigestAuditor({ admin: this.admin, log: this.o.log }),
    });
  }

  /** Stops the process of every node the registry says is removed (the data plane confirmed it empty). */
  private async reapRemoved(oc: ObservedCluster): Promise<void> {
    for (const n of oc.registry) {
      if (n.state !== 'removed') continue;
      const rec = this.records.find((r) => r.id === n.id);
      if (rec && !rec.removed) {
        rec.removed = true;
        this.saveRecords();
      }
      const proc = this.procs.get(n.id);
      if (proc === undefined) continue;
      this.procs.delete(n.id);
      this.o.log?.(`${n.id} is removed: stopping its process`);
      await proc.stop();
    }
  }

  private founderPeers(): string {
    return this.records
      .filter((r) => r.founder)
      .map((r) => `${r.id}=127.0.0.1:${r.grpcPort}`)
      .join(',');
  }

  private async startProcess(r: NodeRecord): Promise<LocalNode> {
    const rf = String(this.o.founders);
    const members = [
      ...this.records.filter((x) => x.id !== r.id && !x.removed && x.founder).map((x) => `${x.id}=127.0.0.1:${x.grpcPort}`),
      `${r.id}=127.0.0.1:${r.grpcPort}`,
    ].join(',');
    const extraArgs = r.founder
      ? ['--peers', this.founderPeers(), '--replication-factor', rf, ...(this.o.partitions ? ['--partitions', String(this.o.partitions)] : [])]
      : ['--peers', members, '--join', '--replication-factor', rf];
    const n = await startLocalNode({
      dataDir: join(this.dataDir, r.id),
      engine: this.o.memory ? 'memory' : 'rocksdb',
      grpcPort: r.grpcPort,
      httpPort: r.httpPort,
      nodeId: r.id,
      extraArgs,
    });
    this.procs.set(r.id, n);
    void n.exited.then((code) => {
      if (this.stopping || this.procs.get(r.id) !== n) return;
      this.procs.delete(r.id);
      this.onUnexpected({ id: r.id, code, log: n.logFile });
    });
    return n;
  }

  private loadRecords(): void {
    this.records.length = 0;
    try {
      const saved = JSON.parse(readFileSync(join(this.dataDir, CLUSTER_FILE), 'utf8')) as { founders: number; nodes: NodeRecord[] };
      if (saved.founders === this.o.founders && !this.o.memory) {
        for (const r of saved.nodes) this.records.push({ ...r });
      }
    } catch {
      // first start
    }
    for (let i = 0; i < this.o.founders; i++) {
      const id = `node-${i + 1}`;
      const ports = { grpcPort: this.o.grpcPort + 10 * i, httpPort: this.o.httpPort + 10 * i };
      const had = this.records.find((r) => r.id === id);
      if (had) Object.assign(had, ports);
      else this.records.push({ id, ...ports, founder: true, removed: false });
    }
    this.records.sort((a, b) => byNodeNumber(a.id, b.id));
  }

  private saveRecords(): void {
    writeFileSync(join(this.dataDir, CLUSTER_FILE), `${JSON.stringify({ founders: this.o.founders, nodes: this.records }, null, 2)}\n`);
  }

  private async listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => send(res, 500, { code: 'INTERNAL', message: (e as Error).message }));
    });
    this.server = server;
    await new Promise<void>((r, j) => {
      server.once('error', j);
      server.listen(this.o.controlPort ?? 0, '127.0.0.1', () => r());
    });
    const a = server.address();
    this.controlAddress = a && typeof a === 'object' ? `127.0.0.1:${a.port}` : '';
    writeFileSync(join(this.dataDir, CONTROL_FILE), `${JSON.stringify({ control: this.controlAddress, pid: process.pid })}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    const fail = (e: unknown) => {
      if (e instanceof KeyVaError) send(res, e.code === 'INVALID_ARGUMENT' ? 404 : 409, e.toJSON());
      else send(res, 500, { code: 'INTERNAL', message: (e as Error).message });
    };
    try {
      if (route === 'GET /v1/status') return send(res, 200, await this.status());
      if (route === 'POST /v1/nodes') return send(res, 200, await this.addNode());
      const m = /^\/v1\/nodes\/([a-z0-9-]+)$/.exec(url.pathname);
      if (req.method === 'DELETE' && m) return send(res, 202, await this.removeNode(m[1] as string));
      if (route === 'POST /v1/loop/restart') {
        this.restartLoop();
        return send(res, 200, { restarted: true });
      }
      send(res, 404, { code: 'ROUTE_NOT_FOUND', message: `no route ${route}` });
    } catch (e) {
      fail(e);
    }
  }
}

/** node-2 before node-10. */
function byNodeNumber(a: string, b: string): number {
  const n = (s: string) => Number(/^node-(\d+)$/.exec(s)?.[1] ?? Number.MAX_SAFE_INTEGER);
  return n(a) - n(b) || (a < b ? -1 : a > b ? 1 : 0);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, { 'content-type': 'application/json' }).end(text);
}
