/**
 * The partition map of a node that holds no meta replica (it joined with --join): fetched from
 * the members it knows (`GetPartitionMap`, linearizable) every `intervalMs` and handed to `apply`
 * (the node's routing table keeps newer epochs only). Stops with `stop`.
 */
import { HASH_SPACE_END, type NodeAddressInfo, type NodeId, type PartitionId, type PartitionInfo, PartitionMap } from '@keyva/client/keyspace';
import type { GetPartitionMapResponseOut } from '@keyva/proto';
import type { Logger } from '../observability/logger.ts';
import type { PeerAdmin } from './peer-admin.ts';

export const MAP_FOLLOW_INTERVAL_MS = 1000;

/** The keyspace map of a GetPartitionMap answer (end 0 = 2^64, empty leader hint = none). */
export function partitionMapFromWire(res: GetPartitionMapResponseOut): PartitionMap | undefined {
  const m = res.map;
  if (m === null) return undefined;
  const partitions: PartitionInfo[] = m.partitions.map((p) => ({
    id: p.id as PartitionId,
    start: BigInt(p.start),
    end: BigInt(p.end) === 0n ? HASH_SPACE_END : BigInt(p.end),
    generation: BigInt(p.generation),
    replicas: p.replicas as NodeId[],
    leaderHint: p.leaderHint === '' ? undefined : (p.leaderHint as NodeId),
  }));
  const nodes: NodeAddressInfo[] = m.nodes.map((n) => ({
    id: n.id as NodeId,
    grpcAddress: n.grpcAddress,
    httpAddress: n.httpAddress,
    ...(n.incarnation === '' ? {} : { incarnation: n.incarnation }),
  }));
  return new PartitionMap(BigInt(m.epoch), partitions, nodes);
}

export interface MapFollowerOptions {
  readonly peers: PeerAdmin;
  /** Addresses to ask, in order (the first that answers wins). */
  readonly addresses: () => readonly string[];
  readonly apply: (map: PartitionMap) => void;
  /** Whether to follow now (e.g. not while this node holds a meta replica of its own); always when omitted. */
  readonly active?: () => boolean;
  readonly intervalMs?: number;
  readonly log?: Logger;
}

export class MapFollower {
  private readonly o: MapFollowerOptions;
  private timer: ReturnType<typeof setInterval> | undefined;
  private busy = false;

  constructor(o: MapFollowerOptions) {
    this.o = o;
  }

  start(): void {
    if (this.timer !== undefined) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.o.intervalMs ?? MAP_FOLLOW_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** One fetch; true if some member answered. */
  async refresh(): Promise<boolean> {
    if (this.busy || this.o.active?.() === false) return false;
    this.busy = true;
    try {
      for (const address of this.o.addresses()) {
        try {
          const res = await this.o.peers.call<object, GetPartitionMapResponseOut>(address, 'GetPartitionMap', { linearizable: true }, 2000);
          const map = partitionMapFromWire(res);
          if (map === undefined || map.epoch === 0n) continue;
          this.o.apply(map);
          return true;
        } catch (e) {
          this.o.log?.debug({ err: e, address }, 'partition map not fetched');
        }
      }
      return false;
    } finally {
      this.busy = false;
    }
  }
}
