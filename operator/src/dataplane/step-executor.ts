/**
 * Executes the planner's steps against the nodes' Admin API, one step = one call (ADR 0009):
 *   addLearner / promoteLearner / removeReplica / transferLeader -> the partition leader's
 *   membership RPC (NOT_LEADER: one redirect to the hinted leader); removeReplica only after the
 *   replicas' digests agree (`replica-digests.ts`, LESSONS #10);
 *   split -> SplitPartition, merge -> MergePartitions (any node); drainNode / removeNode -> UpdatePartitionMap
 *   set_node_state with the planned epoch (compare-and-set).
 * Every call is idempotent on the node side, so resending after a crash is safe. The meta map
 * follows Raft membership through `syncMap` (set_partition_replicas, compare-and-set), run by the
 * loop before each plan: the map is routing truth, the group's configuration membership truth,
 * and a controller that died between the two finds the difference and records it.
 * Outcomes: `done`, `retry` (transient: leader moving, change pending, learner still behind) or
 * `blocked` (a refusal against the cluster's state, with the node's reason, for status).
 */
import { isKeyVaError, KeyVaError } from '@keyva/proto/errors';
import { voters } from '../placement/cluster-view.ts';
import { stepKey } from '../placement/steps.ts';
import type { Step } from '../placement/types.ts';
import { ADMIN_CHANGE_DEADLINE_MS, type AdminCaller } from './admin-client.ts';
import type { ObservedCluster } from './observer.ts';
import { addressOf, disagreement, fetchDigests, leaderAddress } from './replica-digests.ts';

export type StepOutcome =
  | { readonly kind: 'done'; readonly key: string; readonly changed: boolean }
  | { readonly kind: 'retry'; readonly key: string; readonly message: string }
  | { readonly kind: 'blocked'; readonly key: string; readonly reason: string; readonly message: string };

/**
 * CONDITION_FAILED reasons that clear up by themselves (wait, re-observe, plan again); the last
 * four are MergePartitions' (a replica down, a move in flight or not yet in the map; docs/adr/0010-splits.md "Merges").
 */
const TRANSIENT_REASONS = new Set([
  'learnerBehind',
  'staleEpoch',
  'confChangePending',
  'leaderNotReady',
  'replicaUnavailable',
  'replicasDiffer',
  'membershipDiffers',
  'mergeInProgress',
]);

export class StepExecutor {
  private readonly admin: AdminCaller;

  constructor(admin: AdminCaller) {
    this.admin = admin;
  }

  async execute(step: Step, oc: ObservedCluster): Promise<StepOutcome> {
    const key = stepKey(step);
    try {
      const changed = await this.call(step, oc);
      return { kind: 'done', key, changed };
    } catch (e) {
      if (!isKeyVaError(e)) return { kind: 'retry', key, message: (e as Error).message };
      const reason = e.details.reason ?? e.code;
      if (e.code === 'CONDITION_FAILED' && !TRANSIENT_REASONS.has(reason)) return { kind: 'blocked', key, reason, message: e.message };
      if (e.code === 'INVALID_ARGUMENT' || e.code === 'ROUTE_NOT_FOUND') return { kind: 'blocked', key, reason: e.code, message: e.message };
      return { kind: 'retry', key, message: `${e.code}: ${e.message}` };
    }
  }

  /**
   * Records in the meta map the voters each partition's leader reports, where they differ (no
   * change pending, leader known). Returns how many partitions it updated; stops at the first
   * refusal (a stale epoch: the next observation re-reads the map).
   */
  async syncMap(oc: ObservedCluster): Promise<{ updated: number; error?: string | undefined }> {
    let epoch = oc.observation.epoch;
    let updated = 0;
    const removed = new Set(oc.registry.filter((n) => n.state === 'removed').map((n) => n.id));
    for (const p of oc.observation.partitions) {
      if (p.leader === undefined || oc.confChangePending.has(p.id)) continue;
      const want = voters(p).map((r) => r.nodeId as string);
      const have = oc.mapReplicas.get(p.id) ?? [];
      if (want.length === 0 || want.some((n) => removed.has(n))) continue;
      if (want.length === have.length && want.every((n) => have.includes(n))) continue;
      try {
        const res = await this.meta<{ epoch: string; changed: boolean }>(oc, {
          expectedEpoch: epoch.toString(),
          setPartitionReplicas: { partitionId: p.id, replicas: want },
        });
        epoch = BigInt(res.epoch);
        updated++;
      } catch (e) {
        return { updated, error: `recording partition ${p.id} on ${want.join(',')} in the map: ${(e as Error).message}` };
      }
    }
    return { updated };
  }

  /** A node's registry state through the meta group (compare-and-set on `expectedEpoch`). */
  async setNodeState(oc: ObservedCluster, nodeId: string, state: 'ACTIVE' | 'DRAINING' | 'REMOVED', expectedEpoch: bigint): Promise<boolean> {
    const res = await this.meta<{ changed: boolean }>(oc, { expectedEpoch: expectedEpoch.toString(), setNodeState: { nodeId, state } });
    return res.changed;
  }

  private meta<Res>(oc: ObservedCluster, req: object): Promise<Res> {
    return this.admin.callLeader<Res>(oc.mapSource, 'UpdatePartitionMap', req, addressOf(oc), ADMIN_CHANGE_DEADLINE_MS);
  }

  /**
   * LESSONS #10, before a cutover: the replicas that answer must agree (key count and checksum at
   * one read timestamp) before one of them is removed; a disagreement blocks the step with the
   * replicas named (a human looks), an unanswered digest retries it.
   */
  private async verifyReplicas(oc: ObservedCluster, partition: number): Promise<void> {
    const p = oc.observation.partitions.find((x) => x.id === partition);
    if (p === undefined) return;
    const why = disagreement(await fetchDigests(this.admin, oc, p, Date.now()));
    if (why !== undefined) throw new KeyVaError('CONDITION_FAILED', `${why}; not removing a replica until they agree`, { reason: 'replicasDisagree' });
  }

  private async call(step: Step, oc: ObservedCluster): Promise<boolean> {
    const leaderCall = async (partition: number, method: 'AddLearner' | 'PromoteLearner' | 'RemoveReplica' | 'TransferLeader', req: object) => {
      const res = await this.admin.callLeader<{ changed: boolean }>(leaderAddress(oc, partition), method, req, addressOf(oc), ADMIN_CHANGE_DEADLINE_MS);
      return res.changed;
    };
    switch (step.type) {
      case 'addLearner':
        return leaderCall(step.partitionId, 'AddLearner', { partitionId: step.partitionId, nodeId: step.nodeId });
      case 'promoteLearner':
        return leaderCall(step.partitionId, 'PromoteLearner', { partitionId: step.partitionId, nodeId: step.nodeId });
      case 'removeReplica':
        await this.verifyReplicas(oc, step.partitionId);
        return leaderCall(step.partitionId, 'RemoveReplica', { partitionId: step.partitionId, nodeId: step.nodeId, force: false });
      case 'transferLeader':
        return leaderCall(step.partitionId, 'TransferLeader', { partitionId: step.partitionId, toNodeId: step.to });
      case 'split': {
        const res = await this.admin.call<{ changed: boolean }>(
          oc.mapSource,
          'SplitPartition',
          { partitionId: step.partitionId, atHash: step.atHash.toString() },
          ADMIN_CHANGE_DEADLINE_MS,
        );
        return res.changed;
      }
      case 'merge': {
        // The node checks adjacency and both replica sets live, records the merge and waits for the data plane (docs/adr/0010-splits.md).
        const res = await this.admin.call<{ changed: boolean }>(
          oc.mapSource,
          'MergePartitions',
          { leftId: step.left, rightId: step.right },
          2 * ADMIN_CHANGE_DEADLINE_MS,
        );
        return res.changed;
      }
      case 'drainNode':
        return this.setNodeState(oc, step.nodeId, 'DRAINING', step.expectedEpoch);
      case 'removeNode':
        return this.setNodeState(oc, step.nodeId, 'REMOVED', step.expectedEpoch);
    }
  }
}
