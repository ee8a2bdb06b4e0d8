import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FINALIZER } from '../api/constants.ts';
import { specWithDefaults } from '../api/keyva-cluster.ts';
import { conditionOf } from './conditions.ts';
import { memberPod } from './manifests.ts';
import { reconcile } from './reconcile.ts';
import { APPROVE, cluster, FakeWorld } from './testing/fake-world.ts';
import type { Action } from './types.ts';

const kinds = (as: readonly Action[]) => as.map((a) => (a.type === 'apply' ? `apply:${a.object.kind}` : a.type === 'delete' ? `delete:${a.kind}` : a.type));

function running(nodes = 3, spec = {}) {
  const w = new FakeWorld(cluster({ nodes, ...spec }));
  w.settle();
  return w;
}

describe('reconcile: creation', () => {
  it('adds the finalizer, the shared children, then one volume and one pod per member, volume first', () => {
    const w = new FakeWorld(cluster({ nodes: 3 }, { finalizers: [] }));
    const r = reconcile(w.cluster, w.observed(), w.now);
    expect(kinds(r.actions)).toEqual([
      'addFinalizer',
      'apply:ConfigMap',
      'apply:Service',
      'apply:Service',
      'apply:PodDisruptionBudget',
      'apply:PersistentVolumeClaim',
      'apply:Pod',
      'apply:PersistentVolumeClaim',
      'apply:Pod',
      'apply:PersistentVolumeClaim',
      'apply:Pod',
    ]);
    expect(r.status?.phase).toBe('Creating');
    expect(r.status?.currentOperation?.type).toBe('Create');
    expect(conditionOf(r.status?.conditions, 'Ready')?.status).toBe('False');
  });

  it('is deterministic: same cluster, observation and time give the same result', () => {
    const w = new FakeWorld(cluster({ nodes: 3 }));
    expect(reconcile(w.cluster, w.observed(), w.now)).toEqual(reconcile(w.cluster, w.observed(), w.now));
  });

  it('pods are named by durable member ids <cluster>-<suffix>, with --node-id = id and a volume per id', () => {
    const w = running(3);
    const ids = w.memberIds();
    expect(ids).toHaveLength(3);
    for (const id of ids) {
      expect(id).toMatch(/^kv-[a-z0-9]{5}$/);
      expect(w.pods.get(id)?.memberId).toBe(id);
      expect(w.pvcs.get(`data-${id}`)?.memberId).toBe(id);
    }
    const args = (
      memberPod({ name: 'kv', namespace: 'ns', uid: 'u' }, specWithDefaults(w.cluster.spec), ids[0] as string, ids).spec as {
        containers: { args: string[] }[];
      }
    ).containers[0]?.args;
    expect(args?.[args.indexOf('--node-id') + 1]).toBe(ids[0]);
    expect(w.cluster.status?.founders).toEqual(ids);
    expect(args?.[args.indexOf('--peers') + 1]).toBe(ids.map((id) => `${id}=${id}.kv-peers.ns.svc:7379`).join(','));
    expect(args).not.toContain('--join');
  });

  it('reaches Running with Ready=True, Progressing=False and a steady requeue', () => {
    const w = running(3, { replicationFactor: 1 });
    const r = w.step();
    expect(r.actions).toEqual([]);
    expect(r.status?.phase).toBe('Running');
    expect(r.status?.readyNodes).toBe(3);
    expect(conditionOf(r.status?.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'AllMembersReady', observedGeneration: 1 });
    expect(conditionOf(r.status?.conditions, 'Progressing')).toMatchObject({ status: 'False', reason: 'Idle' });
    expect(conditionOf(r.status?.conditions, 'Degraded')).toMatchObject({ status: 'False' });
    expect(r.requeueAfterMs).toBe(60_000);
  });

  it('applies shared children only when missing or changed', () => {
    const w = running(3);
    expect(w.step().actions).toEqual([]);
    w.setSpec({ observability: { logLevel: 'debug' } as never });
    const r = w.step();
    expect(kinds(r.actions)).toContain('apply:ConfigMap');
    expect(kinds(r.actions)).not.toContain('apply:Service');
  });
});

describe('reconcile: conditions', () => {
  it('lastTransitionTime moves only when a condition flips', () => {
    const w = running(3, { replicationFactor: 1 });
    const t1 = conditionOf(w.step().status?.conditions, 'Ready')?.lastTransitionTime;
    const t2 = conditionOf(w.step().status?.conditions, 'Ready')?.lastTransitionTime;
    expect(t2).toBe(t1);
    const [id] = w.memberIds();
    w.pods.set(id as string, { ...w.pods.get(id as string)!, ready: false });
    w.autoReady = false;
    const down = conditionOf(w.step().status?.conditions, 'Ready');
    expect(down?.status).toBe('False');
    expect(down?.lastTransitionTime).not.toBe(t1);
  });

  it('reports under-replicated partitions from the data plane honestly (Degraded, reason PartitionsUnderReplicated)', () => {
    const w = running(3);
    const [id] = w.memberIds();
    w.partitionMap = { source: id as string, epoch: 1, partitions: Array.from({ length: 8 }, (_, i) => ({ id: i, replicas: [id as string] })) };
    const r = w.step();
    expect(r.status?.underReplicatedPartitions).toBe(8);
    expect(r.status?.partitions).toMatchObject({ total: 8, underReplicated: 8, source: id });
    expect(conditionOf(r.status?.conditions, 'Degraded')).toMatchObject({ status: 'True', reason: 'PartitionsUnderReplicated' });
    expect(conditionOf(r.status?.conditions, 'Ready')?.status).toBe('True');
  });

  it('a pod answering with another node id is not ready and marks the cluster Degraded (LESSONS #3)', () => {
    const w = running(3);
    const [a, b] = w.memberIds();
    w.probes.set(a as string, { memberId: a as string, reachable: true, nodeId: b as string, partitionsHosted: 64 });
    const r = w.step();
    expect(r.status?.members?.find((m) => m.id === a)?.ready).toBe(false);
    expect(conditionOf(r.status?.conditions, 'Degraded')).toMatchObject({ status: 'True', reason: 'NodeIdentityMismatch' });
  });

  it('the previous pass error shows as Degraded=ReconcileError', () => {
    const w = running(3);
    w.lastError = 'PATCH pods/x: 403 forbidden';
    expect(conditionOf(w.step().status?.conditions, 'Degraded')).toMatchObject({ status: 'True', reason: 'ReconcileError' });
  });
});

describe('reconcile: members keep their identity (LESSONS #7)', () => {
  it('a deleted pod comes back with the same id and volume', () => {
    const w = running(3);
    const ids = w.memberIds();
    const victim = ids[1] as string;
    w.pods.delete(victim);
    const r = w.step();
    const applied = r.actions.filter((a) => a.type === 'apply');
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({ reason: 'RecreatedPod', object: { kind: 'Pod', metadata: { name: victim } } });
    expect(r.actions.some((a) => a.type === 'delete')).toBe(false);
    w.settle();
    expect(w.memberIds()).toEqual(ids);
  });

  it('volumes found by label are adopted as members (a retained cluster re-created under the same name)', () => {
    const w = running(3);
    const ids = w.memberIds();
    const fresh = new FakeWorld(cluster({ nodes: 3 }, { uid: 'uid-2' }));
    for (const [k, v] of w.pvcs) fresh.pvcs.set(k, { ...v, ownedByCluster: false });
    fresh.settle();
    expect(new Set(fresh.memberIds())).toEqual(new Set(ids));
    expect([...fresh.pods.keys()].sort()).toEqual([...ids].sort());
  });
});

describe('reconcile: scaling', () => {
  it('scale-up adds one member at a time, each after the previous is ready', () => {
    const w = running(3);
    w.autoReady = false;
    w.setSpec({ nodes: 5 });
    const r1 = w.step();
    expect(kinds(r1.actions)).toEqual(['apply:PersistentVolumeClaim', 'apply:Pod']);
    expect(r1.status?.phase).toBe('Scaling');
    const r2 = w.step(); // new member not ready yet: no second member
    expect(r2.actions.filter((a) => a.type === 'apply')).toHaveLength(0);
    expect(r2.status?.currentOperation?.message).toMatch(/waiting for .* to be ready/);
    w.autoReady = true;
    w.apply({ actions: [], status: undefined, requeueAfterMs: undefined });
    w.settle();
    expect(w.memberIds()).toHaveLength(5);
    expect(new Set(w.memberIds()).size).toBe(5);
    expect(w.step().status?.phase).toBe('Running');
  });

  it('a member added after creation starts with --join and lists the founders plus itself as --peers', () => {
    const w = running(3, { replicationFactor: 3 });
    const founders = w.memberIds();
    w.setSpec({ nodes: 4 });
    w.settle();
    const added = w.memberIds().find((id) => !founders.includes(id)) as string;
    const pod = w.log.find((a) => a.type === 'apply' && a.object.kind === 'Pod' && a.object.metadata.name === added);
    const args = ((pod as unknown as { object: { spec: { containers: { args: string[] }[] } } }).object.spec.containers[0]?.args ?? []) as string[];
    expect(args).toContain('--join');
    expect(args[args.indexOf('--peers') + 1]?.split(',').map((p) => p.split('=')[0])).toEqual([...founders, added]);
    expect(w.cluster.status?.founders).toEqual(founders);
  });

  it('scale-up lasts until the new member registered with the data plane and the loop moved its share', () => {
    const w = running(3, { replicationFactor: 3 });
    const founders = w.memberIds();
    w.setSpec({ nodes: 4 });
    const view = (ids: string[], changing: boolean, movesDone: number) => {
      w.dataPlane = { nodes: ids.map((id) => ({ id, state: 'active', leaderOf: 0 })), changing, movesDone, movesTotal: 6, blockers: [] };
    };
    view(founders, false, 0);
    w.settle();
    expect(w.memberIds()).toHaveLength(4);
    // Not registered yet: still scaling, although nothing moves.
    let r = w.step();
    expect(r.status?.currentOperation?.type).toBe('ScaleUp');
    view(w.memberIds(), true, 2);
    r = w.step();
    expect(r.status?.currentOperation).toMatchObject({ type: 'ScaleUp', progress: { done: 2, total: 6 } });
    expect(r.status?.currentOperation?.message).toContain('rebalancing: replica moves 2/6');
    expect(r.status?.phase).toBe('Scaling');
    view(w.memberIds(), false, 6);
    r = w.step();
    expect(r.status?.currentOperation).toBeUndefined();
    expect(r.status?.phase).toBe('Running');
  });

  it("scale-down refused by the placement planner: nothing deleted, the planner's reason in status, one Warning event (LESSONS #1, #5)", () => {
    const w = running(4, { replicationFactor: 3 });
    const ids = w.memberIds();
    const last = ids[3] as string;
    w.setSpec({ nodes: 3 });
    const message = `removing ${last} needs 900 bytes elsewhere but the other nodes have 10 bytes to spare`;
    w.dataPlane = {
      nodes: ids.map((id) => ({ id, state: 'active', leaderOf: 1 })),
      changing: false,
      movesDone: 0,
      movesTotal: 0,
      blockers: [{ code: 'INSUFFICIENT_CAPACITY', message, nodeId: last }],
    };
    const r = w.step();
    expect(r.placement).toMatchObject({ replicationFactor: 3, decommission: [last] });
    expect(r.actions.filter((a) => a.type !== 'event')).toEqual([]);
    expect(r.actions).toEqual([expect.objectContaining({ type: 'event', eventType: 'Warning', reason: 'ScaleDownBlocked' })]);
    expect(r.status?.phase).toBe('Blocked');
    expect(r.status?.currentOperation?.type).toBe('ScaleDown');
    expect(r.status?.currentOperation?.blockedBy).toContain('INSUFFICIENT_CAPACITY');
    expect(r.status?.currentOperation?.blockedBy).toContain(message);
    expect(conditionOf(r.status?.conditions, 'Progressing')).toMatchObject({ status: 'False', reason: 'ScaleDownBlocked' });
    expect(w.step().actions).toEqual([]);
    expect(w.pods.size).toBe(4);
    expect(w.pvcs.size).toBe(4);
    w.setSpec({ nodes: 4 });
    w.dataPlane = { ...w.dataPlane, blockers: [] };
    const back = w.step();
    expect(back.status?.phase).toBe('Running');
    expect(back.placement?.decommission).toEqual([]);
  });

  it('scale-down below replicationFactor is refused before anything is drained', () => {
    const w = running(3, { replicationFactor: 3 });
    w.setSpec({ nodes: 2 });
    const r = w.step();
    expect(r.status?.currentOperation?.blockedBy).toContain('below replicationFactor 3');
    expect(r.actions.filter((a) => a.type !== 'event')).toEqual([]);
  });

  it('while the data plane is unknown nothing is deleted (LESSONS #3)', () => {
    const w = running(4);
    const last = w.memberIds()[3] as string;
    w.setSpec({ nodes: 3 });
    const r = w.step();
    expect(r.status?.currentOperation?.message).toContain('unknown counts as not safe');
    expect(r.placement?.decommission).toEqual([last]);
    expect(r.actions).toEqual([]);
  });

  for (const policy of ['Delete', 'Retain'] as const) {
    it(`scale-down 5 -> 3 (${policy}): drains the newest members; a pod goes only once the data plane removed it, its volume is kept (quarantine)`, () => {
      const w = running(5, { replicationFactor: 3, deletionPolicy: policy });
      const ids = w.memberIds();
      const [a, b] = [ids[4] as string, ids[3] as string];
      const dp = (states: Record<string, 'active' | 'draining' | 'removed'>, movesDone = 0) => {
        w.dataPlane = {
          nodes: ids.map((id) => ({ id, state: states[id] ?? 'active', leaderOf: 0 })),
          changing: true,
          movesDone,
          movesTotal: 10,
          blockers: [],
        };
      };
      w.setSpec({ nodes: 3 });
      dp({ [a]: 'draining' }, 4);
      let r = w.step();
      expect(r.placement?.decommission).toEqual([a, b]);
      expect(r.actions).toEqual([]);
      expect(r.status?.phase).toBe('Scaling');
      expect(r.status?.currentOperation).toMatchObject({ type: 'ScaleDown', progress: { done: 0, total: 2 } });
      expect(r.status?.currentOperation?.message).toContain(`draining ${a}: replica moves 4/10`);
      // A draining member whose pod died gets it back (it still holds data).
      w.pods.delete(a);
      expect(kinds(w.step().actions)).toEqual(['apply:Pod']);
      dp({ [a]: 'removed', [b]: 'draining' });
      r = w.step();
      expect(kinds(r.actions)).toEqual(['delete:Pod', 'apply:PersistentVolumeClaim']);
      expect(r.status?.retiredMembers).toContain(a);
      expect(r.status?.members?.map((m) => m.id)).not.toContain(a);
      // Removed and retired: never recreated, never adopted again (its volume is kept for now).
      expect(kinds(w.step().actions)).toEqual([]);
      expect(w.pods.has(a)).toBe(false);
      expect(w.pvcs.has(`data-${a}`)).toBe(false);
      expect([...w.removedPvcs.keys()]).toEqual([`data-${a}`]);
      dp({ [a]: 'removed', [b]: 'removed' });
      w.settle();
      dp({ [a]: 'removed', [b]: 'removed' });
      w.dataPlane = { ...(w.dataPlane as NonNullable<typeof w.dataPlane>), changing: false };
      r = w.step();
      expect(w.memberIds()).toEqual(ids.slice(0, 3));
      expect(r.status?.phase).toBe('Running');
      expect(r.status?.nodes).toBe(3);
      expect(r.placement?.decommission).toEqual([]);
    });
  }
});

describe('reconcile: volumes of removed members are kept for a grace period (LESSONS #1, #4)', () => {
  const MIN = 60_000;
  /** 4 members scaled down to 3; the data plane removed the newest. Returns the world and the removed id. */
  function removedOne(spec: Record<string, unknown>) {
    const w = running(4, { replicationFactor: 3, ...spec });
    const ids = w.memberIds();
    const gone = ids[3] as string;
    const dp = (state: 'active' | 'draining' | 'removed', extra: Partial<NonNullable<typeof w.dataPlane>> = {}) => {
      w.dataPlane = {
        nodes: ids.map((id) => ({ id, state: id === gone ? state : 'active', leaderOf: 0 })),
        changing: false,
        movesDone: 0,
        movesTotal: 0,
        blockers: [],
        ...extra,
      };
    };
    w.setSpec({ nodes: 3 });
    dp('removed');
    const removedAtMs = w.now;
    const r = w.step();
    expect(kinds(r.actions)).toEqual(['delete:Pod', 'apply:PersistentVolumeClaim']);
    return { w, ids, gone, dp, removedAtMs };
  }
  const deletes = (as: readonly Action[]) => as.filter((a) => a.type === 'delete' && a.kind === 'PersistentVolumeClaim');

  it('Delete: the volume is kept for retainRemovedVolumesFor, shown in status, then deleted by the executor (injected clock)', () => {
    const { w, gone, removedAtMs } = removedOne({ deletionPolicy: 'Delete', storage: { size: '10Gi', retainRemovedVolumesFor: '10m' } });
    const kept = w.removedPvcs.get(`data-${gone}`);
    expect(kept).toMatchObject({ memberId: gone, ownedByCluster: true, removedAt: new Date(removedAtMs).toISOString() });
    let r = w.step();
    expect(deletes(r.actions)).toEqual([]);
    expect(r.status?.removedVolumes).toEqual([
      { member: gone, pvc: `data-${gone}`, removedAt: new Date(removedAtMs).toISOString(), deleteAfter: new Date(removedAtMs + 10 * MIN).toISOString() },
    ]);
    // It comes back when the grace period ends, not only at the next steady re-check.
    expect(r.requeueAfterMs).toBeLessThanOrEqual(10 * MIN);
    w.now = removedAtMs + 10 * MIN - 1000;
    expect(deletes(w.step().actions)).toEqual([]);
    expect(w.removedPvcs.size).toBe(1);
    w.now = removedAtMs + 10 * MIN;
    r = w.step();
    expect(deletes(r.actions)).toEqual([expect.objectContaining({ name: `data-${gone}`, uid: kept?.uid, reason: 'DeletedRemovedVolume' })]);
    expect(w.removedPvcs.size).toBe(0);
    expect(w.step().status?.removedVolumes).toBeUndefined();
    expect(w.memberIds()).not.toContain(gone);
  });

  it('after the grace period the volume still stays while the data plane is unknown, lists the node as active, or a pod of that member exists', () => {
    const { w, gone, dp, removedAtMs } = removedOne({ deletionPolicy: 'Delete', storage: { size: '10Gi', retainRemovedVolumesFor: '1m' } });
    w.now = removedAtMs + 2 * MIN;
    w.dataPlane = undefined;
    expect(deletes(w.step().actions)).toEqual([]);
    dp('removed', { error: 'observe: no node answered' });
    expect(deletes(w.step().actions)).toEqual([]);
    dp('active');
    expect(deletes(w.step().actions)).toEqual([]);
    dp('removed');
    w.pods.set(gone, { name: gone, uid: 'stray', memberId: gone, phase: 'Running', ready: false, image: 'x', deleting: true });
    expect(deletes(w.step().actions)).toEqual([]);
    w.pods.delete(gone);
    expect(deletes(w.step().actions)).toHaveLength(1);
  });

  it('Retain: the volume is never deleted, shown in status without deleteAfter; a policy change to Retain during the grace period releases it', () => {
    const { w, gone, removedAtMs } = removedOne({ deletionPolicy: 'Retain', storage: { size: '10Gi', retainRemovedVolumesFor: '1m' } });
    w.now = removedAtMs + 1000 * MIN;
    const r = w.step();
    expect(deletes(r.actions)).toEqual([]);
    expect(r.status?.removedVolumes).toEqual([{ member: gone, pvc: `data-${gone}`, removedAt: new Date(removedAtMs).toISOString() }]);
    expect(w.removedPvcs.get(`data-${gone}`)?.ownedByCluster).toBe(false);

    const d = removedOne({ deletionPolicy: 'Delete', storage: { size: '10Gi', retainRemovedVolumesFor: '1h' } });
    d.w.setSpec({ deletionPolicy: 'Retain' });
    const r2 = d.w.step();
    expect(r2.actions.filter((a) => a.type === 'releasePvc').map((a) => (a as { name: string }).name)).toEqual([`data-${d.gone}`]);
    d.w.now += 1000 * MIN;
    expect(deletes(d.w.step().actions)).toEqual([]);
    expect(d.w.removedPvcs.size).toBe(1);
  });

  it('re-adding a member never resurrects a removed identity, even if status forgot it was retired', () => {
    const { w, gone } = removedOne({ deletionPolicy: 'Retain' });
    // Status lost its memory (e.g. a status rewrite): the kept volume alone must keep the id taken.
    w.cluster = { ...w.cluster, status: { ...w.cluster.status, retiredMembers: [] } };
    w.setSpec({ nodes: 4 });
    const r = w.settle();
    const ids = w.memberIds();
    expect(ids).toHaveLength(4);
    expect(ids).not.toContain(gone);
    expect([...w.pvcs.keys()]).not.toContain(`data-${gone}`);
    // The kept volume was neither adopted nor re-labelled as a member.
    expect(w.removedPvcs.get(`data-${gone}`)?.memberId).toBe(gone);
    expect(r.status?.removedVolumes?.map((v) => v.member)).toEqual([gone]);
  });

  it('a retired member whose volume still carries the member label gets it relabelled as kept (not adopted, not deleted)', () => {
    const w = running(3, { deletionPolicy: 'Delete' });
    const [first] = w.memberIds();
    const pvc = w.pvcs.get(`data-${first}`);
    w.cluster = { ...w.cluster, status: { ...w.cluster.status, retiredMembers: [first as string] } };
    w.pods.delete(first as string);
    const r = w.step();
    expect(r.actions.find((a) => a.type === 'apply' && a.object.kind === 'PersistentVolumeClaim')).toMatchObject({ reason: 'KeptRemovedVolume' });
    expect(deletes(r.actions)).toEqual([]);
    expect(w.removedPvcs.get(`data-${first}`)).toMatchObject({ uid: pvc?.uid, memberId: first, removedAt: expect.any(String) });
  });

  it('a paused cluster still shows its kept volumes but deletes nothing', () => {
    const { w, removedAtMs } = removedOne({ deletionPolicy: 'Delete', storage: { size: '10Gi', retainRemovedVolumesFor: '1m' } });
    w.setSpec({ pause: true });
    w.now = removedAtMs + 5 * MIN;
    const r = w.step();
    expect(r.actions).toEqual([]);
    expect(r.status?.removedVolumes).toHaveLength(1);
  });

  it('deleting the cluster: Delete removes the kept volumes it owns, Retain releases them', () => {
    for (const policy of ['Delete', 'Retain'] as const) {
      const { w } = removedOne({ deletionPolicy: 'Delete', storage: { size: '10Gi', retainRemovedVolumesFor: '1h' } });
      w.setSpec({ deletionPolicy: policy });
      w.markDeleted();
      for (let i = 0; i < 6; i++) w.step();
      expect(w.cluster.metadata.finalizers).not.toContain(FINALIZER);
      expect(w.removedPvcs.size).toBe(policy === 'Delete' ? 0 : 1);
      if (policy === 'Retain') expect([...w.removedPvcs.values()].every((v) => !v.ownedByCluster)).toBe(true);
    }
  });
});

describe("reconcile: the placement loop's state in status (kubectl get: PLACEMENT)", () => {
  const view = (ids: string[], o: Partial<NonNullable<FakeWorld['dataPlane']>> = {}): NonNullable<FakeWorld['dataPlane']> => ({
    nodes: ids.map((id) => ({ id, state: 'active', leaderOf: 0 })),
    changing: false,
    movesDone: 0,
    movesTotal: 0,
    blockers: [],
    ...o,
  });

  it('Unknown before the first observation, Idle when settled, Moving (Progressing=Rebalancing) while replicas move outside an operation', () => {
    const w = running(3);
    expect(w.step().status?.placement?.state).toBe('Unknown');
    w.dataPlane = view(w.memberIds());
    let r = w.step();
    expect(r.status?.placement).toMatchObject({ state: 'Idle', message: 'settled' });
    expect(conditionOf(r.status?.conditions, 'Progressing')?.reason).toBe('Idle');
    w.dataPlane = view(w.memberIds(), { changing: true, movesDone: 2, movesTotal: 5 });
    r = w.step();
    expect(r.status?.placement).toMatchObject({ state: 'Moving', progress: { done: 2, total: 5 } });
    expect(r.status?.placement?.message).toContain('replica moves 2/5');
    expect(r.status?.phase).toBe('Running');
    expect(conditionOf(r.status?.conditions, 'Progressing')).toMatchObject({ status: 'True', reason: 'Rebalancing' });
  });

  it('a placement the planner cannot make is Blocked and Degraded=PlacementBlocked; transient waits are not', () => {
    const w = running(3);
    w.dataPlane = view(w.memberIds(), { blockers: [{ code: 'NO_LEADER', message: 'partition 3 has no leader' }] });
    let r = w.step();
    expect(r.status?.placement?.state).toBe('Idle');
    expect(r.status?.placement?.blockers).toEqual([{ code: 'NO_LEADER', message: 'partition 3 has no leader' }]);
    expect(conditionOf(r.status?.conditions, 'Degraded')?.status).toBe('False');
    const zones = 'zoneSpread is required but the live active nodes span 1 zone(s), fewer than the replication factor 3';
    w.dataPlane = view(w.memberIds(), { blockers: [{ code: 'ZONES_IMPOSSIBLE', message: zones }] });
    r = w.step();
    expect(r.status?.placement).toMatchObject({ state: 'Blocked', message: `ZONES_IMPOSSIBLE: ${zones}` });
    expect(conditionOf(r.status?.conditions, 'Degraded')).toMatchObject({ status: 'True', reason: 'PlacementBlocked' });
  });

  it('Unreachable with the error when no node answered the loop; Paused while paused', () => {
    const w = running(3);
    w.dataPlane = view(w.memberIds(), { error: 'observe: no node answered GetPartitionMap' });
    expect(w.step().status?.placement).toMatchObject({ state: 'Unreachable', message: 'observe: no node answered GetPartitionMap' });
    w.setSpec({ pause: true });
    expect(w.step().status?.placement?.state).toBe('Paused');
  });
});

describe('reconcile: rolling upgrade', () => {
  it('an image change restarts one member at a time, waiting for readiness, keeping ids', () => {
    const w = running(3);
    const ids = w.memberIds();
    w.autoReady = false;
    w.setSpec({ image: 'keyva-node:2' });
    const r1 = w.step();
    expect(kinds(r1.actions)).toEqual(['delete:Pod']);
    expect(r1.status?.phase).toBe('Upgrading');
    const r2 = w.step(); // recreate the restarted member's pod
    expect(kinds(r2.actions)).toEqual(['apply:Pod']);
    const r3 = w.step(); // it is not ready: nothing else goes down
    expect(r3.actions).toEqual([]);
    expect(r3.status?.currentOperation?.message).toMatch(/waiting/);
    w.autoReady = true;
    w.apply({ actions: [], status: undefined, requeueAfterMs: undefined });
    w.settle();
    expect(w.memberIds()).toEqual(ids);
    expect([...w.pods.values()].every((p) => p.image === 'keyva-node:2')).toBe(true);
    expect(w.step().status).toMatchObject({ phase: 'Running', image: 'keyva-node:2' });
  });

  it('a member that is down because of a bad image is replaced first (a fix can roll out)', () => {
    const w = running(3);
    w.autoReady = false;
    w.setSpec({ image: 'bad' });
    w.step();
    w.step(); // first member restarted on "bad", never ready
    const bad = [...w.pods.values()].find((p) => p.image === 'bad');
    w.setSpec({ image: 'good' });
    const r = w.step();
    expect(r.actions).toEqual([expect.objectContaining({ type: 'delete', kind: 'Pod', name: bad?.name })]);
  });
});

describe('reconcile: lost volumes need a human (LESSONS #11)', () => {
  it('does nothing destructive without the approval annotation, and replaces the member with a new id after it', () => {
    const w = running(3);
    const ids = w.memberIds();
    const lost = ids[0] as string;
    w.pvcs.delete(`data-${lost}`);
    const r = w.step();
    expect(r.actions.filter((a) => a.type === 'delete' || (a.type === 'apply' && a.object.kind !== 'Pod'))).toEqual([]);
    expect(r.actions.filter((a) => a.type === 'apply')).toEqual([]);
    expect(r.status?.phase).toBe('Blocked');
    expect(r.status?.currentOperation?.blockedBy).toContain(`${APPROVE}=${lost}`);
    expect(r.status?.members?.find((m) => m.id === lost)?.state).toBe('VolumeLost');
    expect(conditionOf(r.status?.conditions, 'Degraded')).toMatchObject({ status: 'True', reason: 'MemberVolumeLost' });
    for (let i = 0; i < 3; i++) expect(w.step().actions.filter((a) => a.type !== 'event')).toEqual([]);
    w.annotate(APPROVE, lost);
    w.settle();
    const after = w.memberIds();
    expect(after).toHaveLength(3);
    expect(after).not.toContain(lost);
    expect(after.filter((id) => ids.includes(id))).toHaveLength(2);
    expect(w.pods.has(lost)).toBe(false);
    expect(w.cluster.status?.retiredMembers).toEqual([lost]);
  });
});

describe('reconcile: pause', () => {
  it('a paused cluster gets no actions, only status', () => {
    const w = running(3);
    w.pods.clear();
    w.setSpec({ pause: true, nodes: 5 });
    const r = w.step();
    expect(r.actions).toEqual([]);
    expect(r.status?.phase).toBe('Paused');
    expect(conditionOf(r.status?.conditions, 'Progressing')?.reason).toBe('Paused');
  });
});

describe('reconcile: deletion follows deletionPolicy (LESSONS #2)', () => {
  it('Retain: pods stop first, volumes are kept (never deleted) and released, then the finalizer goes', () => {
    const w = running(3);
    w.markDeleted();
    const r1 = w.step();
    expect(kinds(r1.actions)).toEqual(['delete:Pod', 'delete:Pod', 'delete:Pod']);
    expect(r1.status?.phase).toBe('Deleting');
    const r2 = w.step();
    expect(kinds(r2.actions)).toEqual(['removeFinalizer']);
    expect(w.pvcs.size).toBe(3);
    expect(w.cluster.metadata.finalizers).not.toContain(FINALIZER);
    expect(w.log.some((a) => a.type === 'delete' && a.kind === 'PersistentVolumeClaim')).toBe(false);
  });

  it('Retain after a Delete policy: owner references are removed before the finalizer goes', () => {
    const w = running(2, { replicationFactor: 1, deletionPolicy: 'Delete' });
    expect([...w.pvcs.values()].every((v) => v.ownedByCluster)).toBe(true);
    w.setSpec({ deletionPolicy: 'Retain' });
    w.markDeleted();
    w.step();
    const r = w.step();
    expect(kinds(r.actions)).toEqual(['releasePvc', 'releasePvc']);
    expect(kinds(w.step().actions)).toEqual(['removeFinalizer']);
    expect(w.pvcs.size).toBe(2);
  });

  it('Delete: volumes are deleted only after every pod is gone', () => {
    const w = running(3, { deletionPolicy: 'Delete' });
    w.markDeleted();
    expect(kinds(w.step().actions)).toEqual(['delete:Pod', 'delete:Pod', 'delete:Pod']);
    expect(kinds(w.step().actions)).toEqual(['delete:PersistentVolumeClaim', 'delete:PersistentVolumeClaim', 'delete:PersistentVolumeClaim']);
    expect(kinds(w.step().actions)).toEqual(['removeFinalizer']);
    expect(w.pvcs.size).toBe(0);
  });

  it('PVCs carry an owner reference only under deletionPolicy Delete', () => {
    expect([...running(1, { replicationFactor: 1 }).pvcs.values()].some((v) => v.ownedByCluster)).toBe(false);
    const w = running(1, { replicationFactor: 1 });
    w.setSpec({ deletionPolicy: 'Delete' });
    const r = w.step();
    expect(kinds(r.actions)).toEqual(['apply:PersistentVolumeClaim']);
    expect([...w.pvcs.values()].every((v) => v.ownedByCluster)).toBe(true);
  });
});

describe('reconcile: safety properties under random events', () => {
  it('never deletes a volume unless the cluster is being deleted with deletionPolicy Delete; ids are never reused; at most one member is taken down at a time', () => {
    const event = fc.oneof(
      fc.record({ t: fc.constant('step' as const) }),
      fc.record({ t: fc.constant('nodes' as const), n: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ t: fc.constant('image' as const), v: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ t: fc.constant('killPod' as const), i: fc.nat() }),
      fc.record({ t: fc.constant('ready' as const), b: fc.boolean() }),
      fc.record({ t: fc.constant('policy' as const), p: fc.constantFrom('Retain' as const, 'Delete' as const) }),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), fc.boolean(), (events, deleteAtEnd) => {
        const w = new FakeWorld(cluster({ nodes: 3, replicationFactor: 1 }));
        const seenIds = new Set<string>();
        const check = (actions: readonly Action[]) => {
          const podDeletes = actions.filter((a) => a.type === 'delete' && a.kind === 'Pod');
          if (!w.cluster.metadata.deletionTimestamp) expect(podDeletes.length).toBeLessThanOrEqual(1);
          for (const a of actions) {
            if (a.type === 'delete' && a.kind === 'PersistentVolumeClaim') {
              expect(w.cluster.metadata.deletionTimestamp).toBeDefined();
              expect(w.cluster.spec?.deletionPolicy).toBe('Delete');
            }
            if (a.type === 'apply' && a.object.kind === 'PersistentVolumeClaim' && a.reason === 'CreatedVolume') {
              expect(seenIds.has(a.object.metadata.name)).toBe(false);
              seenIds.add(a.object.metadata.name);
            }
          }
        };
        for (const e of events) {
          if (e.t === 'step') check(w.step().actions);
          else if (e.t === 'nodes') w.setSpec({ nodes: e.n });
          else if (e.t === 'image') w.setSpec({ image: `img:${e.v}` });
          else if (e.t === 'killPod') {
            const names = [...w.pods.keys()];
            if (names.length) w.pods.delete(names[e.i % names.length] as string);
          } else if (e.t === 'ready') w.autoReady = e.b;
          else w.setSpec({ deletionPolicy: e.p });
        }
        if (deleteAtEnd) {
          w.markDeleted();
          for (let i = 0; i < 10; i++) check(w.step().actions);
          expect(w.cluster.metadata.finalizers).not.toContain(FINALIZER);
          if (w.cluster.spec?.deletionPolicy === 'Retain') expect(w.pvcs.size).toBe(seenIds.size);
        }
      }),
      { numRuns: 200 },
    );
  });
});
