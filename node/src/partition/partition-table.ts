/**
 * The partitions this node hosts and the routing of a key hash to one of them (DESIGN §3).
 * The map follows the node's meta state (`node/src/meta`): the meta group's map in replicated
 * mode (every applied change is `replace`d in, newer or equal epochs only), a local one on a
 * lone node. Leader hints are not kept here in replicated mode: they are live Raft facts.
 */

import { type NodeAddressInfo, type NodeId, type PartitionInfo, PartitionMap } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';

export class PartitionTable {
  private map: PartitionMap;
  private readonly self: NodeId;
  private leadsHere: ((partitionId: number) => boolean) | undefined;

  constructor(map: PartitionMap, self: NodeId) {
    this.map = map;
    this.self = self;
  }

  get current(): PartitionMap {
    return this.map;
  }

  get nodeId(): NodeId {
    return this.self;
  }

  /**
   * The partition owning `hash`. When the map places it on other nodes only (a cluster with more
   * nodes than the replication factor): NOT_LEADER naming one of its replicas as `leaderHint`
   * (the leader when the map knows it) and all of them in `replicas`, so the request is forwarded
   * there (`routing/forwarder.ts`) and an SDK follows the hint; nothing was read or proposed.
   * WRONG_PARTITION when the map names no replica at all.
   */
  route(hash: bigint): PartitionInfo {
    const p = this.map.locate(hash);
    this.checkHosted(p);
    return p;
  }

  /**
   * A partition whose Raft group this node leads counts as hosted even when the map does not
   * list this node yet. The map follows membership changes through the meta group and lags them:
   * a moved partition's new replica can be handed leadership before its own copy of the map
   * shows it there, and would then send every request back to the old replicas, which send it
   * here again. A leader serves writes and linearizable reads by Raft alone.
   */
  followLocalLeadership(leads: (partitionId: number) => boolean): void {
    this.leadsHere = leads;
  }

  /** Throws as `route` does when this node hosts no replica of `p` (and does not lead it: `followLocalLeadership`). */
  checkHosted(p: PartitionInfo): void {
    if (p.replicas.includes(this.self) || this.leadsHere?.(p.id) === true) return;
    const details = { epoch: String(this.map.epoch), partitionId: String(p.id) };
    const hint = p.leaderHint !== undefined && p.replicas.includes(p.leaderHint) ? p.leaderHint : p.replicas[0];
    if (hint === undefined)
      throw new KeyVaError('WRONG_PARTITION', `partition ${p.id} is not hosted on node ${this.self}`, { ...details, leaderHint: p.leaderHint ?? '' });
    throw new KeyVaError('NOT_LEADER', `partition ${p.id} is not hosted on node ${this.self}; its replicas are ${p.replicas.join(', ')}`, {
      ...details,
      leaderHint: hint,
      replicas: p.replicas.join(','),
    });
  }

  hosted(): PartitionInfo[] {
    return this.map.partitions.filter((p) => p.replicas.includes(this.self));
  }

  replace(map: PartitionMap): void {
    if (map.epoch < this.map.epoch) return;
    this.map = map;
  }

  withNodes(nodes: readonly NodeAddressInfo[]): void {
    this.map = new PartitionMap(this.map.epoch, this.map.partitions, nodes);
  }
}
