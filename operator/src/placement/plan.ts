/**
 * The planner: spec + fresh observation + injected time (+ the controller's optional history)
 * -> the NEXT steps. It keeps no state of its own: a controller that crashes mid-move re-plans
 * from the next observation and continues where the cluster is, because every decision reads
 * only the observation (learners present, voter surplus, node states, generations).
 *
 * Order of concerns in one plan:
 *  1. membership, per partition (repairs below RF first, then moves already in flight, then new
 *     moves within the move limits);
 *  2. the decommission state machine (one node at a time, refused up front when unsafe);
 *  3. at most one split or merge, only on settled partitions and only while nothing is below RF
 *     or leaving;
 *  4. leader balancing, only while no replica move is in flight (damping).
 */
import { ClusterView, voters } from './cluster-view.ts';
import { planDecommission } from './decommission.ts';
import { balanceLeaders } from './leader-balance.ts';
import { checkMembership, isMoveInFlight, moveParticipants } from './membership.ts';
import { MoveBudget } from './move-budget.ts';
import { chooseSplit, invalidSplitRequests, MINUTE_MS, mergeCandidate } from './split-merge.ts';
import { targetPlacement } from './target.ts';
import {
  type ClusterSpec,
  type NodeId,
  type Observation,
  type PartitionId,
  type PartitionView,
  type Plan,
  type PlannerHistory,
  type Refusal,
  RefusalCode,
  type Step,
} from './types.ts';

const sameSet = (a: readonly NodeId[], b: readonly NodeId[]) => a.length === b.length && a.every((x) => b.includes(x));

export function plan(spec: ClusterSpec, observation: Observation, nowMs: number, history: PlannerHistory = []): Plan {
  const view = new ClusterView(spec, observation, nowMs);
  const rf = spec.replicationFactor;
  const refusals: Refusal[] = [...invalidSplitRequests(view)];
  const steps: Step[] = [];

  // A merge needs both halves on the same nodes: pin the right one onto the left one's target.
  const pair = mergeCandidate(view, history);
  const target = targetPlacement(spec, observation, nowMs, { colocate: pair ? new Map([[pair[1].id, pair[0].id]]) : undefined });
  refusals.push(...target.problems);
  const targetOf = (p: PartitionView): readonly NodeId[] => target.replicas.get(p.id) ?? [];

  // 1. Membership. Moves already running count against the limits before any new one starts.
  const startsLastMinute = history.filter((h) => h.kind === 'moveStart' && nowMs - h.atMs < MINUTE_MS).length;
  const startsLeft = spec.moves.startsPerMinuteMax === 0 ? Number.POSITIVE_INFINITY : Math.max(0, spec.moves.startsPerMinuteMax - startsLastMinute);
  const budget = new MoveBudget(spec.moves.clusterMax, spec.moves.perNodeMax, startsLeft);
  for (const p of observation.partitions) if (isMoveInFlight(p, rf)) budget.count(moveParticipants(p, targetOf(p)));
  const urgency = (p: PartitionView) => (voters(p).length < rf ? 0 : isMoveInFlight(p, rf) ? 1 : 2);
  const ordered = [...observation.partitions].sort((a, b) => urgency(a) - urgency(b) || a.id - b.id);
  const busy = new Set<PartitionId>();
  let movesRemaining = 0;
  let belowRF = 0;
  let leaderless = 0;
  for (const p of ordered) {
    const t = targetOf(p);
    movesRemaining += t.filter((n) => !voters(p).some((r) => r.nodeId === n)).length;
    if (voters(p).length < rf) belowRF += 1;
    if (p.leader === undefined) {
      leaderless += 1;
      refusals.push({ code: RefusalCode.NoLeader, partitionId: p.id, message: `partition ${p.id} has no leader; its membership cannot change` });
    }
    const d = checkMembership(view, p, t, budget);
    if (d.step) steps.push(d.step);
    if (d.step || d.inFlight || d.waiting) busy.add(p.id);
  }

  // 2. Decommission: one node at a time, data plane decides.
  const dec = planDecommission(view, { unhealthyPartitions: belowRF + leaderless, movesInFlight: budget.movesInFlight });
  refusals.push(...dec.refusals);
  if (dec.step) steps.push(dec.step);
  const leaving = observation.nodes.some((n) => n.state === 'draining') || dec.step !== undefined;

  // 3. One split or merge, on settled partitions only (no learner, RF voters on the target, a leader).
  if (belowRF === 0 && leaderless === 0 && !leaving) {
    const settled = (p: PartitionView) =>
      !busy.has(p.id) &&
      p.leader !== undefined &&
      p.replicas.length === rf &&
      voters(p).length === rf &&
      sameSet(
        voters(p).map((r) => r.nodeId),
        targetOf(p),
      );
    const split = chooseSplit(view, settled, history);
    if (split) {
      steps.push(split.step);
      busy.add(split.step.partitionId);
    } else if (pair) {
      const [a, b] = pair;
      const va = voters(a).map((r) => r.nodeId);
      if (
        settled(a) &&
        settled(b) &&
        sameSet(
          va,
          voters(b).map((r) => r.nodeId),
        )
      ) {
        steps.push({
          type: 'merge',
          left: a.id,
          right: b.id,
          rightEnd: b.end,
          expectedGenerations: [a.generation, b.generation],
          expectedEpoch: observation.epoch,
          reason: `neighbours ${a.id} and ${b.id} hold ${a.sizeBytes + b.sizeBytes} bytes and ${a.qps + b.qps} qps together, below the merge thresholds`,
        });
        busy.add(a.id);
        busy.add(b.id);
      }
    }
  }

  // 4. Leader balance, only when no replica is moving.
  if (budget.movesInFlight === 0) steps.push(...balanceLeaders(view, history, busy));

  return {
    steps,
    refusals,
    progress: { movesInFlight: budget.movesInFlight, movesRemaining, partitionsBelowRF: belowRF, partitionsWithoutLeader: leaderless },
  };
}
