/** Conditions with apimachinery semantics: lastTransitionTime moves only when the status flips. */
import type { ClusterCondition, ConditionType } from '../api/keyva-cluster.ts';

export interface ConditionInput {
  readonly type: ConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
}

export function setCondition(previous: readonly ClusterCondition[] | undefined, next: ConditionInput, generation: number, nowIso: string): ClusterCondition {
  const prev = previous?.find((c) => c.type === next.type);
  const lastTransitionTime = prev && prev.status === next.status ? prev.lastTransitionTime : nowIso;
  return { type: next.type, status: next.status, observedGeneration: generation, lastTransitionTime, reason: next.reason, message: next.message };
}

export function conditionOf(conditions: readonly ClusterCondition[] | undefined, type: ConditionType): ClusterCondition | undefined {
  return conditions?.find((c) => c.type === type);
}
