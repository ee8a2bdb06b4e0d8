import type { NodeId } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { type GroupLeadership, leaderCounts, planLeaderTransfers } from './leader-balance-plan.ts';

const A = 'a' as NodeId;
const B = 'b' as NodeId;
const C = 'c' as NodeId;
const NODES: NodeId[] = [A, B, C];

/** `n` groups led as `leaders` says (cycled), every other voter a candidate. */
function groups(leaders: (NodeId | undefined)[], opts: { transferring?: number } = {}): GroupLeadership[] {
  return leaders.map((leader, i) => ({
    group: i + 1,
    leader,
    candidates: NODES.filter((n) => n !== leader),
    transferring: opts.transferring === i + 1,
  }));
}

const repeat = (node: NodeId, n: number): NodeId[] => Array.from({ length: n }, () => node);

/** Applies a plan to the view, as the cluster would once the transfers complete. */
function applyPlan(gs: GroupLeadership[], plan: ReturnType<typeof planLeaderTransfers>): GroupLeadership[] {
  return gs.map((g) => {
    const t = plan.find((p) => p.group === g.group);
    return t === undefined ? g : { ...g, leader: t.to, candidates: NODES.filter((n) => n !== t.to) };
  });
}

describe('planLeaderTransfers', () => {
  it('moves leadership off a node that leads more than ceil(avg) + 1, to the least loaded voters', () => {
    const gs = groups([...repeat(A, 44), ...repeat(B, 12), ...repeat(C, 8)]); // 64 groups, avg 21.3
    const plan = planLeaderTransfers({ groups: gs, nodes: NODES, maxTransfers: 4 });
    expect(plan).toHaveLength(4);
    expect(plan.every((t) => t.from === A)).toBe(true);
    // C (8) is the least loaded, then ties with B broken by id
    expect(plan.map((t) => t.to)).toEqual([C, C, C, C]);
    expect(new Set(plan.map((t) => t.group)).size).toBe(4);
  });

  it('converges into the band in bounded rounds and then stays still', () => {
    let gs = groups([...repeat(A, 44), ...repeat(B, 12), ...repeat(C, 8)]);
    let rounds = 0;
    for (; rounds < 50; rounds++) {
      const plan = planLeaderTransfers({ groups: gs, nodes: NODES, maxTransfers: 4 });
      if (plan.length === 0) break;
      gs = applyPlan(gs, plan);
    }
    expect(rounds).toBeLessThanOrEqual(Math.ceil((44 - 22) / 4) + 1);
    const counts = leaderCounts(gs, NODES);
    for (const c of counts.values()) expect(c).toBeLessThanOrEqual(22 + 1);
    expect([...counts.values()].reduce((s, x) => s + x, 0)).toBe(64);
    expect(planLeaderTransfers({ groups: gs, nodes: NODES, maxTransfers: 4 })).toEqual([]);
  });

  it('does nothing inside the hysteresis band (no ping-pong)', () => {
    // avg 7, ceil 7: 8/7/6 and 8/8/5 are inside the band (nobody above 8)
    expect(planLeaderTransfers({ groups: groups([...repeat(A, 8), ...repeat(B, 7), ...repeat(C, 6)]), nodes: NODES, maxTransfers: 4 })).toEqual([]);
    expect(planLeaderTransfers({ groups: groups([...repeat(A, 8), ...repeat(B, 8), ...repeat(C, 5)]), nodes: NODES, maxTransfers: 4 })).toEqual([]);
    // 9/6/6 is outside: one move brings A to 8... and on to ceil(avg)
    const plan = planLeaderTransfers({ groups: groups([...repeat(A, 9), ...repeat(B, 6), ...repeat(C, 6)]), nodes: NODES, maxTransfers: 4 });
    expect(plan.map((t) => [t.from, t.to])).toEqual([
      [A, B],
      [A, C],
    ]);
  });

  it('waits while any transfer is pending', () => {
    const gs = groups([...repeat(A, 30), ...repeat(B, 1), ...repeat(C, 1)], { transferring: 32 });
    expect(planLeaderTransfers({ groups: gs, nodes: NODES, maxTransfers: 4 })).toEqual([]);
  });

  it('respects maxTransfers, candidates and leaderless groups', () => {
    const gs = groups([...repeat(A, 10), undefined, undefined]);
    // avg over the 10 led groups: 3.3 -> ceil 4; A sheds down to 4
    expect(planLeaderTransfers({ groups: gs, nodes: NODES, maxTransfers: 1 })).toHaveLength(1);
    expect(planLeaderTransfers({ groups: gs, nodes: NODES, maxTransfers: 100 })).toHaveLength(6);
    expect(planLeaderTransfers({ groups: gs, nodes: NODES, maxTransfers: 0 })).toEqual([]);
    // no healthy candidate: nothing to do
    const stuck = gs.map((g) => ({ ...g, candidates: [] }));
    expect(planLeaderTransfers({ groups: stuck, nodes: NODES, maxTransfers: 4 })).toEqual([]);
    // only C is a candidate: every move goes to C and stops at ceil(avg)
    const onlyC = gs.map((g) => ({ ...g, candidates: [C] }));
    const plan = planLeaderTransfers({ groups: onlyC, nodes: NODES, maxTransfers: 100 });
    expect(plan.every((t) => t.to === C)).toBe(true);
    expect(plan).toHaveLength(4);
  });

  it('counts a node that leads nothing, and ignores a single-node cluster', () => {
    expect(planLeaderTransfers({ groups: groups(repeat(A, 6)), nodes: [A], maxTransfers: 4 })).toEqual([]);
    expect(planLeaderTransfers({ groups: groups(repeat(A, 6)), nodes: NODES, maxTransfers: 10 })).toHaveLength(4);
  });

  it('refuses nonsense limits', () => {
    expect(() => planLeaderTransfers({ groups: [], nodes: NODES, maxTransfers: -1 })).toThrow(/maxTransfers/);
    expect(() => planLeaderTransfers({ groups: [], nodes: NODES, maxTransfers: 1, slack: 0.5 })).toThrow(/slack/);
  });
});
