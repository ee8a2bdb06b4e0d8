/**
 * Partition map: contiguous ranges [start, end) of the 64-bit hash space, sorted by start and
 * covering it exactly once. Routing a key = binary search of its hash. Pure; no I/O.
 */

export const HASH_SPACE_END = 1n << 64n;

export type PartitionId = number & { readonly __brand: 'PartitionId' };
export type NodeId = string & { readonly __brand: 'NodeId' };

export interface PartitionInfo {
  readonly id: PartitionId;
  /** Inclusive. */
  readonly start: bigint;
  /** Exclusive; HASH_SPACE_END for the last partition. */
  readonly end: bigint;
  readonly generation: bigint;
  readonly replicas: readonly NodeId[];
  readonly leaderHint: NodeId | undefined;
}

export interface NodeAddressInfo {
  readonly id: NodeId;
  readonly grpcAddress: string;
  readonly httpAddress: string;
  /** The random id of the node's data directory, once the node registered it (a new disk: a new one). */
  readonly incarnation?: string | undefined;
}

export class PartitionMapError extends Error {}

export class PartitionMap {
  readonly epoch: bigint;
  readonly partitions: readonly PartitionInfo[];
  readonly nodes: ReadonlyMap<NodeId, NodeAddressInfo>;
  private readonly starts: bigint[];

  constructor(epoch: bigint, partitions: readonly PartitionInfo[], nodes: readonly NodeAddressInfo[] = []) {
    const sorted = [...partitions].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    let expect = 0n;
    for (const p of sorted) {
      if (p.start !== expect) throw new PartitionMapError(`partition ${p.id} starts at ${p.start}, expected ${expect}: ranges must tile the hash space`);
      if (p.end <= p.start) throw new PartitionMapError(`partition ${p.id} is empty or inverted`);
      expect = p.end;
    }
    if (expect !== HASH_SPACE_END) throw new PartitionMapError(`partitions end at ${expect}, expected 2^64`);
    this.epoch = epoch;
    this.partitions = sorted;
    this.starts = sorted.map((p) => p.start);
    this.nodes = new Map(nodes.map((n) => [n.id, n]));
  }

  /** The partition owning a hash. */
  locate(hash: bigint): PartitionInfo {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] as bigint) <= hash) lo = mid;
      else hi = mid - 1;
    }
    return this.partitions[lo] as PartitionInfo;
  }

  byId(id: number): PartitionInfo | undefined {
    return this.partitions.find((p) => p.id === id);
  }
}

/** `count` equal ranges: partition i = [floor(i * 2^64 / count), floor((i + 1) * 2^64 / count)). */
export function uniformPartitions(count: number, replicas: readonly NodeId[] = [], leader?: NodeId): PartitionInfo[] {
  if (!Number.isInteger(count) || count < 1 || count > 65536) throw new PartitionMapError(`partition count must be an integer in 1..65536, got ${count}`);
  const n = BigInt(count);
  return Array.from({ length: count }, (_, i) => ({
    id: i as PartitionId,
    start: (BigInt(i) * HASH_SPACE_END) / n,
    end: (BigInt(i + 1) * HASH_SPACE_END) / n,
    generation: 1n,
    replicas,
    leaderHint: leader,
  }));
}
