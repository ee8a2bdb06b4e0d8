/**
 * The continuous invariant checker (LESSONS #9, #10): run it on every fresh observation and
 * alert on anything it returns. It trusts nothing the planner wrote: only what nodes report.
 */
import { HASH_SPACE_END, voters } from './cluster-view.ts';
import type { NodeId, Observation, PartitionId } from './types.ts';

export const ViolationCode = {
  BelowReplicationFactor: 'BELOW_REPLICATION_FACTOR',
  NoLeader: 'NO_LEADER',
  LeaderNotVoter: 'LEADER_NOT_VOTER',
  DuplicateReplica: 'DUPLICATE_REPLICA',
  ReplicaOnUnknownNode: 'REPLICA_ON_UNKNOWN_NODE',
  ReplicaOnRemovedNode: 'REPLICA_ON_REMOVED_NODE',
  DuplicatePartitionId: 'DUPLICATE_PARTITION_ID',
  EmptyRange: 'EMPTY_RANGE',
  Gap: 'GAP',
  Overlap: 'OVERLAP',
  ReplicasDisagree: 'REPLICAS_DISAGREE',
} as const;
export type ViolationCode = (typeof ViolationCode)[keyof typeof ViolationCode];

export interface Violation {
  readonly code: ViolationCode;
  readonly message: string;
  readonly partitionId?: PartitionId | undefined;
  readonly nodeId?: NodeId | undefined;
}

const hex = (n: bigint) => `0x${n.toString(16)}`;

export function checkInvariants(o: Observation, replicationFactor: number): Violation[] {
  const out: Violation[] = [];
  const nodes = new Map(o.nodes.map((n) => [n.id, n]));
  const seen = new Set<PartitionId>();
  for (const p of o.partitions) {
    if (seen.has(p.id)) out.push({ code: ViolationCode.DuplicatePartitionId, partitionId: p.id, message: `partition id ${p.id} appears twice in the map` });
    seen.add(p.id);
    const vs = voters(p);
    if (vs.length < replicationFactor) {
      out.push({
        code: ViolationCode.BelowReplicationFactor,
        partitionId: p.id,
        message: `partition ${p.id} has ${vs.length} voter(s), fewer than RF ${replicationFactor}`,
      });
    }
    if (p.leader === undefined) out.push({ code: ViolationCode.NoLeader, partitionId: p.id, message: `partition ${p.id} has no leader` });
    else if (!vs.some((r) => r.nodeId === p.leader)) {
      out.push({
        code: ViolationCode.LeaderNotVoter,
        partitionId: p.id,
        nodeId: p.leader,
        message: `partition ${p.id} reports leader ${p.leader}, which is not one of its voters`,
      });
    }
    const ids = new Set<NodeId>();
    for (const r of p.replicas) {
      if (ids.has(r.nodeId))
        out.push({ code: ViolationCode.DuplicateReplica, partitionId: p.id, nodeId: r.nodeId, message: `partition ${p.id} lists ${r.nodeId} twice` });
      ids.add(r.nodeId);
      const n = nodes.get(r.nodeId);
      if (!n)
        out.push({
          code: ViolationCode.ReplicaOnUnknownNode,
          partitionId: p.id,
          nodeId: r.nodeId,
          message: `partition ${p.id} has a replica on ${r.nodeId}, which is not in the node registry`,
        });
      else if (n.state === 'removed') {
        out.push({
          code: ViolationCode.ReplicaOnRemovedNode,
          partitionId: p.id,
          nodeId: r.nodeId,
          message: `partition ${p.id} has a replica on removed node ${r.nodeId}`,
        });
      }
    }
    // Replicas digested at the same read timestamp must hold the same data (after a move, before cutover).
    const byTs = new Map<bigint, { nodeId: NodeId; keyCount: number; checksum: string }[]>();
    for (const r of p.replicas) {
      if (!r.digest) continue;
      const list = byTs.get(r.digest.readTs) ?? [];
      list.push({ nodeId: r.nodeId, keyCount: r.digest.keyCount, checksum: r.digest.checksum });
      byTs.set(r.digest.readTs, list);
    }
    for (const [ts, list] of byTs) {
      const first = list[0];
      for (const d of list.slice(1)) {
        if (first && (d.keyCount !== first.keyCount || d.checksum !== first.checksum)) {
          out.push({
            code: ViolationCode.ReplicasDisagree,
            partitionId: p.id,
            nodeId: d.nodeId,
            message: `partition ${p.id} at read timestamp ${ts}: ${first.nodeId} has ${first.keyCount} keys (checksum ${first.checksum.slice(0, 12)}), ${d.nodeId} has ${d.keyCount} keys (checksum ${d.checksum.slice(0, 12)})`,
          });
        }
      }
    }
  }
  // The ranges tile [0, 2^64) exactly once: sorted by start, each begins where the last ended.
  const sorted = [...o.partitions].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end < b.end ? -1 : 1));
  let expect = 0n;
  let prev: PartitionId | undefined;
  for (const p of sorted) {
    if (p.end <= p.start || p.start < 0n || p.end > HASH_SPACE_END) {
      out.push({
        code: ViolationCode.EmptyRange,
        partitionId: p.id,
        message: `partition ${p.id} has an empty or invalid range [${hex(p.start)}, ${hex(p.end)})`,
      });
      continue;
    }
    if (p.start > expect)
      out.push({
        code: ViolationCode.Gap,
        partitionId: p.id,
        message: `hashes [${hex(expect)}, ${hex(p.start)}) belong to no partition (before partition ${p.id})`,
      });
    else if (p.start < expect) {
      out.push({
        code: ViolationCode.Overlap,
        partitionId: p.id,
        message: `partition ${p.id} starts at ${hex(p.start)}, inside partition ${prev} which ends at ${hex(expect)}`,
      });
    }
    if (p.end > expect) {
      expect = p.end;
      prev = p.id;
    }
  }
  if (expect < HASH_SPACE_END) out.push({ code: ViolationCode.Gap, message: `hashes [${hex(expect)}, 2^64) belong to no partition` });
  return out;
}
