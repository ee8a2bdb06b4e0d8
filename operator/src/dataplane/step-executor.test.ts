/** Step -> Admin call mapping and outcome classification (a scripted AdminCaller; the real calls are in e2e/src/placement-local.test.ts). */
import { KeyVaError } from '@keyva/proto/errors';
import { describe, expect, it } from 'vitest';
import { nodeId, type Observation, partitionId, type Step } from '../placement/types.ts';
import { type AdminCaller, type AdminMethod, redirectOf } from './admin-client.ts';
import type { ObservedCluster } from './observer.ts';
import { StepExecutor } from './step-executor.ts';

const n = nodeId;
const observation: Observation = {
  epoch: 7n,
  nodes: ['a', 'b', 'c', 'd'].map((id) => ({ id: n(id), weight: 1, health: 'up', state: 'active', capacityBytes: 100, freeBytes: 100 })),
  partitions: [
    {
      id: partitionId(0),
      start: 0n,
      end: 1n << 64n,
      generation: 3n,
      replicas: [
        { nodeId: n('a'), role: 'voter', matchIndex: 10 },
        { nodeId: n('b'), role: 'voter', matchIndex: 10 },
        { nodeId: n('d'), role: 'voter', matchIndex: 10 },
      ],
      leader: n('b'),
      commitIndex: 10,
      sizeBytes: 0,
      qps: 0,
    },
  ],
};
const oc = (mapReplicas: string[], pending = false): ObservedCluster => ({
  observation,
  mapReplicas: new Map([[0, mapReplicas]]),
  registry: ['a', 'b', 'c', 'd'].map((id) => ({ id, grpcAddress: `${id}:1`, httpAddress: '', state: 'active' })),
  confChangePending: new Set(pending ? [0] : []),
  info: new Map(),
  mapSource: 'a:1',
  atMs: 0,
});

/** Records calls; answers from `script` (a value, or an error to throw). */
function scripted(script: (address: string, method: AdminMethod, req: object) => unknown): AdminCaller & { calls: [string, string, object][] } {
  const calls: [string, string, object][] = [];
  const call = async <Res>(address: string, method: AdminMethod, req: object): Promise<Res> => {
    calls.push([address, method, req]);
    const r = script(address, method, req);
    if (r instanceof Error) throw r;
    return r as Res;
  };
  return {
    calls,
    call,
    async callLeader<Res>(address: string, method: AdminMethod, req: object, addressOf: (id: string) => string | undefined): Promise<Res> {
      try {
        return await call<Res>(address, method, req);
      } catch (e) {
        const to = redirectOf(e, addressOf);
        if (to === undefined) throw e;
        return call<Res>(to, method, req);
      }
    },
    close() {},
  };
}

const add: Step = { type: 'addLearner', partitionId: partitionId(0), nodeId: n('c'), expectedGeneration: 3n, reason: 'test' };

describe('StepExecutor', () => {
  it('sends a membership step to the observed leader and follows one NOT_LEADER redirect', async () => {
    const admin = scripted((address) =>
      address === 'b:1' ? new KeyVaError('NOT_LEADER', 'not me', { leaderHint: 'd', leaderAddress: '' }) : { changed: true },
    );
    const out = await new StepExecutor(admin).execute(add, oc(['a', 'b', 'd']));
    expect(out).toEqual({ kind: 'done', key: 'addLearner:0:c', changed: true });
    expect(admin.calls.map(([a, m]) => [a, m])).toEqual([
      ['b:1', 'AddLearner'],
      ['d:1', 'AddLearner'],
    ]);
    expect(admin.calls[0]?.[2]).toEqual({ partitionId: 0, nodeId: 'c' });
  });

  it('surfaces refusals as blockers and waits out transient ones', async () => {
    const refuse = (reason: string) => new StepExecutor(scripted(() => new KeyVaError('CONDITION_FAILED', `refused: ${reason}`, { reason })));
    expect(await refuse('belowReplicationFactor').execute(add, oc([]))).toMatchObject({ kind: 'blocked', reason: 'belowReplicationFactor' });
    expect(await refuse('learnerBehind').execute(add, oc([]))).toMatchObject({ kind: 'retry' });
    const busy = new StepExecutor(scripted(() => new KeyVaError('UNAVAILABLE', 'conf change pending', { reason: 'confChangePending' })));
    expect(await busy.execute(add, oc([]))).toMatchObject({ kind: 'retry' });
  });

  it('drains and removes nodes through the meta group with the planned epoch', async () => {
    const admin = scripted(() => ({ changed: true, epoch: '8' }));
    const ex = new StepExecutor(admin);
    await ex.execute({ type: 'drainNode', nodeId: n('c'), expectedEpoch: 7n, reason: 'test' }, oc(['a', 'b', 'd']));
    await ex.execute({ type: 'removeNode', nodeId: n('c'), expectedEpoch: 9n, reason: 'test' }, oc(['a', 'b', 'd']));
    expect(admin.calls).toEqual([
      ['a:1', 'UpdatePartitionMap', { expectedEpoch: '7', setNodeState: { nodeId: 'c', state: 'DRAINING' } }],
      ['a:1', 'UpdatePartitionMap', { expectedEpoch: '9', setNodeState: { nodeId: 'c', state: 'REMOVED' } }],
    ]);
  });

  it('records the voters the leader reports in the map, only where they differ and no change is pending', async () => {
    const admin = scripted(() => ({ changed: true, epoch: '8' }));
    const ex = new StepExecutor(admin);
    expect(await ex.syncMap(oc(['a', 'b', 'd']))).toEqual({ updated: 0 });
    expect(await ex.syncMap(oc(['a', 'b', 'c'], true))).toEqual({ updated: 0 });
    expect(await ex.syncMap(oc(['a', 'b', 'c']))).toEqual({ updated: 1 });
    expect(admin.calls).toEqual([['a:1', 'UpdatePartitionMap', { expectedEpoch: '7', setPartitionReplicas: { partitionId: 0, replicas: ['a', 'b', 'd'] } }]]);
  });

  it('carries out a merge with MergePartitions on the map source; blocks on a refusal, retries a transient one', async () => {
    const step: Step = {
      type: 'merge',
      left: partitionId(0),
      right: partitionId(1),
      rightEnd: 1n << 64n,
      expectedGenerations: [1n, 1n],
      expectedEpoch: 7n,
      reason: 'test',
    };
    const admin = scripted(() => ({ changed: true, epoch: '8' }));
    expect(await new StepExecutor(admin).execute(step, oc([]))).toMatchObject({ kind: 'done', changed: true });
    expect(admin.calls).toEqual([['a:1', 'MergePartitions', { leftId: 0, rightId: 1 }]]);
    const refusing = scripted(() => {
      throw new KeyVaError('INVALID_ARGUMENT', 'partitions 0 and 1 are not adjacent', { field: 'right_id', reason: 'notAdjacent' });
    });
    expect(await new StepExecutor(refusing).execute(step, oc([]))).toMatchObject({ kind: 'blocked', reason: 'INVALID_ARGUMENT' });
    // A replica down (or a move not yet in the map) clears up: retried, not blocked.
    const waiting = scripted(() => {
      throw new KeyVaError('CONDITION_FAILED', 'node c does not answer', { reason: 'replicaUnavailable' });
    });
    expect(await new StepExecutor(waiting).execute(step, oc([]))).toMatchObject({ kind: 'retry' });
  });

  it('LESSONS #10 — removes a replica only once the replicas agree; a disagreement blocks, a digest failure retries', async () => {
    const remove: Step = { type: 'removeReplica', partitionId: partitionId(0), nodeId: n('a'), expectedGeneration: 3n, reason: 'test' };
    const replica = (nodeId: string, checksum: string, ok = true) => ({
      nodeId,
      ok,
      keyCount: '5',
      checksum,
      bytes: '50',
      complete: true,
      error: ok ? '' : 'down',
    });
    const digests = (...replicas: ReturnType<typeof replica>[]) => ({ readTs: '99', replicas });

    const agree = scripted((_a, m) => (m === 'PartitionDigest' ? digests(replica('a', 'x'), replica('b', 'x'), replica('d', 'y', false)) : { changed: true }));
    expect(await new StepExecutor(agree).execute(remove, oc(['a', 'b', 'd']))).toMatchObject({ kind: 'done', changed: true });
    expect(agree.calls.map(([address, method]) => [address, method])).toEqual([
      ['b:1', 'PartitionDigest'],
      ['b:1', 'RemoveReplica'],
    ]);

    const differ = scripted((_a, m) => (m === 'PartitionDigest' ? digests(replica('a', 'x'), replica('b', 'x'), replica('d', 'z')) : { changed: true }));
    const blocked = await new StepExecutor(differ).execute(remove, oc(['a', 'b', 'd']));
    expect(blocked).toMatchObject({ kind: 'blocked', reason: 'replicasDisagree' });
    expect(blocked.kind === 'blocked' && blocked.message).toMatch(/partition 0 disagree at read timestamp 99: a has 5 keys .* d has 5 keys/);
    expect(differ.calls.map(([, method]) => method)).toEqual(['PartitionDigest']);

    const failing = scripted((_a, m) => (m === 'PartitionDigest' ? new KeyVaError('UNAVAILABLE', 'leader moving') : { changed: true }));
    expect(await new StepExecutor(failing).execute(remove, oc(['a', 'b', 'd']))).toMatchObject({ kind: 'retry' });
    expect(failing.calls.map(([, method]) => method)).toEqual(['PartitionDigest']);
  });
});
