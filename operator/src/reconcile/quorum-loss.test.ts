import { describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../api/constants.ts';
import type { ClusterCondition } from '../api/keyva-cluster.ts';
import { conditionOf } from './conditions.ts';
import { canonicalJson } from './hash.ts';
import { QUORUM_LOSS_GRACE_MS, quorumLoss } from './quorum-loss.ts';
import { reconcile } from './reconcile.ts';
import { statusChanged } from './status-diff.ts';
import { cluster, FakeWorld } from './testing/fake-world.ts';
import type { DataPlaneView, LeaderlessGroup } from './types.ts';

/** A running 3-member cluster whose data plane is settled. */
function running(): FakeWorld {
  const w = new FakeWorld(cluster({ nodes: 3 }));
  w.settle();
  w.dataPlane = dataPlane(w, []);
  w.settle();
  return w;
}

function dataPlane(w: FakeWorld, noLeader: readonly LeaderlessGroup[]): DataPlaneView {
  return {
    nodes: w.memberIds().map((id) => ({ id, state: 'active', leaderOf: 1 })),
    changing: false,
    movesDone: 0,
    movesTotal: 0,
    blockers: [],
    noLeader,
  };
}

/** The gate's condition as the API server shows it after its own server-side apply. */
const gateCondition: ClusterCondition = {
  type: 'QuorumRecovery',
  status: 'True',
  observedGeneration: 1,
  lastTransitionTime: '2026-01-01T00:00:00.000Z',
  reason: 'Recovered',
  message: 'unsafe recovery of partition 3 on kv-bbbxx: voters now kv-bbbxx',
};

describe('status of an unchanged cluster carrying the QuorumRecovery condition (a condition the reconciler does not own)', () => {
  it('produces no status write, pass after pass', () => {
    const w = running();
    const status = w.cluster.status;
    expect(status).toBeDefined();
    // What the API server returns: the reconciler's three conditions and the gate's one (a list map by type).
    w.cluster = { ...w.cluster, status: { ...status, conditions: [...(status?.conditions ?? []), gateCondition] } };
    for (let i = 0; i < 3; i++) {
      const r = reconcile(w.cluster, w.observed(), w.now + i * 60_000);
      expect(r.status).toBeDefined();
      // Comparing the whole status (as before) would write every pass: the gate's condition is not in it.
      expect(canonicalJson(r.status)).not.toBe(canonicalJson(w.cluster.status));
      expect(statusChanged(w.cluster.status, r.status ?? {})).toBe(false);
      expect(conditionOf(r.status?.conditions, 'Degraded')?.status).toBe('False');
    }
  });

  it('still writes when something the reconciler owns changes, and never writes the gate condition itself', () => {
    const w = running();
    w.cluster = { ...w.cluster, status: { ...w.cluster.status, conditions: [...(w.cluster.status?.conditions ?? []), gateCondition] } };
    const [id] = w.memberIds();
    w.autoReady = false;
    w.pods.set(id as string, { ...(w.pods.get(id as string) as NonNullable<ReturnType<typeof w.pods.get>>), ready: false });
    const r = reconcile(w.cluster, w.observed(), w.now);
    expect(statusChanged(w.cluster.status, r.status ?? {})).toBe(true);
    expect(r.status?.conditions?.map((c) => c.type)).toEqual(['Ready', 'Progressing', 'Degraded']);
  });
});

describe('Degraded=QuorumLost: a group without a leader past the grace (LESSONS #11)', () => {
  it('a short gap (an election) is not reported, but the cluster is looked at again when the grace ends', () => {
    const w = running();
    w.dataPlane = dataPlane(w, [{ group: 3, sinceMs: w.now - 10_000 }]);
    const r = reconcile(w.cluster, w.observed(), w.now);
    expect(conditionOf(r.status?.conditions, 'Degraded')).toMatchObject({ status: 'False' });
    expect(r.requeueAfterMs).toBe(QUORUM_LOSS_GRACE_MS - 10_000);
  });

  it('a partition leaderless past the grace: Degraded=QuorumLost naming it and the exact approval, nothing done', () => {
    const w = running();
    const since = w.now - QUORUM_LOSS_GRACE_MS - 5_000;
    w.dataPlane = dataPlane(w, [
      { group: 5, sinceMs: since },
      { group: 3, sinceMs: since },
    ]);
    const r = reconcile(w.cluster, w.observed(), w.now);
    const d = conditionOf(r.status?.conditions, 'Degraded');
    expect(d).toMatchObject({ status: 'True', reason: 'QuorumLost' });
    expect(d?.message).toContain(`partition 3 has had no leader since ${new Date(since).toISOString()}`);
    expect(d?.message).toContain('also without a leader: partition 5');
    expect(d?.message).toContain(`kubectl annotate keyvacluster kv ${ANNOTATIONS.approveUnsafeRecovery}=3`);
    expect(d?.message).toContain('docs/operations.md, runbook "Lost quorum"');
    expect(d?.message).toMatch(/gone for good/);
    // Nothing destructive: no action at all for a settled cluster.
    expect(r.actions).toEqual([]);
    expect(r.requeueAfterMs).toBeLessThanOrEqual(10_000);
    // The message does not change with time (no status write per pass).
    const later = reconcile({ ...w.cluster, status: r.status }, w.observed(), w.now + 30_000);
    expect(statusChanged(r.status, later.status ?? {})).toBe(false);
  });

  it('the meta group comes first (recovered before the partitions), and wins over lost member volumes', () => {
    const w = running();
    const [a, b] = w.memberIds();
    // Two members lost their volumes as well: still QuorumLost first (the data is unavailable).
    for (const id of [a, b]) w.pvcs.delete(`data-${id}`);
    const since = w.now - QUORUM_LOSS_GRACE_MS;
    w.dataPlane = dataPlane(w, [
      { group: 0, sinceMs: since },
      { group: 'meta', sinceMs: since },
    ]);
    const r = reconcile(w.cluster, w.observed(), w.now);
    const d = conditionOf(r.status?.conditions, 'Degraded');
    expect(d).toMatchObject({ status: 'True', reason: 'QuorumLost' });
    expect(d?.message).toMatch(/^the meta group has had no leader/);
    expect(d?.message).toContain(`${ANNOTATIONS.approveUnsafeRecovery}=meta`);
    expect(d?.message).toContain('recover it first');
    // The lost volumes still block their replacement on their own approval; no pod of theirs is touched.
    expect(r.status?.currentOperation?.blockedBy).toContain(ANNOTATIONS.approveReplaceMembers);
    expect(r.actions.filter((x) => x.type === 'delete')).toEqual([]);
  });

  it('the grace is a setting; once every group has a leader again the condition clears', () => {
    const w = running();
    w.dataPlane = dataPlane(w, [{ group: 'meta', sinceMs: w.now - 3_000 }]);
    expect(conditionOf(reconcile(w.cluster, w.observed(), w.now).status?.conditions, 'Degraded')?.reason).not.toBe('QuorumLost');
    const lost = reconcile(w.cluster, w.observed(), w.now, { quorumLossGraceMs: 2_000 });
    expect(conditionOf(lost.status?.conditions, 'Degraded')?.reason).toBe('QuorumLost');
    w.dataPlane = dataPlane(w, []);
    const back = reconcile({ ...w.cluster, status: lost.status }, w.observed(), w.now + 1000, { quorumLossGraceMs: 2_000 });
    expect(conditionOf(back.status?.conditions, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
  });

  it('quorumLoss lists at most 11 groups by name', () => {
    const groups: LeaderlessGroup[] = Array.from({ length: 20 }, (_, i) => ({ group: i, sinceMs: 0 }));
    const q = quorumLoss('kv', { nodes: [], changing: false, movesDone: 0, movesTotal: 0, blockers: [], noLeader: groups }, QUORUM_LOSS_GRACE_MS);
    expect(q.condition?.message).toContain('partition 10 and 9 more');
    expect(q.recheckInMs).toBeUndefined();
  });
});
