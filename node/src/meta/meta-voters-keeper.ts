/**
 * Runs the meta-voters plan (`meta-voters-plan.ts`) on the meta group's leader: every
 * `intervalMs`, if this node leads the meta group and serves, it reads the group's replicas and
 * the node registry, and carries out at most one step through the node's own membership API
 * (the same learner-first changes a placement controller asks of data groups). Every node runs
 * one; only the meta leader acts, so a new leader simply picks up where the old one stopped.
 */
import type { NodeId } from '@keyva/client/keyspace';
import type { PartitionReplicasResponse } from '@keyva/proto';
import { META_PARTITION } from '../membership/replica-membership.ts';
import type { Logger } from '../observability/logger.ts';
import type { GroupStatus } from '../replication/group-driver.ts';
import type { MetaState } from './meta-state.ts';
import { META_GROUP } from './meta-state-machine.ts';
import { type MetaVotersStep, planMetaVoters } from './meta-voters-plan.ts';

export const META_VOTERS_INTERVAL_MS = 1000;
/** A node whose meta learner could not be added is not tried again for this long (others are). */
export const ADD_RETRY_AFTER_MS = 30_000;

/** The membership calls the keeper makes (`ReplicaMembership` implements them). */
export interface MetaMembership {
  replicas(partitionId: number): Promise<PartitionReplicasResponse>;
  addLearner(partitionId: number, node: string): Promise<unknown>;
  promoteLearner(partitionId: number, node: string): Promise<unknown>;
  removeReplica(partitionId: number, node: string, force: boolean): Promise<unknown>;
  transferLeader(partitionId: number, to: string): Promise<unknown>;
}

export interface MetaVotersKeeperOptions {
  readonly self: NodeId;
  readonly status: () => GroupStatus | undefined;
  readonly state: () => MetaState;
  readonly membership: MetaMembership;
  readonly intervalMs?: number;
  /** How long a meta voter may stay unreachable before it is replaced (default `META_VOTER_DOWN_GRACE_MS`). */
  readonly downGraceMs?: number;
  readonly now?: () => number;
  readonly log?: Logger;
}

export interface MetaVotersStats {
  stepsDone: number;
  stepsFailed: number;
}

export class MetaVotersKeeper {
  readonly stats: MetaVotersStats = { stepsDone: 0, stepsFailed: 0 };
  private readonly o: MetaVotersKeeperOptions;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  /** When adding a node as a meta learner last failed. */
  private readonly addFailedAt = new Map<NodeId, number>();
  /**
   * Since when each member has been unreachable without a break, as seen by this node while it
   * leads (a new leader starts counting afresh: it replaces a voter later, never sooner).
   */
  private readonly downSince = new Map<NodeId, number>();

  constructor(o: MetaVotersKeeperOptions) {
    this.o = o;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      if (this.running === undefined)
        this.running = this.tick()
          .then(
            () => undefined,
            () => undefined,
          )
          .finally(() => {
            this.running = undefined;
          });
    }, this.o.intervalMs ?? META_VOTERS_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One round: the step carried out (undefined when nothing is to do or this node does not lead). */
  async tick(): Promise<MetaVotersStep | undefined> {
    const s = this.o.status();
    if (s === undefined || !s.serving || s.leader !== this.o.self) {
      this.downSince.clear();
      return undefined;
    }
    const now = this.o.now ?? Date.now;
    let step: MetaVotersStep | undefined;
    try {
      const r = await this.o.membership.replicas(META_PARTITION);
      const replicas = (r.replicas ?? []).map((x) => ({
        nodeId: x.nodeId as NodeId,
        voter: x.role === 'VOTER',
        reachable: x.reachable === true,
        caughtUp: x.caughtUp === true,
        downForMs: this.downFor(x.nodeId as NodeId, x.reachable === true, now()),
      }));
      for (const id of this.downSince.keys()) if (!replicas.some((x) => x.nodeId === id)) this.downSince.delete(id);
      step = planMetaVoters({
        self: this.o.self,
        replicas,
        nodes: this.o.state().nodes,
        avoid: new Set([...this.addFailedAt].filter(([, at]) => now() - at < ADD_RETRY_AFTER_MS).map(([id]) => id)),
        ...(this.o.downGraceMs === undefined ? {} : { downGraceMs: this.o.downGraceMs }),
      });
      if (step === undefined) return undefined;
      const m = this.o.membership;
      if (step.kind === 'addLearner') await m.addLearner(META_PARTITION, step.node);
      else if (step.kind === 'promote') await m.promoteLearner(META_PARTITION, step.node);
      else if (step.kind === 'remove') await m.removeReplica(META_PARTITION, step.node, false);
      else await m.transferLeader(META_PARTITION, step.to);
      this.stats.stepsDone++;
      this.o.log?.info({ group: META_GROUP, step }, 'meta group voters: step done');
      return step;
    } catch (e) {
      this.stats.stepsFailed++;
      if (step?.kind === 'addLearner') this.addFailedAt.set(step.node, now());
      this.o.log?.warn({ err: e, group: META_GROUP, step }, 'meta group voters: step failed; retried next round');
      return undefined;
    }
  }

  private downFor(id: NodeId, reachable: boolean, now: number): number {
    if (reachable) {
      this.downSince.delete(id);
      return 0;
    }
    const since = this.downSince.get(id) ?? now;
    this.downSince.set(id, since);
    return now - since;
  }
}
