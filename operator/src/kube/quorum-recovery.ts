/**
 * The operator's gate for unsafe quorum-loss recovery (docs/adr/0012-unsafe-quorum-recovery.md,
 * runbook "Lost quorum" in docs/operations.md; LESSONS #11): never automatic, only after a human
 * put the approval annotation on the KeyVaCluster:
 *
 *     kubectl annotate keyvacluster <name> keyva.io/approve-unsafe-recovery=<partitionId|meta>
 *
 * On each reconcile of an annotated cluster the gate asks every member pod (by pod IP, not
 * through the meta group, which may itself have lost its quorum) for its replica of that group
 * (`LocalReplica`) and decides (`decideQuorumRecovery`, pure):
 * - the group has a leader, or a majority of its voters answers: the approval is refused and
 *   consumed (a stale approval must never fire later, when a different failure happens);
 * - no member answers at all: wait (the approval stays);
 * - otherwise: call `UnsafeRecoverPartition` once on the surviving voter with the newest log,
 *   naming every answering voter as a survivor; then record an Event and the status condition
 *   `QuorumRecovery`, and consume the annotation (removed, and `keyva.io/unsafe-recovery-consumed`
 *   says how it ended). The node re-checks everything itself and refuses while a quorum lives.
 *
 * A transient failure of the call (outcome unknown) keeps the approval: the call is idempotent
 * on the node (a finished recovery answers `changed = false`).
 */
import type { LocalReplicaResponseOut, UnsafeRecoverPartitionResponseOut } from '@keyva/proto';
import type { Logger } from 'pino';
import { ANNOTATIONS } from '../api/constants.ts';
import type { KeyVaCluster } from '../api/keyva-cluster.ts';
import type { AdminCaller } from '../dataplane/admin-client.ts';
import type { EventRecorder } from './event-recorder.ts';
import { isNotFound, isPreconditionFailed, type KubeClient } from './kube-client.ts';
import { RESOURCES } from './resources.ts';

export const APPROVE_UNSAFE_RECOVERY = ANNOTATIONS.approveUnsafeRecovery;
export const UNSAFE_RECOVERY_CONSUMED = 'keyva.io/unsafe-recovery-consumed';
export const QUORUM_RECOVERY_CONDITION = 'QuorumRecovery';
/** Field manager of the gate's status condition (the reconciler's conditions stay its own). */
export const QUORUM_RECOVERY_FIELD_MANAGER = 'keyva-operator-quorum-recovery';
const PROBE_DEADLINE_MS = 2000;
const RECOVER_DEADLINE_MS = 30_000;

/** The group an approval names. */
export type ApprovalTarget = { readonly metaGroup: true } | { readonly metaGroup: false; readonly partitionId: number };

/** What one member pod answered about its replica of the group (`replica` undefined: it did not answer). */
export interface MemberAnswer {
  readonly address: string;
  readonly nodeId: string | undefined;
  readonly replica:
    | { readonly hosted: boolean; readonly leader: string; readonly lastIndex: number; readonly lastTerm: number; readonly voters: readonly string[] }
    | undefined;
}

export type GateDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'wait'; readonly message: string }
  | { readonly kind: 'refuse'; readonly reason: string; readonly message: string }
  | { readonly kind: 'recover'; readonly target: ApprovalTarget; readonly address: string; readonly nodeId: string; readonly survivors: readonly string[] };

/** `meta` or a partition id (decimal); anything else is not an approval. */
export function parseApproval(value: string): ApprovalTarget | undefined {
  const v = value.trim();
  if (v === 'meta') return { metaGroup: true };
  if (!/^\d{1,10}$/.test(v) || Number(v) > 0xffff_fffe) return undefined;
  return { metaGroup: false, partitionId: Number(v) };
}

export function describeTarget(t: ApprovalTarget): string {
  return t.metaGroup ? 'the meta group' : `partition ${t.partitionId}`;
}

/** The gate's decision for a cluster's approval annotation (undefined: none) and the members' answers. */
export function decideQuorumRecovery(approval: string | undefined, members: readonly MemberAnswer[]): GateDecision {
  if (approval === undefined) return { kind: 'none' };
  const target = parseApproval(approval);
  if (target === undefined)
    return {
      kind: 'refuse',
      reason: 'InvalidApproval',
      message: `${APPROVE_UNSAFE_RECOVERY}=${JSON.stringify(approval)} names no group: use a partition id or "meta"; nothing done`,
    };
  const what = describeTarget(target);
  const answering = members.filter((m) => m.replica !== undefined && m.nodeId !== undefined);
  if (answering.length === 0) return { kind: 'wait', message: `no member pod answers about ${what}; waiting before deciding on the unsafe recovery` };
  const hosting = answering.filter((m) => m.replica?.hosted === true);
  const leaders = [...new Set(hosting.map((m) => m.replica?.leader ?? '').filter((l) => l !== ''))];
  if (leaders.length > 0)
    return {
      kind: 'refuse',
      reason: 'QuorumPresent',
      message: `${what} has a leader (${leaders.join(',')}): its quorum is not lost, the unsafe recovery is not needed; approval consumed, nothing done`,
    };
  // The membership as the survivor with the newest log knows it.
  const byLog = [...hosting].sort(
    (a, b) => (b.replica?.lastTerm ?? 0) - (a.replica?.lastTerm ?? 0) || (b.replica?.lastIndex ?? 0) - (a.replica?.lastIndex ?? 0),
  );
  const newest = byLog[0];
  const voters = newest?.replica?.voters ?? [];
  // Newest log first: the first live voter is the one to recover on.
  const live = byLog.filter((m) => voters.includes(m.nodeId as string));
  if (newest === undefined || live.length === 0)
    return {
      kind: 'refuse',
      reason: 'NoSurvivor',
      message: `no answering member holds a voter replica of ${what}: nothing to recover from (restore from a backup); approval consumed, nothing done`,
    };
  const quorum = Math.floor(voters.length / 2) + 1;
  if (live.length >= quorum)
    return {
      kind: 'refuse',
      reason: 'QuorumPresent',
      message: `${live.length} of ${voters.length} voters of ${what} answer (a quorum of ${quorum}): it can elect a leader by itself; approval consumed, nothing done`,
    };
  const best = live[0] as MemberAnswer;
  return {
    kind: 'recover',
    target,
    address: best.address,
    nodeId: best.nodeId as string,
    survivors: live.map((m) => m.nodeId as string).sort(),
  };
}

export interface QuorumRecoveryGateOptions {
  readonly client: KubeClient;
  readonly events: EventRecorder;
  readonly admin: AdminCaller;
  readonly log: Logger;
  readonly now: () => number;
}

export class QuorumRecoveryGate {
  private readonly o: QuorumRecoveryGateOptions;

  constructor(o: QuorumRecoveryGateOptions) {
    this.o = o;
  }

  /** Acts on the cluster's approval annotation, if any; `seeds` are the member pods' gRPC addresses. */
  async run(seen: KeyVaCluster, seeds: readonly string[]): Promise<void> {
    if (seen.metadata.annotations?.[APPROVE_UNSAFE_RECOVERY] === undefined) return;
    // The informer's copy can still carry an approval this gate consumed a moment ago: act only on
    // what the API server holds now (else a consumed approval is decided again, and recorded as
    // refused because the group it recovered has a leader again).
    const cluster = (await this.o.client.getOrUndefined(RESOURCES.KeyVaCluster, seen.metadata.namespace, seen.metadata.name)) as KeyVaCluster | undefined;
    const approval = cluster?.metadata.annotations?.[APPROVE_UNSAFE_RECOVERY];
    if (cluster === undefined || approval === undefined) return;
    const target = parseApproval(approval);
    const members = target === undefined ? [] : await Promise.all(seeds.map((a) => this.ask(a, target)));
    const d = decideQuorumRecovery(approval, members);
    const key = `${cluster.metadata.namespace}/${cluster.metadata.name}`;
    switch (d.kind) {
      case 'none':
        return;
      case 'wait':
        this.o.log.info({ cluster: key, approval }, d.message);
        return;
      case 'refuse':
        this.o.log.warn({ cluster: key, approval, reason: d.reason }, d.message);
        await this.o.events.record(cluster, 'Warning', `UnsafeRecovery${d.reason}`, d.message);
        await this.condition(cluster, 'False', d.reason, d.message);
        await this.consume(cluster, approval, `refused (${d.reason})`);
        return;
      case 'recover':
        await this.recover(cluster, approval, d);
        return;
    }
  }

  private async recover(cluster: KeyVaCluster, approval: string, d: Extract<GateDecision, { kind: 'recover' }>): Promise<void> {
    const what = describeTarget(d.target);
    const key = `${cluster.metadata.namespace}/${cluster.metadata.name}`;
    this.o.log.warn({ cluster: key, target: what, node: d.nodeId, survivors: d.survivors }, 'approved UNSAFE quorum-loss recovery: calling the survivor');
    let res: UnsafeRecoverPartitionResponseOut;
    try {
      res = await this.o.admin.call<UnsafeRecoverPartitionResponseOut>(
        d.address,
        'UnsafeRecoverPartition',
        {
          partitionId: d.target.metaGroup ? 0 : d.target.partitionId,
          metaGroup: d.target.metaGroup,
          survivingReplicas: d.survivors,
          confirmDataLoss: true,
        },
        RECOVER_DEADLINE_MS,
      );
    } catch (e) {
      const err = e as Error & { code?: string; details?: Record<string, string> };
      const message = `unsafe recovery of ${what} on ${d.nodeId} failed: ${err.code ?? 'ERROR'}: ${err.message}`;
      await this.o.events.record(cluster, 'Warning', 'UnsafeRecoveryFailed', message);
      if (err.code === 'CONDITION_FAILED' || err.code === 'INVALID_ARGUMENT' || err.code === 'WRONG_PARTITION') {
        // The node refused against its own view: the approval is used up; a human looks again.
        await this.condition(cluster, 'False', 'Refused', message);
        await this.consume(cluster, approval, `refused by ${d.nodeId} (${err.details?.reason ?? err.code})`);
        return;
      }
      // Outcome unknown: keep the approval; the next reconcile asks again (idempotent on the node).
      await this.condition(cluster, 'Unknown', 'CallFailed', message);
      throw e;
    }
    const message = res.changed
      ? `unsafe recovery of ${what} on ${d.nodeId}: voters now ${res.voters.join(',')} (removed ${res.removed.join(',') || 'none'}), leader ${res.leader || '(none yet)'}. ${res.dataLossWarning}`
      : `${what} already had voters ${res.voters.join(',')} and leader ${res.leader || '(none yet)'}: nothing changed`;
    await this.o.events.record(cluster, 'Warning', 'UnsafeRecoveryDone', message);
    await this.condition(cluster, 'True', 'Recovered', message);
    await this.consume(cluster, approval, `recovered on ${d.nodeId} (last index ${res.lastIndex}, commit ${res.commitIndex}, term ${res.lastTerm})`);
  }

  private async ask(address: string, target: ApprovalTarget): Promise<MemberAnswer> {
    try {
      const [health, r] = await Promise.all([
        this.o.admin.call<{ nodeId: string }>(address, 'Health', {}, PROBE_DEADLINE_MS),
        this.o.admin.call<LocalReplicaResponseOut>(
          address,
          'LocalReplica',
          { partitionId: target.metaGroup ? 0 : target.partitionId, metaGroup: target.metaGroup },
          PROBE_DEADLINE_MS,
        ),
      ]);
      return {
        address,
        nodeId: health.nodeId,
        replica: { hosted: r.hosted, leader: r.leader, lastIndex: Number(r.lastIndex), lastTerm: Number(r.lastTerm), voters: r.voters },
      };
    } catch {
      return { address, nodeId: undefined, replica: undefined };
    }
  }

  /** Removes the approval (only if it still has the value acted on) and records how it ended. */
  private async consume(cluster: KeyVaCluster, approval: string, outcome: string): Promise<void> {
    const path = (k: string) => `/metadata/annotations/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    const consumed = `${approval}: ${outcome} at ${new Date(this.o.now()).toISOString()}`;
    const hasConsumed = cluster.metadata.annotations?.[UNSAFE_RECOVERY_CONSUMED] !== undefined;
    try {
      await this.o.client.jsonPatch(RESOURCES.KeyVaCluster, cluster.metadata.namespace, cluster.metadata.name, [
        { op: 'test', path: path(APPROVE_UNSAFE_RECOVERY), value: approval },
        { op: 'remove', path: path(APPROVE_UNSAFE_RECOVERY) },
        { op: hasConsumed ? 'replace' : 'add', path: path(UNSAFE_RECOVERY_CONSUMED), value: consumed.slice(0, 1024) },
      ]);
    } catch (e) {
      // Changed or removed meanwhile (a new approval is a new decision), or the cluster is gone.
      if (!isPreconditionFailed(e) && !isNotFound(e)) throw e;
    }
  }

  private async condition(cluster: KeyVaCluster, status: 'True' | 'False' | 'Unknown', reason: string, message: string): Promise<void> {
    try {
      await this.o.client.apply(
        {
          apiVersion: cluster.apiVersion,
          kind: cluster.kind,
          metadata: { name: cluster.metadata.name, namespace: cluster.metadata.namespace },
          status: {
            conditions: [
              {
                type: QUORUM_RECOVERY_CONDITION,
                status,
                observedGeneration: cluster.metadata.generation ?? 0,
                lastTransitionTime: new Date(this.o.now()).toISOString(),
                reason,
                message: message.slice(0, 2048),
              },
            ],
          },
        },
        { subresource: 'status', fieldManager: QUORUM_RECOVERY_FIELD_MANAGER },
      );
    } catch (e) {
      if (!isNotFound(e)) this.o.log.warn({ err: (e as Error).message }, 'could not record the QuorumRecovery condition');
    }
  }
}
