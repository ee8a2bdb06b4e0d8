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

  /** The partition owning `hash`; WRONG_PARTITION when this node does not host it. */
  route(hash: bigint): PartitionInfo {
    const p = this.map.locate(hash);
    if (!p.replicas.includes(this.self))
      throw new KeyVaError('WRONG_PARTITION', `partition ${p.id} is not hosted on node ${this.self}`, {
        epoch: String(this.map.epoch),
        partitionId: String(p.id),
        leaderHint: p.leaderHint ?? '',
      });
    return p;
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
