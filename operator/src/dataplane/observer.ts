/**
 * Builds the placement planner's Observation from the nodes' Admin API (the I/O half of
 * placement; the planner itself is pure):
 *  - the partition map and the node registry from any member that answers (`GetPartitionMap`,
 *    linearizable, so the map includes every change acknowledged before);
 *  - each node's own answer about itself (`Health`, `NodeInfo`: its durable id), and for a node
 *    that is draining, how many partition replicas it really hosts (`LocalReplica` per partition:
 *    the data plane's word, not the map's);
 *  - per partition, the leader's view of the group (voters, learners, match indexes, commit
 *    index): one `ListPartitionReplicas` per node the map names as a leader, for all the
 *    partitions it leads; those it left out (a leader changed, an older node, a node down) are
 *    asked one by one (`GetPartitionReplicas` at the map's leader hint, following NOT_LEADER).
 * What did not answer is left unknown (no leader, health `down`), never guessed.
 */
import type {
  GetPartitionMapResponseOut,
  HealthResponseOut,
  ListPartitionReplicasResponseOut,
  LocalReplicaResponseOut,
  NodeInfoResponseOut,
  PartitionReplicasResponseOut,
} from '@keyva/proto';
import { HASH_SPACE_END } from '../placement/cluster-view.ts';
import {
  type NodeHealth,
  type NodeState,
  type NodeView,
  nodeId,
  type Observation,
  type PartitionView,
  partitionId,
  type ReplicaView,
} from '../placement/types.ts';
import type { AdminCaller } from './admin-client.ts';

export interface ObserverOptions {
  readonly admin: AdminCaller;
  /** gRPC addresses to ask for the map first (seeds); the registry's addresses are added as learnt. */
  readonly seeds: () => readonly string[];
  /** Capacity and free bytes of a node's disk, if known (default: 1 TiB, minus what it stores). */
  readonly capacityOf?: (id: string) => { capacityBytes: number; freeBytes: number } | undefined;
  /** Failure zone of a node, if the platform knows it (Kubernetes: its node's zone label). */
  readonly zoneOf?: (id: string) => string | undefined;
  readonly now?: () => number;
  readonly deadlineMs?: number;
}

export interface RegistryEntry {
  readonly id: string;
  readonly grpcAddress: string;
  readonly httpAddress: string;
  readonly state: NodeState;
}

export interface ObservedCluster {
  readonly observation: Observation;
  /** The map as the meta group has it: replicas per partition (routing truth). */
  readonly mapReplicas: ReadonlyMap<number, readonly string[]>;
  readonly registry: readonly RegistryEntry[];
  /** Partitions whose leader reports a membership change still being applied. */
  readonly confChangePending: ReadonlySet<number>;
  /** Node info of the nodes that answered. */
  readonly info: ReadonlyMap<string, NodeInfoResponseOut>;
  /** gRPC address that answered the map question. */
  readonly mapSource: string;
  readonly atMs: number;
}

const TiB = 1024 ** 4;
/** Partition ids per `ListPartitionReplicas` call. */
export const LIST_REPLICAS_BATCH = 1000;
const STATE: Record<string, NodeState> = { ACTIVE: 'active', DRAINING: 'draining', REMOVED: 'removed' };

export class Observer {
  private readonly o: ObserverOptions;
  /** When each node was first seen down (reset when it answers again). */
  private readonly downSince = new Map<string, number>();
  private known: string[] = [];

  constructor(o: ObserverOptions) {
    this.o = o;
  }

  async observe(): Promise<ObservedCluster> {
    const now = (this.o.now ?? Date.now)();
    const dl = this.o.deadlineMs ?? 2000;
    const { map, source } = await this.fetchMap(dl);
    const m = map.map;
    if (m === null) throw new Error(`${source} answered GetPartitionMap without a map`);
    const registry: RegistryEntry[] = m.nodes.map((n) => ({
      id: n.id,
      grpcAddress: n.grpcAddress,
      httpAddress: n.httpAddress,
      state: STATE[n.state] ?? 'active',
    }));
    this.known = registry.filter((n) => n.state !== 'removed' && n.grpcAddress !== '').map((n) => n.grpcAddress);
    const addressOf = (id: string) => registry.find((n) => n.id === id)?.grpcAddress || undefined;
    const ids = m.partitions.map((p) => p.id);
    // Every id ever used (merged-away groups may linger on a node): 0 .. the highest.
    const allIds = Array.from({ length: ids.length === 0 ? 0 : Math.max(...ids) + 1 }, (_, i) => i);

    // Nodes: their own answer (health, identity); a draining node also counts the replicas it hosts.
    const info = new Map<string, NodeInfoResponseOut>();
    const nodes: NodeView[] = await Promise.all(
      registry.map(async (n): Promise<NodeView> => {
        let health: NodeHealth = 'unknown';
        let report: NodeView['report'];
        let stored = 0;
        if (n.state !== 'removed' && n.grpcAddress !== '') {
          try {
            const [h, i] = await Promise.all([
              this.o.admin.call<HealthResponseOut>(n.grpcAddress, 'Health', {}, dl),
              this.o.admin.call<NodeInfoResponseOut>(n.grpcAddress, 'NodeInfo', {}, dl),
            ]);
            info.set(n.id, i);
            stored = Number(i.storageBytes);
            health = h.status === 'SERVING' ? 'up' : 'degraded';
            const hosted = n.state === 'draining' ? await this.countHosted(n.grpcAddress, allIds, dl) : i.partitions;
            report = { nodeId: nodeId(i.nodeId), replicasHosted: hosted };
          } catch {
            health = 'down';
            report = undefined;
          }
        }
        if (health === 'up' || health === 'degraded') this.downSince.delete(n.id);
        else if (!this.downSince.has(n.id)) this.downSince.set(n.id, now);
        const cap = this.o.capacityOf?.(n.id) ?? { capacityBytes: TiB, freeBytes: TiB - stored };
        return {
          id: nodeId(n.id),
          zone: this.o.zoneOf?.(n.id),
          weight: 1,
          health,
          downSinceMs: health === 'up' || health === 'degraded' ? undefined : this.downSince.get(n.id),
          state: n.state,
          capacityBytes: cap.capacityBytes,
          freeBytes: cap.freeBytes,
          report,
        };
      }),
    );

    // Partitions: the leader's view of each group, from its leader's batch answer if it gave one.
    const views = await this.leaderViews(m.partitions, addressOf, dl);
    const pending = new Set<number>();
    const mapReplicas = new Map<number, readonly string[]>();
    const partitions: PartitionView[] = await Promise.all(
      m.partitions.map(async (p): Promise<PartitionView> => {
        mapReplicas.set(p.id, p.replicas);
        const base = {
          id: partitionId(p.id),
          start: BigInt(p.start),
          end: BigInt(p.end) === 0n ? HASH_SPACE_END : BigInt(p.end),
          generation: BigInt(p.generation),
          sizeBytes: 0,
          qps: 0,
        };
        const r = views.get(p.id) ?? (await this.replicasOf(p.id, [p.leaderHint, ...p.replicas], addressOf, dl));
        if (r === undefined) {
          // Nobody leads (or answered): the map's replicas, nothing known about their progress.
          return { ...base, replicas: p.replicas.map((id) => ({ nodeId: nodeId(id), role: 'voter', matchIndex: 0 })), commitIndex: 0 };
        }
        if (r.confChangePending) pending.add(p.id);
        const replicas: ReplicaView[] = r.replicas.map((x) => ({
          nodeId: nodeId(x.nodeId),
          role: x.role === 'LEARNER' ? 'learner' : 'voter',
          matchIndex: Number(x.matchIndex),
        }));
        // The leader's measure of the partition's live data (0 from nodes that do not report it).
        const splitHint = BigInt(r.splitHint ?? '0');
        return {
          ...base,
          sizeBytes: Number(r.sizeBytes ?? '0'),
          qps: r.qps ?? 0,
          splitHint: splitHint > base.start && splitHint < base.end ? splitHint : undefined,
          replicas,
          leader: r.leader === '' ? undefined : nodeId(r.leader),
          commitIndex: Number(r.commitIndex),
        };
      }),
    );
    const nextPartitionId = ids.length === 0 ? 0 : Math.max(...ids) + 1;
    return {
      observation: { epoch: BigInt(m.epoch), partitions, nodes, nextPartitionId },
      mapReplicas,
      registry,
      confChangePending: pending,
      info,
      mapSource: source,
      atMs: now,
    };
  }

  /** The addresses this observer would ask (seeds, then the registry's). */
  addresses(): string[] {
    return [...new Set([...this.o.seeds(), ...this.known])];
  }

  private async fetchMap(dl: number): Promise<{ map: GetPartitionMapResponseOut; source: string }> {
    const errors: string[] = [];
    for (const a of this.addresses()) {
      try {
        return { map: await this.o.admin.call<GetPartitionMapResponseOut>(a, 'GetPartitionMap', { linearizable: true }, dl), source: a };
      } catch (e) {
        errors.push(`${a}: ${(e as Error).message}`);
      }
    }
    throw new Error(`no node answered GetPartitionMap (${errors.join('; ') || 'no address known'})`);
  }

  /** The views that the nodes the map names as leaders give of their partitions (one call per node and batch). */
  private async leaderViews(
    partitions: readonly { id: number; leaderHint: string }[],
    addressOf: (id: string) => string | undefined,
    dl: number,
  ): Promise<Map<number, PartitionReplicasResponseOut>> {
    const byAddress = new Map<string, number[]>();
    for (const p of partitions) {
      const a = p.leaderHint === '' ? undefined : addressOf(p.leaderHint);
      if (a === undefined) continue;
      const ids = byAddress.get(a);
      if (ids === undefined) byAddress.set(a, [p.id]);
      else ids.push(p.id);
    }
    const out = new Map<number, PartitionReplicasResponseOut>();
    const calls: Promise<void>[] = [];
    for (const [a, ids] of byAddress) {
      for (let i = 0; i < ids.length; i += LIST_REPLICAS_BATCH) {
        const req = { partitionIds: ids.slice(i, i + LIST_REPLICAS_BATCH) };
        calls.push(
          this.o.admin.call<ListPartitionReplicasResponseOut>(a, 'ListPartitionReplicas', req, dl).then(
            (r) => {
              for (const v of r.partitions) out.set(v.partitionId, v);
            },
            () => {
              // An older node, or one down: its partitions are asked one by one.
            },
          ),
        );
      }
    }
    await Promise.all(calls);
    return out;
  }

  private async replicasOf(
    id: number,
    candidates: readonly string[],
    addressOf: (id: string) => string | undefined,
    dl: number,
  ): Promise<PartitionReplicasResponseOut | undefined> {
    const tried = new Set<string>();
    for (const c of candidates) {
      const a = c === '' ? undefined : addressOf(c);
      if (a === undefined || tried.has(a)) continue;
      tried.add(a);
      try {
        // The leader's view only: the planner uses match indexes, not the replicas' applied indexes,
        // so no node asks each replica (3 calls per partition per pass at RF 3 before).
        return await this.o.admin.callLeader<PartitionReplicasResponseOut>(a, 'GetPartitionReplicas', { partitionId: id, leaderViewOnly: true }, addressOf, dl);
      } catch {
        // next candidate
      }
    }
    return undefined;
  }

  /**
   * How many of these partitions the node itself says it hosts (its own Raft groups), plus one
   * while it still holds a meta group replica: a draining node is empty only once the meta
   * leader moved its meta vote to an active node too (node/src/meta/meta-voters-plan.ts).
   */
  private async countHosted(address: string, ids: readonly number[], dl: number): Promise<number> {
    const asks = [...ids.map((id) => ({ partitionId: id })), { partitionId: 0, metaGroup: true }];
    const answers = await Promise.all(asks.map((req) => this.o.admin.call<LocalReplicaResponseOut>(address, 'LocalReplica', req, dl)));
    return answers.filter((a) => a.hosted).length;
  }
}
