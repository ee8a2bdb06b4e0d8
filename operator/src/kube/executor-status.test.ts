import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ClusterCondition, KeyVaCluster } from '../api/keyva-cluster.ts';
import { Expectations } from '../controller/expectations.ts';
import { reconcile } from '../reconcile/reconcile.ts';
import { cluster, FakeWorld } from '../reconcile/testing/fake-world.ts';
import { Executor } from './executor.ts';
import type { KubeClient } from './kube-client.ts';
import { QUORUM_RECOVERY_CONDITION } from './quorum-recovery.ts';

/** A client that only records status applies (a settled cluster needs no other write). */
function recordingClient() {
  const applies: unknown[] = [];
  const client = {
    async apply(body: unknown, o: { subresource?: string }) {
      applies.push({ body, subresource: o.subresource });
      return { metadata: { resourceVersion: String(applies.length + 10) } };
    },
  };
  return { client: client as unknown as KubeClient, applies };
}

const gateCondition: ClusterCondition = {
  type: QUORUM_RECOVERY_CONDITION,
  status: 'True',
  observedGeneration: 1,
  lastTransitionTime: '2026-01-01T00:00:00.000Z',
  reason: 'Recovered',
  message: 'unsafe recovery of the meta group on kv-bbbxx',
};

describe('executor: the QuorumRecovery condition written by the gate causes no status patch', () => {
  it('an unchanged cluster carrying it gets no status write; a real change does get one', async () => {
    const w = new FakeWorld(cluster({ nodes: 3 }));
    w.settle();
    w.dataPlane = { nodes: w.memberIds().map((id) => ({ id, state: 'active', leaderOf: 1 })), changing: false, movesDone: 0, movesTotal: 0, blockers: [] };
    w.settle();
    const withGate: KeyVaCluster = { ...w.cluster, status: { ...w.cluster.status, conditions: [...(w.cluster.status?.conditions ?? []), gateCondition] } };
    const { client, applies } = recordingClient();
    const ex = new Executor({
      client,
      events: { record: async () => {} },
      expectations: new Expectations(() => w.now),
      log: pino({ level: 'silent' }),
      isLeader: () => true,
    });
    for (let i = 0; i < 3; i++) {
      const r = reconcile(withGate, w.observed(), w.now + i * 1000);
      expect(r.actions).toEqual([]);
      expect(await ex.execute('ns/kv', withGate, r)).toBe(0);
    }
    expect(applies).toEqual([]);
    // A member going unready is a change the reconciler owns: one status write.
    const [id] = w.memberIds();
    w.pods.set(id as string, { ...(w.pods.get(id as string) as NonNullable<ReturnType<typeof w.pods.get>>), ready: false });
    expect(await ex.execute('ns/kv', withGate, reconcile(withGate, w.observed(), w.now))).toBe(1);
    expect(applies).toHaveLength(1);
  });
});
