/**
 * Which Raft groups of a cluster have no leader, and since when: the input of `Degraded=QuorumLost`
 * (operator/src/reconcile/quorum-loss.ts; LESSONS #11). Fed by the cluster's placement loop:
 *  - a fresh observation (the map answered linearizably, so the meta group has a leader): each
 *    partition whose leader nobody reports is leaderless;
 *  - an observation that failed: the loop asks each member it knows for its own meta replica
 *    (`LocalReplica`, answered locally). The meta group is leaderless when some member hosting it
 *    answers and none knows a leader; when nobody answers, nothing is claimed (unknown).
 * A group keeps its first "since" while it stays leaderless, and is forgotten once it has a leader.
 */
import type { LocalReplicaResponseOut } from '@keyva/proto';
import type { AdminCaller } from '../dataplane/admin-client.ts';
import type { LeaderlessGroup } from '../reconcile/types.ts';

const PROBE_DEADLINE_MS = 2000;

export class LeaderlessGroups {
  private readonly since = new Map<'meta' | number, number>();

  /** A fresh observation: the meta group has a leader; `partitions` as observed. */
  observed(partitions: readonly { readonly id: number; readonly leader?: string | undefined }[], nowMs: number): void {
    const leaderless = new Set(partitions.filter((p) => p.leader === undefined).map((p) => p.id));
    this.since.delete('meta');
    for (const g of [...this.since.keys()]) if (g !== 'meta' && !leaderless.has(g)) this.since.delete(g);
    for (const id of leaderless) if (!this.since.has(id)) this.since.set(id, nowMs);
  }

  /**
   * The observation failed: what the members answered about their meta replica (undefined: no
   * answer). Partitions are unknown until the next fresh observation and keep what they had.
   */
  metaAnswers(answers: readonly ({ readonly hosted: boolean; readonly leader: string } | undefined)[], nowMs: number): void {
    const hosting = answers.filter((a) => a?.hosted === true);
    if (hosting.length === 0) return; // nobody answers: unknown, claim nothing
    if (hosting.some((a) => a?.leader !== '')) this.since.delete('meta');
    else if (!this.since.has('meta')) this.since.set('meta', nowMs);
  }

  list(): LeaderlessGroup[] {
    return [...this.since].map(([group, sinceMs]) => ({ group, sinceMs }));
  }
}

/** Asks each address for its own meta replica (local answers; no quorum needed). */
export async function askMetaReplicas(admin: AdminCaller, addresses: readonly string[]): Promise<({ hosted: boolean; leader: string } | undefined)[]> {
  return Promise.all(
    addresses.map(async (a) => {
      try {
        const r = await admin.call<LocalReplicaResponseOut>(a, 'LocalReplica', { partitionId: 0, metaGroup: true }, PROBE_DEADLINE_MS);
        return { hosted: r.hosted, leader: r.leader };
      } catch {
        return undefined;
      }
    }),
  );
}
