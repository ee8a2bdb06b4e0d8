/**
 * Builds the core's `Observed` for one cluster from the informer caches, plus fresh answers from
 * the data plane (each ready member's node process, dialled on its pod IP).
 */
import { randomInt } from 'node:crypto';
import { ANNOTATIONS, LABELS, NODE_HTTP_PORT } from '../api/constants.ts';
import { type KeyVaCluster, specWithDefaults } from '../api/keyva-cluster.ts';
import type { NodeProbe } from '../dataplane/node-probe.ts';
import { ID_ALPHABET, ID_SUFFIX_LENGTH } from '../reconcile/names.ts';
import type { ChildView, MemberProbe, Observed, PartitionMapView, PodView, PvcView, RemovedPvcView } from '../reconcile/types.ts';
import type { KubeObject } from './kube-client.ts';

export interface Caches {
  readonly pods: { list(ns?: string): readonly KubeObject[] };
  readonly pvcs: { list(ns?: string): readonly KubeObject[] };
  readonly children: readonly { readonly kind: string; list(ns?: string): readonly KubeObject[] }[];
}

interface PodLike extends KubeObject {
  spec?: { nodeName?: string; containers?: { image?: string; ports?: { name?: string; containerPort?: number }[] }[] };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export interface ObserverOptions {
  readonly probe: NodeProbe;
  /** Reuse a member's answer for this long (ms). */
  readonly probeTtlMs: number;
  readonly mapTtlMs: number;
  readonly now: () => number;
  /** Labels of a Kubernetes node (for member zones); absent: zones unknown. */
  readonly nodeLabels?: ((nodeName: string) => Promise<Readonly<Record<string, string>> | undefined>) | undefined;
}

function ofCluster(objs: readonly KubeObject[], cluster: KeyVaCluster): KubeObject[] {
  return objs.filter((o) => o.metadata?.labels?.[LABELS.cluster] === cluster.metadata.name);
}

function httpPortOf(p: PodLike): number {
  const port = p.spec?.containers?.[0]?.ports?.find((x) => x.name === 'http')?.containerPort;
  return port ?? NODE_HTTP_PORT;
}

export function podView(p: PodLike): PodView | undefined {
  const memberId = p.metadata?.labels?.[LABELS.member];
  if (!memberId || !p.metadata?.name || !p.metadata.uid) return undefined;
  return {
    name: p.metadata.name,
    uid: p.metadata.uid,
    memberId,
    phase: p.status?.phase ?? 'Pending',
    ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    podIP: p.status?.podIP,
    image: p.spec?.containers?.[0]?.image,
    specHash: p.metadata.annotations?.[ANNOTATIONS.specHash],
    deleting: Boolean(p.metadata.deletionTimestamp),
  };
}

export function pvcView(v: KubeObject, clusterUid: string): PvcView | undefined {
  const memberId = v.metadata?.labels?.[LABELS.member];
  if (!memberId || !v.metadata?.name || !v.metadata.uid) return undefined;
  return {
    name: v.metadata.name,
    uid: v.metadata.uid,
    memberId,
    deleting: Boolean(v.metadata.deletionTimestamp),
    ownedByCluster: (v.metadata.ownerReferences ?? []).some((r) => r.uid === clusterUid),
    specHash: v.metadata.annotations?.[ANNOTATIONS.specHash],
    creationTimestamp: v.metadata.creationTimestamp,
  };
}

export function removedPvcView(v: KubeObject, clusterUid: string): RemovedPvcView | undefined {
  const memberId = v.metadata?.labels?.[LABELS.removedMember];
  if (!memberId || v.metadata?.labels?.[LABELS.member] || !v.metadata?.name || !v.metadata.uid) return undefined;
  return {
    name: v.metadata.name,
    uid: v.metadata.uid,
    memberId,
    deleting: Boolean(v.metadata.deletionTimestamp),
    ownedByCluster: (v.metadata.ownerReferences ?? []).some((r) => r.uid === clusterUid),
    removedAt: v.metadata.annotations?.[ANNOTATIONS.removedAt],
  };
}

export class Observer {
  private readonly o: ObserverOptions;
  private readonly caches: Caches;
  private readonly probeCache = new Map<string, { at: number; probe: MemberProbe }>();
  private readonly mapCache = new Map<string, { at: number; map: PartitionMapView }>();

  constructor(caches: Caches, o: ObserverOptions) {
    this.caches = caches;
    this.o = o;
  }

  async observe(cluster: KeyVaCluster, lastError: string | undefined): Promise<Observed> {
    const ns = cluster.metadata.namespace;
    const rawPods = ofCluster(this.caches.pods.list(ns), cluster) as PodLike[];
    const pods = rawPods.map(podView).filter((x): x is PodView => x !== undefined);
    const clusterPvcs = ofCluster(this.caches.pvcs.list(ns), cluster);
    const pvcs = clusterPvcs.map((v) => pvcView(v, cluster.metadata.uid)).filter((x): x is PvcView => x !== undefined);
    const removedPvcs = clusterPvcs.map((v) => removedPvcView(v, cluster.metadata.uid)).filter((x): x is RemovedPvcView => x !== undefined);
    const children: ChildView[] = this.caches.children.flatMap((c) =>
      ofCluster(c.list(ns), cluster).map((o) => ({
        kind: c.kind,
        name: o.metadata?.name ?? '',
        uid: o.metadata?.uid ?? '',
        specHash: o.metadata?.annotations?.[ANNOTATIONS.specHash],
        deleting: Boolean(o.metadata?.deletionTimestamp),
      })),
    );
    const live = rawPods.filter((p) => {
      const v = podView(p);
      return v?.ready && v.podIP && !v.deleting;
    });
    const probes = await Promise.all(live.map((p) => this.probeMember(p)));
    const source = probes.find((p) => p.reachable && p.nodeId === p.memberId);
    const sourcePod = source && live.find((p) => podView(p)?.memberId === source.memberId);
    const partitionMap = sourcePod ? await this.partitionMap(cluster, sourcePod, source.memberId) : undefined;
    const memberZones = await this.memberZones(cluster, rawPods);
    return { pods, pvcs, removedPvcs, children, probes, partitionMap, memberZones, freshSuffixes: freshSuffixes(8), lastError };
  }

  /** Each scheduled member's zone: its node's `spec.topology.zoneKey` label. */
  private async memberZones(cluster: KeyVaCluster, pods: readonly PodLike[]): Promise<Record<string, string>> {
    const zones: Record<string, string> = {};
    const lookup = this.o.nodeLabels;
    if (lookup === undefined) return zones;
    const zoneKey = specWithDefaults(cluster.spec).topology.zoneKey;
    await Promise.all(
      pods.map(async (p) => {
        const member = podView(p)?.memberId;
        const node = p.spec?.nodeName;
        if (!member || !node) return;
        const zone = (await lookup(node))?.[zoneKey];
        if (zone) zones[member] = zone;
      }),
    );
    return zones;
  }

  private async probeMember(p: PodLike): Promise<MemberProbe> {
    const v = podView(p) as PodView;
    const cacheKey = `${v.uid}@${v.podIP}`;
    const hit = this.probeCache.get(cacheKey);
    if (hit && this.o.now() - hit.at < this.o.probeTtlMs) return hit.probe;
    let probe: MemberProbe;
    try {
      const info = await this.o.probe.nodeInfo(v.podIP as string, httpPortOf(p));
      probe = { memberId: v.memberId, reachable: true, nodeId: info.nodeId, partitionsHosted: info.partitions };
    } catch (e) {
      probe = { memberId: v.memberId, reachable: false, error: (e as Error).message };
    }
    this.probeCache.set(cacheKey, { at: this.o.now(), probe });
    if (this.probeCache.size > 4096) this.probeCache.delete(this.probeCache.keys().next().value as string);
    return probe;
  }

  private async partitionMap(cluster: KeyVaCluster, p: PodLike, memberId: string): Promise<PartitionMapView | undefined> {
    const key = cluster.metadata.uid;
    const hit = this.mapCache.get(key);
    if (hit && hit.map.source === memberId && this.o.now() - hit.at < this.o.mapTtlMs) return hit.map;
    try {
      const m = await this.o.probe.partitionMap(podView(p)?.podIP as string, httpPortOf(p));
      const map: PartitionMapView = { source: memberId, epoch: m.epoch, partitions: m.partitions };
      this.mapCache.set(key, { at: this.o.now(), map });
      if (this.mapCache.size > 1024) this.mapCache.delete(this.mapCache.keys().next().value as string);
      return map;
    } catch {
      return undefined;
    }
  }

  forget(cluster: KeyVaCluster): void {
    this.mapCache.delete(cluster.metadata.uid);
  }
}

/** Random member-id suffixes (the only randomness the core sees). */
export function freshSuffixes(n: number): string[] {
  return Array.from({ length: n }, () => Array.from({ length: ID_SUFFIX_LENGTH }, () => ID_ALPHABET[randomInt(ID_ALPHABET.length)]).join(''));
}
