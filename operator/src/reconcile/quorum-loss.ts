/**
 * Tells the user that a Raft group lost its quorum (LESSONS #11): a group the data plane has seen
 * without a leader for longer than a grace period is reported as `Degraded=QuorumLost`, with the
 * exact approval to set once a human has confirmed that the missing members are gone for good.
 * The operator itself never recovers without that approval (operator/src/kube/quorum-recovery.ts).
 * A shorter gap is an election, a restart or a rolling upgrade: not reported.
 */
import { ANNOTATIONS } from '../api/constants.ts';
import type { ConditionInput } from './conditions.ts';
import type { DataPlaneView, LeaderlessGroup } from './types.ts';

export const QUORUM_LOSS_GRACE_MS = 60_000;
export const LOST_QUORUM_RUNBOOK = 'docs/operations.md, runbook "Lost quorum"';

export interface QuorumLoss {
  /** `Degraded=QuorumLost` when a group is leaderless past the grace. */
  readonly condition?: ConditionInput | undefined;
  /** A group is leaderless but within the grace: look again then (ms from now). */
  readonly recheckInMs?: number | undefined;
}

function name(g: LeaderlessGroup['group']): string {
  return g === 'meta' ? 'the meta group' : `partition ${g}`;
}

/** `cluster` is the KeyVaCluster's name (for the kubectl command in the message). */
export function quorumLoss(cluster: string, dp: DataPlaneView | undefined, nowMs: number, graceMs = QUORUM_LOSS_GRACE_MS): QuorumLoss {
  const groups = dp?.noLeader ?? [];
  const overdue = groups.filter((g) => nowMs - g.sinceMs >= graceMs).sort((a, b) => (a.group === 'meta' ? -1 : b.group === 'meta' ? 1 : a.group - b.group));
  const waiting = groups.filter((g) => nowMs - g.sinceMs < graceMs).map((g) => g.sinceMs + graceMs - nowMs);
  const recheckInMs = waiting.length > 0 ? Math.max(1000, Math.min(...waiting)) : undefined;
  const first = overdue[0];
  if (first === undefined) return { recheckInMs };
  const others = overdue.slice(1, 11).map((g) => name(g.group));
  const more = overdue.length > 11 ? ` and ${overdue.length - 11} more` : '';
  const also = others.length > 0 ? `; also without a leader: ${others.join(', ')}${more}` : '';
  const metaNote = first.group === 'meta' ? ' (partitions cannot be observed until the meta group has a leader again; recover it first)' : '';
  const message =
    `${name(first.group)} has had no leader since ${new Date(first.sinceMs).toISOString()} (over ${Math.round(graceMs / 1000)} s): its quorum may be lost${also}${metaNote}. ` +
    'Nothing is done without approval. If the missing members can come back with their data, bring them back instead. ' +
    'Once they are gone for good (pods and processes stopped, volumes destroyed), approve the UNSAFE recovery of one group at a time ' +
    `(acknowledged writes only the lost replicas held are lost): kubectl annotate keyvacluster ${cluster} ${ANNOTATIONS.approveUnsafeRecovery}=${first.group} ` +
    `(see ${LOST_QUORUM_RUNBOOK})`;
  return { condition: { type: 'Degraded', status: 'True', reason: 'QuorumLost', message }, recheckInMs };
}
