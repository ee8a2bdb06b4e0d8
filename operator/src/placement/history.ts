/**
 * The controller's short memory of what it issued, for damping only (cooldowns, load-split cap,
 * leader-transfer cooldown). Losing it in a crash weakens damping until the meta group's
 * timestamps take over; it never weakens safety, which is decided from the observation alone.
 */
import type { HistoryEntry, PlannerHistory, Step } from './types.ts';

export const HISTORY_RETENTION_MS = 24 * 3600_000;
export const HISTORY_ENTRIES_MAX = 10_000;

/** Adds the damped steps the executor just issued and forgets entries older than the retention. */
export function recordIssued(history: PlannerHistory, issued: readonly Step[], nowMs: number): PlannerHistory {
  const added: HistoryEntry[] = [];
  for (const s of issued) {
    if (s.type === 'split') {
      // Both halves' ranges just changed: each cools down (the right half is a new partition).
      const kind = s.trigger === 'load' ? 'loadSplit' : 'split';
      added.push({ kind, partitionId: s.partitionId, atMs: nowMs });
      added.push({ kind: 'split', partitionId: s.newPartitionId, atMs: nowMs });
    } else if (s.type === 'merge') {
      added.push({ kind: 'merge', partitionId: s.left, atMs: nowMs });
      added.push({ kind: 'merge', partitionId: s.right, atMs: nowMs });
    } else if (s.type === 'transferLeader') added.push({ kind: 'transferLeader', partitionId: s.partitionId, atMs: nowMs });
    else if (s.type === 'addLearner') added.push({ kind: 'moveStart', partitionId: s.partitionId, atMs: nowMs });
  }
  return [...history.filter((h) => nowMs - h.atMs < HISTORY_RETENTION_MS), ...added].slice(-HISTORY_ENTRIES_MAX);
}
