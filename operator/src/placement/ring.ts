/**
 * The consistent-hash ring (npm `hashring`, ketama-compatible) over the live active nodes.
 * Each node gets `round(weight * VNODES_PER_WEIGHT)` virtual nodes of its own, so a node's
 * points depend only on its id and weight: adding or removing a node moves only the keys whose
 * ring owners change (hashring's default would rescale every node's share).
 */
import HashRing from 'hashring';
import type { NodeId, PartitionId } from './types.ts';

export const VNODES_PER_WEIGHT = 100;
export const VNODES_MAX = 10_000;

export interface RingMember {
  readonly id: NodeId;
  readonly weight: number;
}

export interface PlacementRing {
  readonly members: readonly NodeId[];
  /** Every member, in the ring's preference order for this partition. */
  preference(id: PartitionId): NodeId[];
}

/** The ring key of a partition: its stable id (split halves get new ids, hence their own place). */
export const ringKey = (id: PartitionId): string => `partition/${id}`;

export function vnodesFor(weight: number): number {
  return Math.min(VNODES_MAX, Math.max(1, Math.round(weight * VNODES_PER_WEIGHT)));
}

export function buildRing(members: readonly RingMember[]): PlacementRing {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const servers: Record<string, { vnodes: number; weight: number }> = {};
  for (const m of sorted) servers[m.id] = { vnodes: vnodesFor(m.weight), weight: m.weight };
  // 'vnode count' 0: hashring then always uses each server's own vnode count.
  const ring = sorted.length > 0 ? new HashRing(servers, 'md5', { 'vnode count': 0, 'max cache size': 0 }) : undefined;
  return {
    members: sorted.map((m) => m.id),
    preference: (id) => (ring ? (ring.range(ringKey(id), sorted.length) as NodeId[]) : []),
  };
}
