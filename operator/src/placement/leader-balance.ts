/**
 * Leader balancing, separate from replica placement and damped (LESSONS #14): each node's fair
 * share is the sum over the partitions where it is a healthy caught-up voter of 1 / (number of
 * such voters). A node above ceil(share * (1 + tolerance)) hands leaderships to a voter below
 * its own allowance, only if that strictly improves the spread (destination ends with fewer
 * leaders than the source had), never for a partition whose leader changed within the cooldown,
 * and at most `transfersPerPlanMax` per plan: batched, so a restart's imbalance is fixed in a few
 * rounds instead of one transfer a second.
 */
import type { ClusterView } from './cluster-view.ts';
import type { NodeId, PartitionId, PartitionView, PlannerHistory, Step } from './types.ts';

export function leaderCounts(view: ClusterView): Map<NodeId, number> {
  const counts = new Map<NodeId, number>();
  for (const p of view.observation.partitions) if (p.leader !== undefined) counts.set(p.leader, (counts.get(p.leader) ?? 0) + 1);
  return counts;
}

export function lastLeaderChangeMs(p: PartitionView, history: PlannerHistory): number {
  let t = p.leaderChangedAtMs ?? Number.NEGATIVE_INFINITY;
  for (const h of history) if (h.partitionId === p.id && h.kind === 'transferLeader' && h.atMs > t) t = h.atMs;
  return t;
}

export function balanceLeaders(view: ClusterView, history: PlannerHistory, skip: ReadonlySet<PartitionId>): Step[] {
  const { leaders } = view.spec;
  const canLead = (n: NodeId) => {
    const node = view.nodes.get(n);
    return node !== undefined && node.state === 'active' && node.health === 'up';
  };
  const electorate = new Map<PartitionId, NodeId[]>();
  const share = new Map<NodeId, number>();
  for (const p of view.observation.partitions) {
    const vs = view
      .healthyCaughtUpVoters(p)
      .map((r) => r.nodeId)
      .filter(canLead);
    electorate.set(p.id, vs);
    for (const n of vs) share.set(n, (share.get(n) ?? 0) + 1 / vs.length);
  }
  const allowance = (n: NodeId) => Math.ceil((share.get(n) ?? 0) * (1 + leaders.toleranceRatio) - 1e-9);
  const counts = leaderCounts(view);
  const count = (n: NodeId) => counts.get(n) ?? 0;
  const steps: Step[] = [];
  const moved = new Set<PartitionId>();
  const eligible = [...view.observation.partitions]
    .filter((p) => p.leader !== undefined && !skip.has(p.id) && view.nowMs - lastLeaderChangeMs(p, history) >= leaders.cooldownMs)
    .sort((a, b) => a.id - b.id);
  while (steps.length < leaders.transfersPerPlanMax) {
    // The most overloaded source first (largest excess over its allowance).
    const sources = [...counts.keys()]
      .filter((n) => count(n) > allowance(n))
      .sort((a, b) => count(b) - allowance(b) - (count(a) - allowance(a)) || (a < b ? -1 : 1));
    let found: Step | undefined;
    for (const src of sources) {
      for (const p of eligible) {
        if (p.leader !== src || moved.has(p.id)) continue;
        const dsts = (electorate.get(p.id) ?? [])
          .filter((d) => d !== src && count(d) + 1 <= allowance(d) && count(d) + 1 < count(src))
          .sort((a, b) => count(a) - allowance(a) - (count(b) - allowance(b)) || (a < b ? -1 : 1));
        const dst = dsts[0];
        if (dst === undefined) continue;
        found = {
          type: 'transferLeader',
          partitionId: p.id,
          to: dst,
          reason: `balance leaders: ${src} leads ${count(src)} (allowance ${allowance(src)}), ${dst} leads ${count(dst)}`,
        };
        counts.set(src, count(src) - 1);
        counts.set(dst, count(dst) + 1);
        moved.add(p.id);
        break;
      }
      if (found) break;
    }
    if (!found) break;
    steps.push(found);
  }
  return steps;
}
