/**
 * reconcile(cluster, observed, now) -> {actions, status, requeueAfterMs}. PURE: no I/O, no clock,
 * no randomness (new member ids come from `observed.freshSuffixes`). The executor does the I/O.
 *
 * Safety rules (DESIGN §7, LESSONS):
 *  - a member is a durable id (pod name = --node-id = id; its volume is data-<id>), never an
 *    ordinal or an IP (#7); a deleted pod is recreated with the same id and volume;
 *  - one topology operation at a time (#6); scale-up adds one member at a time, once every
 *    member is ready (make before break, #4/#12);
 *  - scale-down marks the newest members for decommission; the cluster's placement control loop
 *    drains them one at a time (refused up front, reason in status, when below RF or without
 *    capacity: the planner's refusal) and a member's pod and volume go only once the data plane
 *    marked it removed after its own report of zero replicas (#1/#3/#5: unknown = not safe);
 *  - members beyond the founders start with --join (founders are fixed in status.founders);
 *  - a member whose volume vanished is never silently replaced: a human approves it by
 *    annotation (#11);
 *  - deletion follows deletionPolicy; Retain keeps every volume (#2).
 */
import { ANNOTATIONS, FINALIZER } from '../api/constants.ts';
import { parseDurationMs } from '../api/duration.ts';
import {
  type ClusterCondition,
  type ClusterOperation,
  type KeyVaCluster,
  type KeyVaClusterSpec,
  type KeyVaClusterStatus,
  type MemberStatus,
  type Phase,
  type PlacementStatus,
  type RemovedVolumeStatus,
  specWithDefaults,
} from '../api/keyva-cluster.ts';
import { type ConditionInput, setCondition } from './conditions.ts';
import { type ClusterRef, clientService, configMap, hashOf, memberPod, memberPvc, peersService, podDisruptionBudget, removedMemberPvc } from './manifests.ts';
import { isValidSuffix, names } from './names.ts';
import { quorumLoss } from './quorum-loss.ts';
import type {
  Action,
  DataPlaneView,
  KubeManifest,
  Observed,
  PlacementTarget,
  PodView,
  PvcView,
  ReconcileOptions,
  ReconcileResult,
  RemovedPvcView,
} from './types.ts';

/** Planner refusals that mean the data is not placed as the spec wants (Degraded), not transient waits. */
const PLACEMENT_PROBLEMS = new Set(['ZONES_IMPOSSIBLE', 'NOT_ENOUGH_NODES']);
/** Loop blockers that are part of normal progress (a move waiting its turn, a leader being elected). */
const TRANSIENT_BLOCKERS = new Set(['WAITING_FOR_OPERATION', 'NO_LEADER']);

/** Planner refusals that block a decommission until the spec changes (not transient waits). */
const DECOMMISSION_REFUSALS = new Set(['BELOW_REPLICATION_FACTOR', 'INSUFFICIENT_CAPACITY', 'ZONES_IMPOSSIBLE', 'UNKNOWN_NODE']);

export const REQUEUE = {
  /** Something is moving (pods starting, an operation running): look again soon. */
  activeMs: 2_000,
  /** Blocked on a human or on the data plane: re-check now and then. */
  blockedMs: 30_000,
  /** Steady state: periodic re-check of the data plane summary. */
  steadyMs: 60_000,
} as const;

interface Member {
  readonly id: string;
  readonly pvc: PvcView | undefined;
  readonly pod: PodView | undefined;
  /** Known before (in status) but its volume is gone or going. */
  readonly volumeLost: boolean;
}

interface Ctx {
  readonly cluster: KeyVaCluster;
  readonly ref: ClusterRef;
  readonly spec: KeyVaClusterSpec;
  readonly prev: KeyVaClusterStatus;
  readonly observed: Observed;
  readonly nowMs: number;
  readonly nowIso: string;
  readonly generation: number;
  /** Every member's --peers (fixed at creation). */
  founders: readonly string[];
  readonly opts: ReconcileOptions;
}

export function reconcile(cluster: KeyVaCluster, observed: Observed, nowMs: number, opts: ReconcileOptions = {}): ReconcileResult {
  const ctx: Ctx = {
    cluster,
    ref: { name: cluster.metadata.name, namespace: cluster.metadata.namespace, uid: cluster.metadata.uid },
    spec: specWithDefaults(cluster.spec),
    prev: cluster.status ?? {},
    observed,
    nowMs,
    nowIso: new Date(nowMs).toISOString(),
    generation: cluster.metadata.generation ?? 0,
    founders: cluster.status?.founders ?? [],
    opts,
  };
  if (cluster.metadata.deletionTimestamp) return finalize(ctx);
  return converge(ctx);
}

/** Members: ids known from status (in order), then volumes found by label (adopted, oldest first). */
export function deriveMembers(prev: KeyVaClusterStatus, pvcs: readonly PvcView[], pods: readonly PodView[]): Member[] {
  const known = (prev.members ?? []).map((m) => m.id);
  const pvcOf = new Map(pvcs.map((p) => [p.memberId, p]));
  const podOf = new Map(pods.map((p) => [p.memberId, p]));
  const adopted = pvcs
    .filter((p) => !known.includes(p.memberId))
    .sort((a, b) => (a.creationTimestamp ?? '').localeCompare(b.creationTimestamp ?? '') || a.memberId.localeCompare(b.memberId))
    .map((p) => p.memberId);
  return [...known, ...adopted].map((id) => {
    const pvc = pvcOf.get(id);
    return { id, pvc, pod: podOf.get(id), volumeLost: !pvc || pvc.deleting };
  });
}

function isReady(m: Member, observed: Observed): boolean {
  if (!m.pod || m.pod.deleting || !m.pod.ready) return false;
  const probe = observed.probes.find((p) => p.memberId === m.id);
  // A pod that answers with another node id is not this member (LESSONS #3).
  return !(probe?.reachable && probe.nodeId !== undefined && probe.nodeId !== m.id);
}

function memberState(m: Member, ready: boolean): MemberStatus['state'] {
  if (m.volumeLost) return 'VolumeLost';
  if (m.pod?.deleting) return 'Terminating';
  if (ready) return 'Ready';
  if (m.pod && m.pod.phase === 'Running') return 'Running';
  return 'Pending';
}

function approvedReplacements(cluster: KeyVaCluster): Set<string> {
  const raw = cluster.metadata.annotations?.[ANNOTATIONS.approveReplaceMembers] ?? '';
  return new Set(
    raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

function converge(ctx: Ctx): ReconcileResult {
  const { cluster, ref, spec, prev, observed } = ctx;
  const actions: Action[] = [];
  const finalizers = cluster.metadata.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) {
    actions.push({
      type: 'addFinalizer',
      finalizers,
      resourceVersion: cluster.metadata.resourceVersion ?? '',
      reason: 'FinalizerAdded',
      message: `added ${FINALIZER} so that deletion follows deletionPolicy ${spec.deletionPolicy}`,
    });
  }

  const retiredBefore = new Set(prev.retiredMembers ?? []);
  const all = deriveMembers(prev, observed.pvcs, observed.pods).filter((m) => !retiredBefore.has(m.id));
  // Clusters from before status.founders: the members they had are the founders.
  if (ctx.founders.length === 0 && all.length > 0) ctx.founders = all.map((m) => m.id);
  const dp = observed.dataPlane;
  const dpNode = new Map((dp?.nodes ?? []).map((n) => [n.id, n]));
  const approved = approvedReplacements(cluster);
  const lost = all.filter((m) => m.volumeLost);
  const replaced = lost.filter((m) => approved.has(m.id));
  const blockedLost = lost.filter((m) => !approved.has(m.id));
  // Members the cluster keeps: replaced ones are forgotten (their data was abandoned by a human).
  const members = all.filter((m) => !replaced.some((r) => r.id === m.id));
  const healthy = members.filter((m) => !m.volumeLost);
  const readyOf = new Map(members.map((m) => [m.id, isReady(m, observed)]));
  const readyCount = healthy.filter((m) => readyOf.get(m.id)).length;

  let operation: ClusterOperation | undefined;

  if (spec.pause) {
    const kept = quarantine(ctx, all, undefined);
    return finish(ctx, { actions, members: all, readyOf, operation: undefined, paused: true, retired: [], kept });
  }
  // Members being scaled away (the newest first) and those the data plane already removed.
  const leaving = healthy.length > spec.nodes ? healthy.slice(spec.nodes).reverse() : [];
  const removedIds = new Set(leaving.filter((m) => dpNode.get(m.id)?.state === 'removed').map((m) => m.id));

  // Pods of retired members (abandoned or removed earlier) that are still around go.
  for (const p of observed.pods) {
    if (retiredBefore.has(p.memberId) && !p.deleting) {
      actions.push(deletePod(p, 'RetiredMemberPod', `member ${p.memberId} is retired: removing its pod`));
    }
  }
  // A retired member's volume still labelled as a member (its relabelling failed, or an older
  // operator retired it) becomes a removed member's volume: kept, never adopted again.
  for (const v of observed.pvcs) {
    if (retiredBefore.has(v.memberId) && !v.deleting) {
      actions.push({
        type: 'apply',
        object: removedMemberPvc(ref, spec, v.memberId, ctx.nowIso),
        reason: 'KeptRemovedVolume',
        message: `member ${v.memberId} is retired: its PersistentVolumeClaim ${v.name} is kept as a removed member's volume (${keepText(spec)})`,
      });
    }
  }
  // Volumes of removed members: kept for the grace period, then deleted per deletionPolicy.
  const kept = quarantine(ctx, all, actions);

  // Children that do not depend on membership: apply when missing or different.
  for (const m of [configMap(ref, spec), peersService(ref), clientService(ref), podDisruptionBudget(ref)]) {
    const seen = observed.children.find((c) => c.kind === m.kind && c.name === m.metadata.name);
    if (!seen || seen.deleting || seen.specHash !== hashOf(m)) {
      actions.push({ type: 'apply', object: m, reason: seen ? `Updated${m.kind}` : `Created${m.kind}`, message: `${m.kind} ${m.metadata.name}` });
    }
  }

  // Abandon approved lost members: their pods go, their ids are never reused.
  for (const m of replaced) {
    if (m.pod && !m.pod.deleting) {
      actions.push(
        deletePod(m.pod, 'MemberReplaced', `member ${m.id} lost its volume; replacement approved by ${ANNOTATIONS.approveReplaceMembers}: removing its pod`),
      );
    }
  }

  // Every healthy member keeps its volume (re-applied if its desired shape changed) and gets its pod back if it is gone.
  for (const m of healthy) {
    // A member being scaled away runs only while the data plane says it holds data (active or
    // draining); once removed, or while unknown, it is not restarted.
    const leavingState = leaving.includes(m) ? dpNode.get(m.id)?.state : 'active';
    if (leavingState !== 'active' && leavingState !== 'draining') continue;
    const pvc = memberPvc(ref, spec, m.id);
    if (m.pvc && m.pvc.specHash !== hashOf(pvc)) {
      actions.push({ type: 'apply', object: pvc, reason: 'UpdatedVolume', message: `PersistentVolumeClaim ${pvc.metadata.name} (member ${m.id})` });
    }
    if (!m.pod) {
      actions.push({
        type: 'apply',
        object: memberPod(ref, spec, m.id, ctx.founders),
        reason: prevKnows(prev, m.id) ? 'RecreatedPod' : 'CreatedPod',
        message: `pod ${m.id} for member ${m.id} on volume ${names.pvc(m.id)}`,
      });
    } else if (!m.pod.deleting && (m.pod.phase === 'Failed' || m.pod.phase === 'Succeeded')) {
      actions.push(deletePod(m.pod, 'RestartingMember', `pod ${m.id} is ${m.pod.phase}; it comes back with the same id and volume`));
    }
  }

  // Topology: one operation at a time.
  const allReady = healthy.length > 0 && readyCount === healthy.length && healthy.every((m) => m.pod && !m.pod.deleting);
  const creating = isCreating(prev) && (healthy.length < spec.nodes || !allReady);
  if (blockedLost.length > 0) {
    const ids = blockedLost.map((m) => m.id).join(',');
    operation = {
      type: 'ReplaceMember',
      blockedBy: `member(s) ${ids} lost their volume; replacing them abandons their data. After checking (docs/operations.md, runbook "lost member volume"), approve with: kubectl annotate keyvacluster ${ref.name} ${ANNOTATIONS.approveReplaceMembers}=${ids}`,
    };
  } else if (members.length === 0 && (prev.members ?? []).length === 0) {
    // A new cluster: every initial member at once.
    const ids = newIds(ref.name, spec.nodes, retiredIds(prev, all, observed), observed.freshSuffixes);
    ctx.founders = ids;
    for (const id of ids) pushNewMember(actions, ref, spec, id, ctx.founders);
    operation = { type: 'Create', progress: { done: 0, total: spec.nodes }, message: `creating ${ids.length} member(s): ${ids.join(', ')}` };
  } else if (healthy.length < spec.nodes) {
    const type = creating ? 'Create' : replaced.length > 0 ? 'ReplaceMember' : 'ScaleUp';
    if (allReady || creating) {
      const [id] = newIds(ref.name, 1, retiredIds(prev, all, observed), observed.freshSuffixes);
      if (id) pushNewMember(actions, ref, spec, id, ctx.founders);
      operation = { type, progress: { done: readyCount, total: spec.nodes }, message: id ? `adding member ${id}` : 'waiting for a fresh member id' };
    } else {
      operation = {
        type,
        progress: { done: readyCount, total: spec.nodes },
        message: `waiting for ${notReadyIds(healthy, readyOf)} to be ready before adding a member`,
      };
    }
  } else if (healthy.length > spec.nodes) {
    operation = scaleDown(ctx, healthy, leaving, removedIds, actions);
  } else if (!allReady && creating) {
    operation = { type: 'Create', progress: { done: readyCount, total: spec.nodes }, message: `waiting for ${notReadyIds(healthy, readyOf)} to be ready` };
  } else if (
    dp !== undefined &&
    (prev.currentOperation?.type === 'ScaleUp' || prev.currentOperation?.type === 'Create') &&
    (dp.changing || !healthy.every((m) => dpNode.get(m.id)?.state === 'active'))
  ) {
    // The new member is up: the operation lasts until it registered and the data plane moved its share onto it.
    operation = rebalancing(prev.currentOperation.type, dp);
  } else {
    operation = rollingUpgrade(ctx, healthy, readyOf, actions, dp);
  }

  if (replaced.length > 0 && !operation) {
    operation = { type: 'ReplaceMember', message: `replacing ${replaced.map((m) => m.id).join(', ')}` };
  }
  if (operation?.blockedBy && operation.blockedBy !== prev.currentOperation?.blockedBy) {
    actions.push({ type: 'event', eventType: 'Warning', reason: `${operation.type}Blocked`, message: operation.blockedBy });
  }
  return finish(ctx, {
    actions,
    members: members.filter((m) => !removedIds.has(m.id)),
    readyOf,
    operation,
    paused: false,
    retired: [...replaced.map((m) => m.id), ...removedIds],
    kept,
    placement: placementTarget(
      spec,
      leaving.map((m) => m.id),
      healthy.map((m) => m.id),
      observed,
    ),
  });
}

/** The placement loop's target from the spec (CRD terms; the loop host maps it to the planner's spec). */
export function placementTarget(spec: KeyVaClusterSpec, decommission: readonly string[], members: readonly string[], observed: Observed): PlacementTarget {
  const zones: Record<string, string> = {};
  for (const id of members) {
    const z = observed.memberZones?.[id];
    if (z) zones[id] = z;
  }
  return {
    replicationFactor: spec.replicationFactor,
    decommission,
    zoneSpread: spec.topology.spread === 'Required' ? 'required' : 'preferred',
    zones,
    rebalance: {
      enabled: spec.rebalance.enabled,
      movesPerMinuteMax: spec.rebalance.movesPerMinuteMax,
      movesInFlightMax: spec.rebalance.movesInFlightMax,
      leaderBalance: spec.rebalance.leaderBalance,
    },
    split: {
      auto: spec.split.policy === 'Auto',
      splitBytes: spec.split.splitBytes,
      mergeBytes: spec.split.mergeBytes,
      splitsPerMinuteMax: spec.split.splitsPerMinuteMax,
      cooldownMs: spec.split.cooldownSeconds * 1000,
    },
  };
}

function movesText(dp: DataPlaneView): string {
  const blockers = dp.blockers.length > 0 ? `; blocked: ${dp.blockers.map((b) => `${b.code}: ${b.message}`).join('; ')}` : '';
  return `replica moves ${dp.movesDone}/${dp.movesTotal}${blockers}${dp.error ? `; data plane: ${dp.error}` : ''}`;
}

function rebalancing(type: 'ScaleUp' | 'Create', dp: DataPlaneView): ClusterOperation {
  return { type, progress: { done: dp.movesDone, total: dp.movesTotal }, message: `rebalancing: ${movesText(dp)}` };
}

function prevKnows(prev: KeyVaClusterStatus, id: string): boolean {
  return (prev.members ?? []).some((m) => m.id === id);
}

function isCreating(prev: KeyVaClusterStatus): boolean {
  return prev.phase === undefined || prev.phase === 'Creating';
}

function notReadyIds(ms: readonly Member[], readyOf: Map<string, boolean>): string {
  return (
    ms
      .filter((m) => !readyOf.get(m.id))
      .map((m) => m.id)
      .join(', ') || 'members'
  );
}

/**
 * Ids that may never be given to a new member: current, lost and retired ones, and those of every
 * removed member's volume still around (even if status forgot them): a removed identity is never
 * resurrected, with or without its old data.
 */
function retiredIds(prev: KeyVaClusterStatus, all: readonly Member[], observed: Observed): string[] {
  return [...(prev.retiredMembers ?? []), ...all.map((m) => m.id), ...(observed.removedPvcs ?? []).map((v) => v.memberId)];
}

function newIds(cluster: string, n: number, taken0: readonly string[], suffixes: readonly string[]): string[] {
  const taken = new Set(taken0);
  const out: string[] = [];
  for (const s of suffixes) {
    if (out.length >= n) break;
    const id = names.memberId(cluster, s);
    if (!isValidSuffix(s) || taken.has(id)) continue;
    taken.add(id);
    out.push(id);
  }
  return out;
}

function pushNewMember(actions: Action[], ref: ClusterRef, spec: KeyVaClusterSpec, id: string, founders: readonly string[]): void {
  // The volume first: a member exists once its volume does (the durable record of its id).
  actions.push({
    type: 'apply',
    object: memberPvc(ref, spec, id),
    reason: 'CreatedVolume',
    message: `PersistentVolumeClaim ${names.pvc(id)} for new member ${id}`,
  });
  actions.push({ type: 'apply', object: memberPod(ref, spec, id, founders), reason: 'CreatedPod', message: `pod ${id} for new member ${id}` });
}

/**
 * Scale-down: the leaving members (newest first) are the placement loop's decommission list. A
 * member whose registry entry the loop marked removed (after the node itself reported zero
 * replicas) loses its pod and, under deletionPolicy Delete, its volume; under Retain the volume
 * stays (and its id is retired, never adopted again).
 */
function scaleDown(ctx: Ctx, healthy: readonly Member[], leaving: readonly Member[], removedIds: ReadonlySet<string>, actions: Action[]): ClusterOperation {
  const { spec, observed } = ctx;
  const dp = observed.dataPlane;
  const progress = { done: removedIds.size, total: healthy.length - spec.nodes };
  const ids = leaving.map((m) => m.id).join(', ');
  if (spec.nodes < spec.replicationFactor) {
    return {
      type: 'ScaleDown',
      progress,
      blockedBy: `scale-down from ${healthy.length} to ${spec.nodes} members refused: ${spec.nodes} nodes would be below replicationFactor ${spec.replicationFactor}. No pod or volume was touched; set spec.nodes back to ${healthy.length} to clear this.`,
    };
  }
  for (const m of leaving) {
    if (!removedIds.has(m.id)) continue;
    if (m.pod && !m.pod.deleting) {
      actions.push(deletePod(m.pod, 'RemovedMember', `member ${m.id} was drained and the data plane confirmed it holds no replica: removing its pod`));
    }
    // The volume is not deleted now (LESSONS #1, #4): it is kept, relabelled as a removed
    // member's, and deleted after the grace period only under deletionPolicy Delete.
    if (m.pvc && !m.pvc.deleting) {
      actions.push({
        type: 'apply',
        object: removedMemberPvc(ctx.ref, spec, m.id, ctx.nowIso),
        reason: spec.deletionPolicy === 'Retain' ? 'RetainedVolume' : 'QuarantinedVolume',
        message: `kept PersistentVolumeClaim ${m.pvc.name} of removed member ${m.id}, no longer labelled as a member (${keepText(spec)})`,
      });
    }
  }
  if (dp === undefined) {
    return { type: 'ScaleDown', progress, message: `waiting for the data plane's view before draining ${ids} (unknown counts as not safe)` };
  }
  const refusal = dp.blockers.find((b) => DECOMMISSION_REFUSALS.has(b.code) && (b.nodeId === undefined || leaving.some((m) => m.id === b.nodeId)));
  if (refusal) {
    return {
      type: 'ScaleDown',
      progress,
      blockedBy: `scale-down from ${healthy.length} to ${spec.nodes} members refused by the placement planner (${refusal.code}): ${refusal.message}. Nothing was drained or deleted; set spec.nodes back to ${healthy.length} to clear this.`,
    };
  }
  const draining = leaving.find((m) => dpNode(dp, m.id)?.state === 'draining');
  const what = draining ? `draining ${draining.id}` : `decommissioning ${ids}`;
  return { type: 'ScaleDown', progress, message: `${what}: ${movesText(dp)}` };
}

function keepText(spec: KeyVaClusterSpec): string {
  return spec.deletionPolicy === 'Delete'
    ? `deletionPolicy Delete: deleted after ${spec.storage.retainRemovedVolumesFor}`
    : 'deletionPolicy Retain: kept until deleted by hand';
}

function retentionMs(spec: KeyVaClusterSpec): number {
  try {
    return parseDurationMs(spec.storage.retainRemovedVolumesFor, 'spec.storage.retainRemovedVolumesFor');
  } catch {
    return Number.POSITIVE_INFINITY; // unreadable (the API server validates it): never delete
  }
}

interface Kept {
  readonly volumes: RemovedVolumeStatus[];
  /** Earliest time a kept volume becomes due for deletion (to requeue then), if any. */
  readonly nextDueMs?: number | undefined;
}

/**
 * The quarantine of removed members' volumes (LESSONS #1, #4). Each one is listed in status. Under
 * deletionPolicy Delete, a volume the cluster owns is deleted once `retainRemovedVolumesFor` has
 * passed since it was kept, and only while: no pod of that member exists, the id is no member of
 * the cluster, and the data plane's registry (a fresh view, unknown = not safe) does not list the
 * node as active or draining. Under Retain a volume the cluster still owns (the policy changed during
 * the grace period) is released instead. `actions` undefined (paused): report only.
 */
function quarantine(ctx: Ctx, members: readonly Member[], actions: Action[] | undefined): Kept {
  const { spec, observed, ref } = ctx;
  const nowMs = ctx.nowMs;
  const keepMs = retentionMs(spec);
  const dp = observed.dataPlane;
  const volumes: RemovedVolumeStatus[] = [];
  let nextDueMs: number | undefined;
  const removed = [...(observed.removedPvcs ?? [])].filter((v) => !v.deleting).sort((a, b) => a.memberId.localeCompare(b.memberId));
  for (const v of removed) {
    const at = v.removedAt === undefined ? Number.NaN : Date.parse(v.removedAt);
    const removedAtMs = Number.isFinite(at) ? at : nowMs;
    if (!Number.isFinite(at)) {
      // No readable removal time: the clock starts now.
      actions?.push({
        type: 'apply',
        object: removedMemberPvc(ref, spec, v.memberId, ctx.nowIso),
        reason: 'KeptRemovedVolume',
        message: `PersistentVolumeClaim ${v.name} of removed member ${v.memberId} had no ${ANNOTATIONS.removedAt}: kept from now (${keepText(spec)})`,
      });
    }
    const entry: RemovedVolumeStatus = { member: v.memberId, pvc: v.name, removedAt: new Date(removedAtMs).toISOString() };
    volumes.push(entry);
    if (spec.deletionPolicy === 'Retain') {
      if (v.ownedByCluster) actions?.push(releaseRemoved(ref.uid, v));
      continue;
    }
    // Delete: only what this cluster owns (a volume kept under Retain, or by an earlier cluster of
    // this name, has no owner reference to it and stays).
    if (!v.ownedByCluster || !Number.isFinite(keepMs)) continue;
    const dueMs = removedAtMs + keepMs;
    entry.deleteAfter = new Date(dueMs).toISOString();
    if (nowMs < dueMs) {
      nextDueMs = Math.min(nextDueMs ?? dueMs, dueMs);
      continue;
    }
    const node = dp?.nodes.find((n) => n.id === v.memberId);
    const safe =
      dp !== undefined &&
      dp.error === undefined &&
      (node === undefined || node.state === 'removed') &&
      !observed.pods.some((p) => p.memberId === v.memberId) &&
      !members.some((m) => m.id === v.memberId);
    if (safe) {
      actions?.push({
        type: 'delete',
        kind: 'PersistentVolumeClaim',
        name: v.name,
        uid: v.uid,
        reason: 'DeletedRemovedVolume',
        message: `deletionPolicy Delete: deleting PersistentVolumeClaim ${v.name} of member ${v.memberId}, removed by the data plane at ${entry.removedAt}; kept for ${spec.storage.retainRemovedVolumesFor}`,
      });
    }
  }
  return { volumes, nextDueMs };
}

function releaseRemoved(ownerUid: string, v: RemovedPvcView): Action {
  return {
    type: 'releasePvc',
    name: v.name,
    uid: v.uid,
    ownerUid,
    reason: 'RetainedVolume',
    message: `deletionPolicy Retain: kept PersistentVolumeClaim ${v.name} of removed member ${v.memberId} and removed its owner reference`,
  };
}

function dpNode(dp: DataPlaneView, id: string): DataPlaneView['nodes'][number] | undefined {
  return dp.nodes.find((n) => n.id === id);
}

function rollingUpgrade(
  ctx: Ctx,
  healthy: readonly Member[],
  readyOf: Map<string, boolean>,
  actions: Action[],
  dp: DataPlaneView | undefined,
): ClusterOperation | undefined {
  const { ref, spec } = ctx;
  const desiredHash = new Map(healthy.map((m) => [m.id, hashOf(memberPod(ref, spec, m.id, ctx.founders))]));
  const outdated = healthy.filter((m) => m.pod && m.pod.specHash !== desiredHash.get(m.id));
  if (outdated.length === 0) return undefined;
  const upToDateReady = healthy.filter((m) => m.pod && !m.pod.deleting && m.pod.specHash === desiredHash.get(m.id) && readyOf.get(m.id)).length;
  const progress = { done: upToDateReady, total: healthy.length };
  const unavailable = healthy.filter((m) => !readyOf.get(m.id) || !m.pod || m.pod.deleting);
  let victim: Member | undefined;
  if (unavailable.length === 0) victim = outdated[0];
  else if (unavailable.length === 1 && outdated.includes(unavailable[0] as Member) && !unavailable[0]?.pod?.deleting) victim = unavailable[0];
  if (!victim?.pod) {
    return { type: 'RollingUpgrade', progress, message: `waiting for ${notReadyIds(healthy, readyOf)} to be ready (at most one member down at a time)` };
  }
  // Leaders first: the executor moves the victim's leaderships away (bounded) before the delete.
  const leads = dp === undefined ? 0 : (dpNode(dp, victim.id)?.leaderOf ?? 0);
  actions.push(
    deletePod(
      victim.pod,
      'RollingMember',
      `restarting member ${victim.id} with image ${spec.image} (same id and volume; ${outdated.length} member(s) outdated; it led ${leads} partition(s), transferred away first)`,
      { transferLeadersFirst: true },
    ),
  );
  return { type: 'RollingUpgrade', progress, message: `restarting ${victim.id}` };
}

interface Finish {
  readonly actions: Action[];
  readonly members: readonly Member[];
  readonly readyOf: Map<string, boolean>;
  readonly operation: ClusterOperation | undefined;
  readonly paused: boolean;
  /** Members abandoned in this pass (by approval) or removed by the data plane (scale-down). */
  readonly retired: readonly string[];
  /** Volumes of removed members still kept. */
  readonly kept: Kept;
  readonly placement?: ReconcileResult['placement'];
}

function finish(ctx: Ctx, f: Finish): ReconcileResult {
  const { spec, prev, observed, nowIso, nowMs, generation } = ctx;
  const memberStatus: MemberStatus[] = f.members
    // A member is recorded once its volume was seen (or it was recorded before): status.members is the list of ids with data.
    .filter((m) => m.pvc || prevKnows(prev, m.id))
    .map((m) => {
      const ready = f.readyOf.get(m.id) ?? false;
      const s: MemberStatus = { id: m.id, pvc: names.pvc(m.id), state: memberState(m, ready), ready };
      if (m.pod?.podIP) s.podIP = m.pod.podIP;
      if (m.pod?.image) s.image = m.pod.image;
      return s;
    });
  const healthy = memberStatus.filter((m) => m.state !== 'VolumeLost');
  const readyNodes = healthy.filter((m) => m.ready).length;
  const lost = memberStatus.filter((m) => m.state === 'VolumeLost');
  const mismatched = observed.probes.filter((p) => p.reachable && p.nodeId !== undefined && p.nodeId !== p.memberId);

  let operation = f.operation;
  if (operation) {
    const startedAt = prev.currentOperation?.type === operation.type && prev.currentOperation.startedAt ? prev.currentOperation.startedAt : nowIso;
    operation = { ...operation, startedAt };
  }

  const allReady = healthy.length > 0 && readyNodes === healthy.length && lost.length === 0;
  let phase: Phase;
  if (f.paused) phase = 'Paused';
  else if (operation?.blockedBy) phase = 'Blocked';
  else if (operation?.type === 'Create') phase = 'Creating';
  else if (operation?.type === 'ScaleUp' || operation?.type === 'ScaleDown') phase = 'Scaling';
  else if (operation?.type === 'ReplaceMember') phase = 'Recovering';
  else if (operation?.type === 'RollingUpgrade') phase = 'Upgrading';
  else if (!allReady) phase = 'Recovering';
  else phase = 'Running';

  // Partition summary from the data plane (a member's partition map).
  const map = observed.partitionMap;
  const underReplicated = map ? map.partitions.filter((p) => new Set(p.replicas).size < spec.replicationFactor).length : undefined;
  const partitions: NonNullable<KeyVaClusterStatus['partitions']> = { total: map ? map.partitions.length : spec.partitions };
  if (map) {
    partitions.underReplicated = underReplicated as number;
    partitions.mapEpoch = map.epoch;
    partitions.source = map.source;
  }

  const ready: ConditionInput = allReady
    ? { type: 'Ready', status: 'True', reason: 'AllMembersReady', message: `${readyNodes}/${healthy.length} members ready` }
    : {
        type: 'Ready',
        status: 'False',
        reason: healthy.length === 0 ? 'NoMembers' : lost.length ? 'MemberVolumeLost' : 'MembersNotReady',
        message: `${readyNodes}/${healthy.length} members ready${notReadyList(healthy)}`,
      };

  const placement = placementStatus(observed.dataPlane, f.paused);
  const placementProblems = (observed.dataPlane?.blockers ?? []).filter((b) => PLACEMENT_PROBLEMS.has(b.code));

  let progressing: ConditionInput;
  if (f.paused)
    progressing = { type: 'Progressing', status: 'False', reason: 'Paused', message: 'spec.pause is true: the operator does not act on this cluster' };
  else if (operation?.blockedBy) progressing = { type: 'Progressing', status: 'False', reason: `${operation.type}Blocked`, message: operation.blockedBy };
  else if (operation) progressing = { type: 'Progressing', status: 'True', reason: operation.type, message: operation.message ?? operation.type };
  else if (!allReady) progressing = { type: 'Progressing', status: 'True', reason: 'RecoveringMembers', message: 'waiting for member pods to be ready' };
  else if (placement?.state === 'Moving')
    progressing = { type: 'Progressing', status: 'True', reason: 'Rebalancing', message: placement.message ?? 'replicas are moving' };
  else progressing = { type: 'Progressing', status: 'False', reason: 'Idle', message: 'spec reached' };

  // A group without a leader past the grace comes first: its data is unavailable (LESSONS #11).
  const ql = quorumLoss(ctx.ref.name, observed.dataPlane, nowMs, ctx.opts.quorumLossGraceMs);
  let degraded: ConditionInput;
  if (ql.condition) degraded = ql.condition;
  else if (lost.length)
    degraded = {
      type: 'Degraded',
      status: 'True',
      reason: 'MemberVolumeLost',
      message: `volume of ${lost.map((m) => m.id).join(', ')} is gone (see currentOperation.blockedBy)`,
    };
  else if (mismatched.length)
    degraded = {
      type: 'Degraded',
      status: 'True',
      reason: 'NodeIdentityMismatch',
      message: mismatched.map((p) => `pod of member ${p.memberId} answers as node ${p.nodeId}`).join('; '),
    };
  else if (observed.lastError) degraded = { type: 'Degraded', status: 'True', reason: 'ReconcileError', message: observed.lastError.slice(0, 1000) };
  else if (phase === 'Recovering' && !operation)
    degraded = {
      type: 'Degraded',
      status: 'True',
      reason: 'MembersUnavailable',
      message: `${readyNodes}/${healthy.length} members ready${notReadyList(healthy)}`,
    };
  else if (placementProblems.length)
    degraded = {
      type: 'Degraded',
      status: 'True',
      reason: 'PlacementBlocked',
      message: placementProblems
        .slice(0, 3)
        .map((b) => `${b.code}: ${b.message}`)
        .join('; '),
    };
  else if (underReplicated)
    degraded = {
      type: 'Degraded',
      status: 'True',
      reason: 'PartitionsUnderReplicated',
      message: `${underReplicated}/${partitions.total} partitions have fewer than ${spec.replicationFactor} replicas in the partition map`,
    };
  else degraded = { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no problem detected' };

  const conditions: ClusterCondition[] = [ready, progressing, degraded].map((c) => setCondition(prev.conditions, c, generation, nowIso));
  const images = new Set(healthy.map((m) => m.image).filter((x): x is string => x !== undefined));

  const status: KeyVaClusterStatus = {
    phase,
    observedGeneration: generation,
    conditions,
    nodes: healthy.length,
    readyNodes,
    members: memberStatus,
    partitions,
  };
  if (images.size === 1 && healthy.every((m) => m.image)) status.image = [...images][0] as string;
  if (spec.version && status.image === spec.image) status.version = spec.version;
  if (underReplicated !== undefined) status.underReplicatedPartitions = underReplicated;
  if (operation) status.currentOperation = operation;
  const retired = [...new Set([...(prev.retiredMembers ?? []), ...f.retired])].slice(-1000);
  if (retired.length) status.retiredMembers = retired;
  if (ctx.founders.length) status.founders = [...ctx.founders];
  if (placement) status.placement = placement;
  if (f.kept.volumes.length) status.removedVolumes = f.kept.volumes.slice(0, 100);

  let requeueAfterMs: number;
  if (f.paused || operation?.blockedBy) requeueAfterMs = REQUEUE.blockedMs;
  else if (operation || !allReady || f.actions.length > 0) requeueAfterMs = REQUEUE.activeMs;
  else requeueAfterMs = REQUEUE.steadyMs;
  // Come back when a kept volume's grace period ends.
  if (f.kept.nextDueMs !== undefined) requeueAfterMs = Math.min(requeueAfterMs, Math.max(1000, f.kept.nextDueMs - nowMs));
  // Come back when a leaderless group's grace ends (to report it), and while one is reported.
  if (ql.recheckInMs !== undefined) requeueAfterMs = Math.min(requeueAfterMs, ql.recheckInMs);
  if (ql.condition) requeueAfterMs = Math.min(requeueAfterMs, REQUEUE.activeMs * 5);
  return { actions: f.actions, status, requeueAfterMs, placement: f.placement };
}

/** The placement loop's state for status and `kubectl get` (undefined: no members, no loop expected). */
function placementStatus(dp: DataPlaneView | undefined, paused: boolean): PlacementStatus | undefined {
  if (paused) return { state: 'Paused', message: 'spec.pause is true: the placement loop is stopped' };
  if (dp === undefined) return { state: 'Unknown', message: 'no observation of the data plane yet' };
  const blockers = dp.blockers.slice(0, 10).map((b) => ({ code: b.code, message: b.message.slice(0, 500), ...(b.nodeId ? { member: b.nodeId } : {}) }));
  const hard = dp.blockers.filter((b) => !TRANSIENT_BLOCKERS.has(b.code));
  const out: PlacementStatus = { state: 'Idle' };
  if (dp.movesTotal > 0) out.progress = { done: dp.movesDone, total: dp.movesTotal };
  if (blockers.length) out.blockers = blockers;
  if (dp.error !== undefined) return { ...out, state: 'Unreachable', message: dp.error.slice(0, 500) };
  // While something moves, refusals are usually steps of it (a drain waiting for its replicas to leave).
  if (dp.changing) return { ...out, state: 'Moving', message: movesText(dp).slice(0, 500) };
  if (hard.length) return { ...out, state: 'Blocked', message: `${hard[0]?.code}: ${hard[0]?.message}`.slice(0, 500) };
  return { ...out, message: dp.movesTotal > 0 ? `settled; last change moved ${dp.movesDone}/${dp.movesTotal} replicas` : 'settled' };
}

function notReadyList(ms: readonly MemberStatus[]): string {
  const ids = ms.filter((m) => !m.ready).map((m) => `${m.id} (${m.state})`);
  return ids.length ? `; not ready: ${ids.join(', ')}` : '';
}

/** Deletion: stop the pods, then apply deletionPolicy to the volumes, then release the finalizer. */
function finalize(ctx: Ctx): ReconcileResult {
  const { cluster, spec, observed, prev, nowIso, generation, ref } = ctx;
  const finalizers = cluster.metadata.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) return { actions: [], status: undefined, requeueAfterMs: undefined };
  const actions: Action[] = [];
  const policy = spec.deletionPolicy;
  for (const p of observed.pods) {
    if (!p.deleting) {
      actions.push(deletePod(p, 'StoppingMember', `cluster deleted: stopping member ${p.memberId} (deletionPolicy ${policy})`));
    }
  }
  let message: string;
  let done = false;
  // Kept volumes of removed members follow the policy too, but only those this cluster owns.
  const removedOwned = (observed.removedPvcs ?? []).filter((v) => v.ownedByCluster);
  if (observed.pods.length > 0) {
    message = `waiting for ${observed.pods.length} member pod(s) to stop`;
  } else if (policy === 'Retain') {
    for (const v of observed.pvcs.filter((x) => x.ownedByCluster)) {
      actions.push({
        type: 'releasePvc',
        name: v.name,
        uid: v.uid,
        ownerUid: ref.uid,
        reason: 'RetainedVolume',
        message: `deletionPolicy Retain: kept PersistentVolumeClaim ${v.name} (member ${v.memberId}) and removed its owner reference`,
      });
    }
    for (const v of removedOwned) actions.push(releaseRemoved(ref.uid, v));
    done = observed.pvcs.every((x) => !x.ownedByCluster) && removedOwned.length === 0;
    message = `deletionPolicy Retain: keeping ${observed.pvcs.length + (observed.removedPvcs ?? []).length} volume(s)`;
  } else {
    const doomed = [...observed.pvcs.map((v) => ({ v, whose: 'member' })), ...removedOwned.map((v) => ({ v, whose: 'removed member' }))];
    for (const { v, whose } of doomed.filter((x) => !x.v.deleting)) {
      actions.push({
        type: 'delete',
        kind: 'PersistentVolumeClaim',
        name: v.name,
        uid: v.uid,
        reason: 'DeletedVolume',
        message: `deletionPolicy Delete: deleting PersistentVolumeClaim ${v.name} of ${whose} ${v.memberId}`,
      });
    }
    done = observed.pvcs.length === 0 && removedOwned.length === 0;
    message = `deletionPolicy Delete: ${observed.pvcs.length + removedOwned.length} volume(s) left to delete`;
  }
  if (done) {
    actions.push({
      type: 'removeFinalizer',
      finalizers,
      reason: 'Deleted',
      message: policy === 'Retain' ? `members stopped; ${observed.pvcs.length} volume(s) retained` : 'members stopped and volumes deleted',
    });
    return { actions, status: undefined, requeueAfterMs: undefined };
  }
  const operation: ClusterOperation = {
    type: 'Delete',
    startedAt: prev.currentOperation?.type === 'Delete' && prev.currentOperation.startedAt ? prev.currentOperation.startedAt : nowIso,
    message,
  };
  const status: KeyVaClusterStatus = {
    ...prev,
    phase: 'Deleting',
    observedGeneration: generation,
    currentOperation: operation,
    conditions: [
      setCondition(prev.conditions, { type: 'Ready', status: 'False', reason: 'Deleting', message }, generation, nowIso),
      setCondition(prev.conditions, { type: 'Progressing', status: 'True', reason: 'Delete', message }, generation, nowIso),
      setCondition(prev.conditions, { type: 'Degraded', status: 'False', reason: 'Deleting', message: 'the cluster is being deleted' }, generation, nowIso),
    ],
  };
  return { actions, status, requeueAfterMs: REQUEUE.activeMs };
}

export type { KubeManifest };

/** Deletes a pod, the uid as precondition (never a newer pod of the same name). */
function deletePod(
  pod: { readonly name: string; readonly uid: string },
  reason: string,
  message: string,
  opts: { transferLeadersFirst?: boolean } = {},
): Action {
  return { type: 'delete', kind: 'Pod', name: pod.name, uid: pod.uid, reason, message, ...opts };
}
