/**
 * The KeyVaCluster controller: informers (always running, so a standby has warm caches) that
 * only enqueue `namespace/name` keys; workers (only while this replica holds the Lease) that read
 * the LATEST cached cluster, observe, run the pure core, and execute its actions.
 */
import type { Logger } from 'pino';
import { LABELS, MANAGED_BY } from '../api/constants.ts';
import type { KeyVaCluster } from '../api/keyva-cluster.ts';
import { Expectations } from '../controller/expectations.ts';
import { AsyncWorkQueue } from '../controller/queue-driver.ts';
import { GrpcAdminCaller } from '../dataplane/admin-client.ts';
import type { NodeProbe } from '../dataplane/node-probe.ts';
import { reconcile } from '../reconcile/reconcile.ts';
import { DataPlaneLoops, seedOf } from './data-plane-loops.ts';
import type { EventRecorder } from './event-recorder.ts';
import { Executor, NotLeaderError, StaleViewError } from './executor.ts';
import { type InformerEvent, SupervisedInformer } from './informer.ts';
import type { KubeClient, KubeObject } from './kube-client.ts';
import { NodeLabels } from './node-labels.ts';
import { Observer } from './observer.ts';
import { QuorumRecoveryGate } from './quorum-recovery.ts';
import { RESOURCES, type ResourceType } from './resources.ts';

export interface ControllerOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly probe: NodeProbe;
  /** '' = all namespaces. */
  readonly watchNamespace: string;
  readonly workers: number;
  readonly isLeader: () => boolean;
  readonly now: () => number;
  readonly probeTtlMs?: number;
  readonly mapTtlMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Placement control loop interval (ms); default the loop's own. */
  readonly placementIntervalMs?: number;
  /** How long a rolling upgrade waits for a member's leaderships to move away (ms). */
  readonly leaderTransferTimeoutMs?: number;
  /** How long a Raft group may stay without a leader before status says Degraded=QuorumLost (ms; default 60 s). */
  readonly quorumLossGraceMs?: number;
}

export interface ControllerStats {
  reconciles: number;
  errors: number;
  writes: number;
}

const CHILD_KINDS = [RESOURCES.ConfigMap, RESOURCES.Service, RESOURCES.PodDisruptionBudget] as const;

export class Controller {
  private readonly o: ControllerOptions;
  private readonly log: Logger;
  readonly clusters: SupervisedInformer<KubeObject>;
  private readonly pods: SupervisedInformer<KubeObject>;
  private readonly pvcs: SupervisedInformer<KubeObject>;
  private readonly children: SupervisedInformer<KubeObject>[];
  private readonly expectations: Expectations;
  private readonly observer: Observer;
  private readonly executor: Executor;
  private readonly recovery: QuorumRecoveryGate;
  private readonly lastErrors = new Map<string, string>();
  private queue: AsyncWorkQueue | undefined;
  readonly loops: DataPlaneLoops;
  readonly stats: ControllerStats = { reconciles: 0, errors: 0, writes: 0 };

  constructor(o: ControllerOptions) {
    this.o = o;
    this.log = o.log;
    this.expectations = new Expectations(o.now);
    const childSelector = `${LABELS.managedBy}=${MANAGED_BY}`;
    const nodeLabels = new NodeLabels({ client: o.client, log: o.log, now: o.now });
    const mk = (resource: ResourceType, labelSelector: string | undefined, onEvent: (e: InformerEvent, obj: KubeObject) => void) =>
      new SupervisedInformer<KubeObject>({ client: o.client, resource, namespace: o.watchNamespace, labelSelector, log: o.log, onEvent });
    this.clusters = mk(RESOURCES.KeyVaCluster, undefined, (e, obj) => this.onCluster(e, obj));
    const onChild = (kind: string) => (e: InformerEvent, obj: KubeObject) => this.onChild(kind, e, obj);
    this.pods = mk(RESOURCES.Pod, childSelector, onChild('Pod'));
    this.pvcs = mk(RESOURCES.PersistentVolumeClaim, childSelector, onChild('PersistentVolumeClaim'));
    this.children = CHILD_KINDS.map((r) => mk(r, childSelector, onChild(r.kind)));
    this.observer = new Observer(
      { pods: this.pods, pvcs: this.pvcs, children: CHILD_KINDS.map((r, i) => ({ kind: r.kind, list: (ns?: string) => this.children[i]?.list(ns) ?? [] })) },
      {
        probe: o.probe,
        probeTtlMs: o.probeTtlMs ?? 3000,
        mapTtlMs: o.mapTtlMs ?? 15_000,
        now: o.now,
        nodeLabels: (name) => nodeLabels.of(name),
      },
    );
    this.loops = new DataPlaneLoops({ log: o.log, onChange: (key) => this.queue?.add(key), intervalMs: o.placementIntervalMs, now: o.now });
    this.executor = new Executor({
      client: o.client,
      events: o.events,
      expectations: this.expectations,
      log: o.log,
      isLeader: o.isLeader,
      transferLeadersAway: (key, member) => this.loops.transferLeadersAway(key, member, o.leaderTransferTimeoutMs ?? 20_000),
    });
    this.recovery = new QuorumRecoveryGate({ client: o.client, events: o.events, admin: new GrpcAdminCaller(), log: o.log, now: o.now });
  }

  private informers(): SupervisedInformer<KubeObject>[] {
    return [this.clusters, this.pods, this.pvcs, ...this.children];
  }

  /** Starts the informers (idempotent). Leaders and standbys both keep warm caches. */
  async startInformers(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.start()));
  }

  get synced(): boolean {
    return this.informers().every((i) => i.hasSynced);
  }

  async stopInformers(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  // Informer callbacks: synchronous, enqueue only (client-node drops returned promises).
  private onCluster(_e: InformerEvent, obj: KubeObject): void {
    const m = obj.metadata;
    if (!m?.name || !m.namespace) return;
    this.expectations.observe('KeyVaCluster', m.namespace, m.name, m, _e === 'delete');
    this.queue?.add(`${m.namespace}/${m.name}`);
  }

  private onChild(kind: string, e: InformerEvent, obj: KubeObject): void {
    const m = obj.metadata;
    if (!m?.name || !m.namespace) return;
    this.expectations.observe(kind, m.namespace, m.name, m, e === 'delete');
    const cluster = m.labels?.[LABELS.cluster];
    if (cluster) this.queue?.add(`${m.namespace}/${cluster}`);
  }

  /** Runs workers until `signal` aborts (the Lease is lost or the process stops). */
  async runWorkers(signal: AbortSignal): Promise<void> {
    const queue = new AsyncWorkQueue({ now: this.o.now }, { backoffBaseMs: this.o.backoffBaseMs ?? 500, backoffMaxMs: this.o.backoffMaxMs ?? 60_000 });
    this.queue = queue;
    signal.addEventListener('abort', () => queue.shutDown(), { once: true });
    // Wait for the caches: acting on a partial view could look like "no members".
    for (let i = 1; !this.synced && !signal.aborted; i++) {
      if (i % 100 === 0) this.log.warn('informer caches still not synced; not acting yet (check RBAC and the API server)');
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const c of this.clusters.list()) if (c.metadata?.name && c.metadata.namespace) queue.add(`${c.metadata.namespace}/${c.metadata.name}`);
    this.log.info({ clusters: this.clusters.list().length, workers: this.o.workers }, 'workers started');
    const worker = async () => {
      for (;;) {
        const key = await queue.next(signal);
        if (key === undefined) return;
        try {
          await this.process(queue, key);
        } finally {
          queue.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.o.workers) }, worker));
    // Placement loops run only while this replica leads.
    await this.loops.stopAll();
    if (this.queue === queue) this.queue = undefined;
    this.log.info('workers stopped');
  }

  private async process(queue: AsyncWorkQueue, key: string): Promise<void> {
    const [ns, name] = key.split('/') as [string, string];
    const cached = this.clusters.get(name, ns) as KeyVaCluster | undefined;
    if (!cached) {
      this.expectations.forget(key);
      this.lastErrors.delete(key);
      await this.loops.stop(key);
      return;
    }
    const lookup = (r: { kind: string; namespace: string; name: string }) => this.cachedMeta(r.kind, r.namespace, r.name);
    if (!this.expectations.settled(key, lookup)) {
      this.log.debug({ cluster: key, pending: this.expectations.pending(key) }, 'waiting for the caches to show our writes');
      queue.addAfter(key, 1000); // the informer event that settles it will add the key sooner
      return;
    }
    this.stats.reconciles++;
    try {
      const observed = { ...(await this.observer.observe(cached, this.lastErrors.get(key))), dataPlane: this.loops.view(key) };
      const result = reconcile(cached, observed, this.o.now(), { quorumLossGraceMs: this.o.quorumLossGraceMs });
      this.stats.writes += await this.executor.execute(key, cached, result);
      const seeds = observed.pods.filter((p) => p.podIP && !p.deleting).map((p) => seedOf(p.podIP as string));
      if (result.placement && !cached.metadata.deletionTimestamp && seeds.length > 0 && this.o.isLeader()) this.loops.ensure(key, seeds, result.placement);
      else if (!result.placement || cached.metadata.deletionTimestamp) await this.loops.stop(key);
      // Unsafe quorum-loss recovery, only with the approval annotation (quorum-recovery.ts).
      if (this.o.isLeader() && !cached.metadata.deletionTimestamp) await this.recovery.run(cached, seeds);
      this.lastErrors.delete(key);
      queue.forget(key);
      if (result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
    } catch (e) {
      if (e instanceof NotLeaderError) return;
      const delay = queue.addRateLimited(key);
      if (e instanceof StaleViewError) {
        this.log.debug({ cluster: key, err: e.message, retryInMs: delay }, 'stale view; retrying');
        return;
      }
      this.stats.errors++;
      this.lastErrors.set(key, (e as Error).message);
      this.log.warn({ cluster: key, err: (e as Error).message, retryInMs: delay }, 'reconcile failed');
    }
  }

  private cachedMeta(kind: string, namespace: string, name: string): KubeObject['metadata'] | undefined {
    const inf =
      kind === 'KeyVaCluster'
        ? this.clusters
        : kind === 'Pod'
          ? this.pods
          : kind === 'PersistentVolumeClaim'
            ? this.pvcs
            : this.children[CHILD_KINDS.findIndex((r) => r.kind === kind)];
    return inf?.get(name, namespace)?.metadata;
  }
}
