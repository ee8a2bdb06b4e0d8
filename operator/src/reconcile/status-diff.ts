/**
 * Whether the reconciler's status differs from what the cluster shows, counting only what the
 * reconciler owns. Other writers put their own conditions into the same `status.conditions`
 * (a list map keyed by `type`, so a server-side apply of the reconciler's three conditions leaves
 * theirs alone): the quorum-recovery gate's `QuorumRecovery` (operator/src/kube/quorum-recovery.ts).
 * Comparing them too would write the status on every pass once such a condition exists.
 */
import { CONDITION_TYPES, type KeyVaClusterStatus } from '../api/keyva-cluster.ts';
import { canonicalJson } from './hash.ts';

const OWN: ReadonlySet<string> = new Set(CONDITION_TYPES);

/** The status without the conditions the reconciler does not own. */
export function ownedStatus(status: KeyVaClusterStatus | undefined): KeyVaClusterStatus {
  const s = status ?? {};
  if (s.conditions === undefined) return s;
  return { ...s, conditions: s.conditions.filter((c) => OWN.has(c.type)) };
}

/** True when writing `next` would change what the reconciler owns in `current`. */
export function statusChanged(current: KeyVaClusterStatus | undefined, next: KeyVaClusterStatus): boolean {
  return canonicalJson(ownedStatus(next)) !== canonicalJson(ownedStatus(current));
}
