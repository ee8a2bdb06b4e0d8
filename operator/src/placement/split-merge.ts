/**
 * Split and merge policy (LESSONS #13): split on size, on load, or on request; merge small
 * neighbours. Hysteresis by construction: a merge needs the SUM of both neighbours below the
 * merge thresholds, which `resolveSpec` keeps at most half the split thresholds, so a merged
 * partition is far from splitting and the two halves of a split are too big to merge back.
 * Cooldowns per partition (from the meta group's `rangeChangedAtMs` and the controller's
 * history, whichever is later) and a cap on load splits per minute damp the rest.
 */
import { type ClusterView, HASH_SPACE_END } from './cluster-view.ts';
import { type PartitionId, type PartitionView, type PlannerHistory, type Refusal, RefusalCode, type Step } from './types.ts';

export const MINUTE_MS = 60_000;

/** The id a split gives its right half: the meta group's counter, else max id + 1. */
export function nextPartitionId(view: ClusterView): PartitionId {
  const max = view.observation.partitions.reduce((m, p) => Math.max(m, p.id), -1);
  return Math.max(view.observation.nextPartitionId ?? 0, max + 1) as PartitionId;
}

/** When the partition's range last changed (meta group timestamp or a split/merge we issued). */
export function lastRangeChangeMs(p: PartitionView, history: PlannerHistory): number {
  let t = p.rangeChangedAtMs ?? Number.NEGATIVE_INFINITY;
  for (const h of history) if (h.partitionId === p.id && (h.kind === 'split' || h.kind === 'loadSplit' || h.kind === 'merge') && h.atMs > t) t = h.atMs;
  return t;
}

/** The split point: the data plane's hint if strictly inside the range, else the midpoint. */
export function splitPoint(p: PartitionView, hint?: bigint): bigint | undefined {
  if (p.end - p.start < 2n) return undefined;
  const h = hint ?? p.splitHint;
  if (h !== undefined && h > p.start && h < p.end) return h;
  return p.start + (p.end - p.start) / 2n;
}

/** Load splits in the last minute: the history's count, or (after a restart) what the map shows. */
export function recentLoadSplits(view: ClusterView, history: PlannerHistory): number {
  const since = view.nowMs - MINUTE_MS;
  const fromHistory = history.filter((h) => h.kind === 'loadSplit' && h.atMs > since).length;
  const changed = view.observation.partitions.filter((p) => p.rangeChangedAtMs !== undefined && p.rangeChangedAtMs > since).length;
  return Math.max(fromHistory, Math.ceil(changed / 2));
}

export interface SplitChoice {
  readonly step: Step & { readonly type: 'split' };
  readonly kind: 'split' | 'loadSplit';
}

/** Refusals for split requests that can never be carried out (unknown partition, bad point). */
export function invalidSplitRequests(view: ClusterView): Refusal[] {
  const out: Refusal[] = [];
  for (const r of view.spec.splitRequests) {
    const p = view.partitions.get(r.partitionId);
    if (!p) {
      // Already split at that point? Then the request is done, not invalid.
      if (r.atHash !== undefined && view.observation.partitions.some((q) => q.start === r.atHash)) continue;
      out.push({ code: RefusalCode.InvalidSplit, partitionId: r.partitionId, message: `split request names partition ${r.partitionId}, which does not exist` });
    } else if (r.atHash !== undefined && !(r.atHash > p.start && r.atHash < p.end) && p.end !== r.atHash) {
      out.push({
        code: RefusalCode.InvalidSplit,
        partitionId: p.id,
        message: `split point ${r.atHash} is not strictly inside partition ${p.id} [${p.start}, ${p.end})`,
      });
    }
  }
  return out;
}

/** The first split the policy wants among `stable` partitions (requests, then size, then load). */
export function chooseSplit(view: ClusterView, stable: (p: PartitionView) => boolean, history: PlannerHistory): SplitChoice | undefined {
  const { split } = view.spec;
  const mk = (p: PartitionView, at: bigint, trigger: 'request' | 'size' | 'load', reason: string): SplitChoice => ({
    kind: trigger === 'load' ? 'loadSplit' : 'split',
    step: {
      type: 'split',
      partitionId: p.id,
      atHash: at,
      trigger,
      newPartitionId: nextPartitionId(view),
      expectedGeneration: p.generation,
      expectedEpoch: view.observation.epoch,
      reason,
    },
  });
  for (const r of view.spec.splitRequests) {
    const p = view.partitions.get(r.partitionId);
    if (!p || !stable(p) || p.end === r.atHash) continue;
    if (r.atHash !== undefined && !(r.atHash > p.start && r.atHash < p.end)) continue;
    const at = r.atHash ?? splitPoint(p);
    if (at !== undefined) return mk(p, at, 'request', `split of partition ${p.id} requested`);
  }
  if (!split.auto) return undefined;
  const cooled = (p: PartitionView) => view.nowMs - lastRangeChangeMs(p, history) >= split.cooldownMs;
  const ordered = [...view.observation.partitions].sort((a, b) => b.sizeBytes - a.sizeBytes || a.id - b.id);
  for (const p of ordered) {
    if (p.sizeBytes < split.sizeBytes || !stable(p) || !cooled(p)) continue;
    const at = splitPoint(p);
    if (at !== undefined) return mk(p, at, 'size', `partition ${p.id} holds ${p.sizeBytes} bytes >= ${split.sizeBytes}`);
  }
  if (recentLoadSplits(view, history) >= split.loadSplitsPerMinuteMax) return undefined;
  const hot = [...view.observation.partitions].sort((a, b) => b.qps - a.qps || a.id - b.id);
  for (const p of hot) {
    if (p.qps < split.qps || !stable(p) || !cooled(p)) continue;
    const at = splitPoint(p);
    if (at !== undefined) return mk(p, at, 'load', `partition ${p.id} serves ${p.qps} qps >= ${split.qps}`);
  }
  return undefined;
}

/**
 * The first pair of adjacent neighbours small enough to merge, chosen from sizes, load and
 * cooldowns only (not from move state), so the choice stays put while their replicas are
 * being co-located.
 */
export function mergeCandidate(view: ClusterView, history: PlannerHistory): readonly [PartitionView, PartitionView] | undefined {
  const { merge } = view.spec;
  if (!merge.enabled || view.observation.partitions.length <= merge.partitionsMin) return undefined;
  const requested = new Set<PartitionId>(view.spec.splitRequests.map((r) => r.partitionId));
  const sorted = [...view.observation.partitions].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const cooled = (p: PartitionView) => view.nowMs - lastRangeChangeMs(p, history) >= merge.cooldownMs;
  for (let i = 0; i + 1 < sorted.length; i++) {
    const a = sorted[i] as PartitionView;
    const b = sorted[i + 1] as PartitionView;
    if (a.end !== b.start || b.end > HASH_SPACE_END) continue;
    if (a.sizeBytes + b.sizeBytes >= merge.sizeBytes || a.qps + b.qps >= merge.qps) continue;
    if (requested.has(a.id) || requested.has(b.id) || !cooled(a) || !cooled(b)) continue;
    return [a, b];
  }
  return undefined;
}
