import type { LocalReplicaResponseOut, UnsafeRecoverPartitionResponseOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { KeyVaCluster } from '../api/keyva-cluster.ts';
import type { AdminCaller } from '../dataplane/admin-client.ts';
import type { EventRecorder } from './event-recorder.ts';
import { KubeApiError, type KubeClient } from './kube-client.ts';
import {
  APPROVE_UNSAFE_RECOVERY,
  decideQuorumRecovery,
  type MemberAnswer,
  parseApproval,
  QUORUM_RECOVERY_CONDITION,
  QUORUM_RECOVERY_FIELD_MANAGER,
  QuorumRecoveryGate,
  UNSAFE_RECOVERY_CONSUMED,
} from './quorum-recovery.ts';

const VOTERS = ['m-0', 'm-1', 'm-2'];
const up = (id: string, over: Partial<NonNullable<MemberAnswer['replica']>> = {}): MemberAnswer => ({
  address: `127.0.0.${id.slice(2)}:7379`,
  nodeId: id,
  replica: { hosted: true, leader: '', lastIndex: 100, lastTerm: 5, voters: VOTERS, ...over },
});
const down = (id: string): MemberAnswer => ({ address: `127.0.0.${id.slice(2)}:7379`, nodeId: undefined, replica: undefined });

describe('quorum recovery gate: decision (LESSONS #11: gated, never automatic)', () => {
  it('does nothing without the approval annotation, whatever the data plane looks like', () => {
    expect(decideQuorumRecovery(undefined, [up('m-0'), down('m-1'), down('m-2')])).toEqual({ kind: 'none' });
  });

  it('parses only an exact partition id or "meta"', () => {
    expect(parseApproval('7')).toEqual({ metaGroup: false, partitionId: 7 });
    expect(parseApproval('meta')).toEqual({ metaGroup: true });
    for (const bad of ['', 'all', '-1', '7,8', '0x7', 'META', '4294967295']) expect(parseApproval(bad), bad).toBeUndefined();
    const d = decideQuorumRecovery('all', [up('m-0'), down('m-1'), down('m-2')]);
    expect(d).toMatchObject({ kind: 'refuse', reason: 'InvalidApproval' });
  });

  it('recovers a partition that lost 2 of 3 voters on the survivor, naming it as the only survivor', () => {
    const d = decideQuorumRecovery('3', [up('m-0'), down('m-1'), down('m-2')]);
    expect(d).toEqual({ kind: 'recover', target: { metaGroup: false, partitionId: 3 }, address: '127.0.0.0:7379', nodeId: 'm-0', survivors: ['m-0'] });
  });

  it('refuses (and consumes the approval) while the group has a leader or a live quorum', () => {
    expect(decideQuorumRecovery('3', [up('m-0', { leader: 'm-1' }), down('m-1'), down('m-2')])).toMatchObject({ kind: 'refuse', reason: 'QuorumPresent' });
    // Two of three voters answer, no leader yet (an election under way): not a lost quorum.
    expect(decideQuorumRecovery('3', [up('m-0'), up('m-1'), down('m-2')])).toMatchObject({ kind: 'refuse', reason: 'QuorumPresent' });
  });

  it('waits while no member answers at all, and refuses when no answering member holds a voter replica', () => {
    expect(decideQuorumRecovery('3', [down('m-0'), down('m-1'), down('m-2')]).kind).toBe('wait');
    const d = decideQuorumRecovery('3', [up('m-3', { hosted: false, voters: [] }), down('m-0')]);
    expect(d).toMatchObject({ kind: 'refuse', reason: 'NoSurvivor' });
  });

  it('with 2 of 5 voters alive, recovers on the survivor with the newest log and lists both', () => {
    const five = ['m-0', 'm-1', 'm-2', 'm-3', 'm-4'];
    const d = decideQuorumRecovery('meta', [
      up('m-0', { voters: five, lastTerm: 5, lastIndex: 90 }),
      up('m-1', { voters: five, lastTerm: 6, lastIndex: 80 }),
      down('m-2'),
      down('m-3'),
      down('m-4'),
    ]);
    expect(d).toMatchObject({ kind: 'recover', target: { metaGroup: true }, nodeId: 'm-1', survivors: ['m-0', 'm-1'] });
  });

  it('a member that answers but is not a voter is not a survivor', () => {
    const d = decideQuorumRecovery('3', [up('m-0'), up('m-9', { voters: VOTERS, lastIndex: 10 }), down('m-1'), down('m-2')]);
    expect(d).toMatchObject({ kind: 'recover', survivors: ['m-0'] });
  });
});

// --- the gate's I/O sequence, against an in-memory KeyVaCluster and scripted node answers ---------

interface Call {
  readonly address: string;
  readonly method: string;
  readonly req: Record<string, unknown>;
}

/** One KeyVaCluster with RFC 6902 patches on its annotations (test, add, replace, remove) and SSA on status. */
function fakeKube(annotations: Record<string, string>) {
  const obj = {
    apiVersion: 'keyva.io/v1alpha1',
    kind: 'KeyVaCluster',
    metadata: { name: 'c1', namespace: 'ns', generation: 4, annotations: { ...annotations } },
  };
  const applied: { fieldManager?: string; body: unknown }[] = [];
  const decode = (path: string) => decodeURIComponent(path.replace('/metadata/annotations/', '')).replaceAll('~1', '/').replaceAll('~0', '~');
  const client = {
    async getOrUndefined() {
      return structuredClone(obj);
    },
    async jsonPatch(_r: unknown, _ns: string, _name: string, ops: { op: string; path: string; value?: string }[]) {
      const next = { ...obj.metadata.annotations } as Record<string, string>;
      for (const op of ops) {
        const k = decode(op.path);
        if (op.op === 'test' && next[k] !== op.value) throw new KubeApiError(422, 'Invalid', `test failed on ${k}`);
        if (op.op === 'remove') {
          if (!(k in next)) throw new KubeApiError(422, 'Invalid', `no ${k}`);
          delete next[k];
        }
        if (op.op === 'add' || op.op === 'replace') next[k] = op.value as string;
      }
      obj.metadata.annotations = next;
      return structuredClone(obj);
    },
    async apply(body: unknown, o: { fieldManager?: string }) {
      applied.push({ fieldManager: o.fieldManager, body });
      return body;
    },
  };
  return { client: client as unknown as KubeClient, obj, applied, cluster: () => structuredClone(obj) as unknown as KeyVaCluster };
}

function fakeNodes(answers: Record<string, { nodeId: string; replica?: Partial<LocalReplicaResponseOut> } | 'down'>, recover: () => Promise<unknown>) {
  const calls: Call[] = [];
  const admin: AdminCaller = {
    async call<Res>(address: string, method: string, req: object): Promise<Res> {
      calls.push({ address, method, req: req as Record<string, unknown> });
      const a = answers[address];
      if (a === undefined || a === 'down') throw new KeyVaError('UNAVAILABLE', `${address} is down`);
      if (method === 'Health') return { nodeId: a.nodeId } as Res;
      if (method === 'LocalReplica')
        return { hosted: true, leader: '', lastIndex: '100', lastTerm: '5', voters: ['m-0', 'm-1', 'm-2'], ...a.replica } as unknown as Res;
      if (method === 'UnsafeRecoverPartition') return (await recover()) as Res;
      throw new Error(`unexpected ${method}`);
    },
    callLeader() {
      throw new Error('not used');
    },
    close() {},
  };
  return { admin, calls };
}

function fakeEvents() {
  const events: { type: string; reason: string; message: string }[] = [];
  const recorder: EventRecorder = {
    async record(_c, type, reason, message) {
      events.push({ type, reason, message });
    },
  };
  return { recorder, events };
}

const SEEDS = ['127.0.0.10:7379', '127.0.0.11:7379', '127.0.0.12:7379'];
const silent = pino({ level: 'silent' });
const done: UnsafeRecoverPartitionResponseOut = {
  changed: true,
  partitionId: 3,
  metaGroup: false,
  voters: ['m-0'],
  removed: ['m-1', 'm-2'],
  lastIndex: '100',
  lastTerm: '5',
  commitIndex: '98',
  appliedIndex: '98',
  uncommittedKept: '2',
  newTerm: '6',
  recoveryIndex: '102',
  leader: 'm-0',
  dataLossWarning: 'Writes ... are LOST.',
};

describe('quorum recovery gate: run (one call, Event, condition, annotation consumed)', () => {
  it('calls the survivor once with confirm, records the Event and condition, and consumes the approval', async () => {
    const kube = fakeKube({ [APPROVE_UNSAFE_RECOVERY]: '3' });
    const nodes = fakeNodes({ [SEEDS[0] as string]: { nodeId: 'm-0' }, [SEEDS[1] as string]: 'down', [SEEDS[2] as string]: 'down' }, async () => done);
    const ev = fakeEvents();
    const gate = new QuorumRecoveryGate({
      client: kube.client,
      events: ev.recorder,
      admin: nodes.admin,
      log: silent,
      now: () => Date.parse('2026-11-26T05:00:00Z'),
    });
    await gate.run(kube.cluster(), SEEDS);
    const recoveries = nodes.calls.filter((c) => c.method === 'UnsafeRecoverPartition');
    expect(recoveries).toEqual([
      { address: SEEDS[0], method: 'UnsafeRecoverPartition', req: { partitionId: 3, metaGroup: false, survivingReplicas: ['m-0'], confirmDataLoss: true } },
    ]);
    expect(ev.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'UnsafeRecoveryDone', message: expect.stringMatching(/LOST/) })]);
    expect(kube.applied).toHaveLength(1);
    expect(kube.applied[0]?.fieldManager).toBe(QUORUM_RECOVERY_FIELD_MANAGER);
    expect(kube.applied[0]?.body).toMatchObject({
      status: { conditions: [{ type: QUORUM_RECOVERY_CONDITION, status: 'True', reason: 'Recovered', observedGeneration: 4 }] },
    });
    expect(kube.obj.metadata.annotations).toEqual({
      [UNSAFE_RECOVERY_CONSUMED]: '3: recovered on m-0 (last index 100, commit 98, term 5) at 2026-11-26T05:00:00.000Z',
    });
    // The next reconcile sees no approval: nothing is asked, nothing called.
    nodes.calls.length = 0;
    await gate.run(kube.cluster(), SEEDS);
    expect(nodes.calls).toEqual([]);
  });

  it('a stale copy that still carries the consumed approval changes nothing (the API server is read first)', async () => {
    const kube = fakeKube({ [APPROVE_UNSAFE_RECOVERY]: '3' });
    const stale = kube.cluster();
    const nodes = fakeNodes({ [SEEDS[0] as string]: { nodeId: 'm-0' }, [SEEDS[1] as string]: 'down', [SEEDS[2] as string]: 'down' }, async () => done);
    const ev = fakeEvents();
    const gate = new QuorumRecoveryGate({ client: kube.client, events: ev.recorder, admin: nodes.admin, log: silent, now: () => 0 });
    await gate.run(stale, SEEDS);
    expect(ev.events.map((e) => e.reason)).toEqual(['UnsafeRecoveryDone']);
    // The group has a leader now; the informer's copy from before the consumption arrives again.
    nodes.calls.length = 0;
    await gate.run(stale, SEEDS);
    expect(nodes.calls).toEqual([]);
    expect(ev.events.map((e) => e.reason)).toEqual(['UnsafeRecoveryDone']);
    expect(kube.applied).toHaveLength(1);
  });

  it('a group with a leader: no recovery call, a refusal Event, the approval consumed', async () => {
    const kube = fakeKube({ [APPROVE_UNSAFE_RECOVERY]: '3', [UNSAFE_RECOVERY_CONSUMED]: 'older' });
    const nodes = fakeNodes({ [SEEDS[0] as string]: { nodeId: 'm-0', replica: { leader: 'm-2' } }, [SEEDS[1] as string]: 'down' }, async () => done);
    const ev = fakeEvents();
    await new QuorumRecoveryGate({ client: kube.client, events: ev.recorder, admin: nodes.admin, log: silent, now: () => 0 }).run(kube.cluster(), SEEDS);
    expect(nodes.calls.some((c) => c.method === 'UnsafeRecoverPartition')).toBe(false);
    expect(ev.events.map((e) => e.reason)).toEqual(['UnsafeRecoveryQuorumPresent']);
    expect(kube.obj.metadata.annotations[APPROVE_UNSAFE_RECOVERY as keyof typeof kube.obj.metadata.annotations]).toBeUndefined();
    expect(kube.obj.metadata.annotations[UNSAFE_RECOVERY_CONSUMED as keyof typeof kube.obj.metadata.annotations]).toMatch(/^3: refused \(QuorumPresent\)/);
  });

  it('the node refuses: consumed with its reason; a transient failure keeps the approval for the next reconcile', async () => {
    const refusedKube = fakeKube({ [APPROVE_UNSAFE_RECOVERY]: '3' });
    const refusing = fakeNodes({ [SEEDS[0] as string]: { nodeId: 'm-0' } }, async () => {
      throw new KeyVaError('CONDITION_FAILED', 'voter m-1 answers', { reason: 'voterReachable' });
    });
    await new QuorumRecoveryGate({ client: refusedKube.client, events: fakeEvents().recorder, admin: refusing.admin, log: silent, now: () => 0 }).run(
      refusedKube.cluster(),
      SEEDS,
    );
    expect(Object.values(refusedKube.obj.metadata.annotations)).toEqual([expect.stringMatching(/^3: refused by m-0 \(voterReachable\)/)]);

    const flakyKube = fakeKube({ [APPROVE_UNSAFE_RECOVERY]: '3' });
    const flaky = fakeNodes({ [SEEDS[0] as string]: { nodeId: 'm-0' } }, async () => {
      throw new KeyVaError('DEADLINE_EXCEEDED', 'outcome unknown');
    });
    const gate = new QuorumRecoveryGate({ client: flakyKube.client, events: fakeEvents().recorder, admin: flaky.admin, log: silent, now: () => 0 });
    await expect(gate.run(flakyKube.cluster(), SEEDS)).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(flakyKube.obj.metadata.annotations).toEqual({ [APPROVE_UNSAFE_RECOVERY]: '3' });
    expect(flakyKube.applied[0]?.body).toMatchObject({ status: { conditions: [{ status: 'Unknown', reason: 'CallFailed' }] } });
  });

  it('an approval changed meanwhile is not consumed (the JSON patch tests the value first)', async () => {
    const kube = fakeKube({ [APPROVE_UNSAFE_RECOVERY]: 'meta' });
    const stale = { ...kube.cluster(), metadata: { ...kube.cluster().metadata, annotations: { [APPROVE_UNSAFE_RECOVERY]: 'all' } } };
    await new QuorumRecoveryGate({
      client: kube.client,
      events: fakeEvents().recorder,
      admin: fakeNodes({}, async () => done).admin,
      log: silent,
      now: () => 0,
    }).run(stale as KeyVaCluster, SEEDS);
    expect(kube.obj.metadata.annotations).toEqual({ [APPROVE_UNSAFE_RECOVERY]: 'meta' });
  });
});
