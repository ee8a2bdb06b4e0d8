/**
 * Leader balancing, the pure decision (DESIGN §5: "leaders are spread deliberately after
 * restarts, with damping"). Given who leads which group, it picks a few leadership transfers
 * that even out the number of groups each voter leads. No I/O, no clock: the caller
 * (`leader-balancer.ts` today, the placement controller later) supplies the view and executes
 * the transfers.
 *
 * Damping and hysteresis:
 * - nothing moves while any transfer is still pending (`transferring`);
 * - a node sheds leadership only while it leads MORE than `ceil(avg) + slack` groups (slack 1 by
 *   default) and only down to `ceil(avg)`: counts inside that band never trigger a move, so a
 *   balanced cluster stays still and two nodes cannot trade a group back and forth;
 * - a target must stay at or below `ceil(avg)` after the move and lead at least two fewer groups
 *   than the source (a move never just swaps who is overloaded);
 * - at most `maxTransfers` per plan; targets are only the group's `candidates` (voters the
 *   caller considers healthy and caught up: a transfer to a lagging replica stalls the group).
 * The result is deterministic (ties broken by node id, then group id).
 */
import type { NodeId } from '@keyva/client/keyspace';
import type { GroupId } from './raft-keys.ts';

export interface GroupLeadership {
  readonly group: GroupId;
  /** Current leader as seen by the caller; undefined while leaderless (the group is not counted). */
  readonly leader: NodeId | undefined;
  /** Voters that may take over (healthy, caught up), the leader excluded. */
  readonly candidates: readonly NodeId[];
  /** A leadership transfer of this group is in flight. */
  readonly transferring: boolean;
}

export interface LeaderBalanceInput {
  readonly groups: readonly GroupLeadership[];
  /** The nodes leadership is spread over (voters of the groups); a node leading nothing counts too. */
  readonly nodes: readonly NodeId[];
  /** Transfers per plan, at most. */
  readonly maxTransfers: number;
  /** Groups above `ceil(avg)` a node may lead before it sheds any (default 1). */
  readonly slack?: number;
}

export interface LeaderTransfer {
  readonly group: GroupId;
  readonly from: NodeId;
  readonly to: NodeId;
}

/** Leadership counts per node (every node of `nodes`, leaders outside it too). */
export function leaderCounts(groups: readonly GroupLeadership[], nodes: readonly NodeId[]): Map<NodeId, number> {
  const counts = new Map<NodeId, number>(nodes.map((n) => [n, 0]));
  for (const g of groups) if (g.leader !== undefined) counts.set(g.leader, (counts.get(g.leader) ?? 0) + 1);
  return counts;
}

/** The transfers that bring leadership counts back into the band; empty when nothing should move. */
export function planLeaderTransfers(input: LeaderBalanceInput): LeaderTransfer[] {
  const { groups, nodes, maxTransfers } = input;
  const slack = input.slack ?? 1;
  if (!Number.isInteger(maxTransfers) || maxTransfers < 0) throw new RangeError(`maxTransfers must be a non-negative integer, got ${maxTransfers}`);
  if (!Number.isInteger(slack) || slack < 0) throw new RangeError(`slack must be a non-negative integer, got ${slack}`);
  if (maxTransfers === 0 || nodes.length < 2 || groups.some((g) => g.transferring)) return [];
  const counts = leaderCounts(groups, nodes);
  const led = groups.filter((g) => g.leader !== undefined).length;
  const ceilAvg = Math.ceil(led / nodes.length);
  const trigger = ceilAvg + slack;
  const cmp = (a: NodeId, b: NodeId) => (a < b ? -1 : a > b ? 1 : 0);
  // Sources: overloaded nodes, most loaded first.
  const sources = [...counts.entries()]
    .filter(([, c]) => c > trigger)
    .sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]))
    .map(([n]) => n);
  const plan: LeaderTransfer[] = [];
  const byGroup = [...groups].sort((a, b) => a.group - b.group);
  for (const from of sources) {
    for (const g of byGroup) {
      if (plan.length >= maxTransfers || (counts.get(from) ?? 0) <= ceilAvg) break;
      if (g.leader !== from) continue;
      const fromCount = counts.get(from) ?? 0;
      let best: NodeId | undefined;
      let bestCount = Number.POSITIVE_INFINITY;
      for (const to of g.candidates) {
        if (to === from || !counts.has(to)) continue;
        const c = counts.get(to) ?? 0;
        if (c + 1 > ceilAvg || c + 2 > fromCount) continue;
        if (c < bestCount || (c === bestCount && best !== undefined && to < best)) {
          best = to;
          bestCount = c;
        }
      }
      if (best === undefined) continue;
      plan.push({ group: g.group, from, to: best });
      counts.set(from, fromCount - 1);
      counts.set(best, bestCount + 1);
    }
  }
  return plan;
}
