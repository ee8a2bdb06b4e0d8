/**
 * Spreads partition leadership evenly over the voters (DESIGN §5), on every node: every
 * `intervalMs` (the first run `startDelayMs` after start, once the first elections settled) it
 * reads who leads each group it hosts, asks the pure `planLeaderTransfers` what should move, and
 * executes the transfers whose source is THIS node (a transfer is asked of the leader). All
 * nodes see about the same leadership, so they plan about the same moves; each does its share.
 *
 * Damping (see `leader-balance-plan.ts`): nothing moves while a transfer this node asked for is
 * still pending, a node sheds only above `ceil(avg) + 1`, at most `maxTransfers` per run. A
 * target must be a voter this leader sees replicating and caught up to the commit index.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { ProgressState } from '../raft/progress.ts';
import type { RaftStatus } from '../raft/raft.ts';
import type { RequestResult } from '../raft/results.ts';
import { Role } from '../raft/types.ts';
import type { GroupStatus } from './group-driver.ts';
import { type GroupLeadership, type LeaderTransfer, planLeaderTransfers } from './leader-balance-plan.ts';
import type { GroupId } from './raft-keys.ts';
import { nodeOf } from './replica-id.ts';

/** What the balancer reads and asks of the runtime (`MultiRaft` implements it). */
export interface LeaderBalancerHost {
  groups(): GroupId[];
  status(group: GroupId): GroupStatus | undefined;
  raftStatus(group: GroupId): RaftStatus | undefined;
  transferLeader(group: GroupId, to: NodeId): RequestResult | undefined;
}

export interface BalancerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemBalancerTimers: BalancerTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export const LEADER_BALANCE_INTERVAL_MS = 1000;
export const LEADER_BALANCE_START_DELAY_MS = 3000;
export const LEADER_BALANCE_TRANSFERS_MAX = 4;

export interface LeaderBalancerOptions {
  readonly self: NodeId;
  readonly host: LeaderBalancerHost;
  readonly intervalMs?: number;
  readonly startDelayMs?: number;
  /** Transfers this node starts per run, at most. */
  readonly maxTransfers?: number;
  readonly timers?: BalancerTimers;
  /** Called for each transfer this node asked for (logging). */
  readonly onTransfer?: (t: LeaderTransfer, result: RequestResult | undefined) => void;
}

export interface LeaderBalancerStats {
  runs: number;
  transfers: number;
  /** Runs that did nothing because a transfer was still pending. */
  waited: number;
}

export class LeaderBalancer {
  readonly stats: LeaderBalancerStats = { runs: 0, transfers: 0, waited: 0 };
  private readonly o: LeaderBalancerOptions;
  private readonly timers: BalancerTimers;
  private handle: unknown;
  private running = false;

  constructor(o: LeaderBalancerOptions) {
    this.o = o;
    this.timers = o.timers ?? systemBalancerTimers;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(this.o.startDelayMs ?? LEADER_BALANCE_START_DELAY_MS);
  }

  stop(): void {
    this.running = false;
    if (this.handle !== undefined) this.timers.clearTimeout(this.handle);
    this.handle = undefined;
  }

  /** The leadership this node sees, in the planner's terms. */
  view(): { groups: GroupLeadership[]; nodes: NodeId[] } {
    const { host, self } = this.o;
    const groups: GroupLeadership[] = [];
    const nodes = new Set<NodeId>();
    for (const g of host.groups()) {
      const st = host.status(g);
      if (st === undefined || st.failed) continue;
      for (const v of st.voters) nodes.add(v);
      if (st.leader !== self || st.role !== Role.Leader) {
        groups.push({ group: g, leader: st.leader, candidates: st.voters.filter((v) => v !== st.leader), transferring: false });
        continue;
      }
      const rs = host.raftStatus(g);
      const commit = rs?.hardState.commit ?? 0;
      const candidates: NodeId[] = [];
      for (const [replica, pr] of rs?.progress ?? []) {
        const id = nodeOf(replica);
        if (id === self || pr.isLearner || pr.state !== ProgressState.Replicate || pr.match < commit) continue;
        candidates.push(id);
      }
      groups.push({ group: g, leader: self, candidates, transferring: rs?.leadTransferee !== undefined });
    }
    return { groups, nodes: [...nodes].sort() };
  }

  /** One balancing round: plans over the local view and starts this node's transfers. */
  runOnce(): LeaderTransfer[] {
    this.stats.runs++;
    const { groups, nodes } = this.view();
    if (groups.some((g) => g.transferring)) {
      this.stats.waited++;
      return [];
    }
    const mine = planLeaderTransfers({ groups, nodes, maxTransfers: this.o.maxTransfers ?? LEADER_BALANCE_TRANSFERS_MAX }).filter(
      (t) => t.from === this.o.self,
    );
    for (const t of mine) {
      const r = this.o.host.transferLeader(t.group, t.to);
      if (r?.ok) this.stats.transfers++;
      this.o.onTransfer?.(t, r);
    }
    return mine;
  }

  private schedule(ms: number): void {
    this.handle = this.timers.setTimeout(() => {
      if (!this.running) return;
      try {
        this.runOnce();
      } finally {
        if (this.running) this.schedule(this.o.intervalMs ?? LEADER_BALANCE_INTERVAL_MS);
      }
    }, ms);
  }
}
