/**
 * Replica ids of the Raft groups a node hosts. For now a node's replica in every group is named
 * after the node (`${nodeId}`). ADR 0006 requires that a replica removed from a group and added
 * again (e.g. after its disk was wiped) come back under a NEW id; that will be
 * `${nodeId}/${incarnation}`, with the incarnation kept in the meta group (future work), so
 * `nodeOf` already reads the node id as the part before the first '/'.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { type ReplicaId, replicaId } from '../raft/types.ts';

/** The replica id of `node` in any group (first incarnation). */
export function replicaOf(node: NodeId | string): ReplicaId {
  if (node.length === 0 || node.includes('/')) throw new RangeError(`node id ${JSON.stringify(node)} must be non-empty and contain no '/'`);
  return replicaId(node);
}

/** The node hosting `replica`. */
export function nodeOf(replica: ReplicaId): NodeId {
  const slash = replica.indexOf('/');
  return (slash < 0 ? replica : replica.slice(0, slash)) as string as NodeId;
}
