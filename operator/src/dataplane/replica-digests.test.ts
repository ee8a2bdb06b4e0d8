/** The background digest audit and the disagreement check (a scripted AdminCaller; real replicas in node/src/replication/replicated-node.test.ts). */
import { describe, expect, it } from 'vitest';
import { checkInvariants, ViolationCode } from '../placement/invariants.ts';
import { nodeId, type Observation, type PartitionView, partitionId } from '../placement/types.ts';
import type { AdminCaller } from './admin-client.ts';
import type { ObservedCluster } from './observer.ts';
import { DigestAuditor, disagreement } from './replica-digests.ts';

const part = (id: number, generation: bigint, learner = false): PartitionView => ({
  id: partitionId(id),
  start: BigInt(id) << 60n,
  end: BigInt(id + 1) << 60n,
  generation,
  replicas: [
    { nodeId: nodeId('a'), role: 'voter', matchIndex: 10 },
    { nodeId: nodeId('b'), role: 'voter', matchIndex: 10 },
    { nodeId: nodeId('c'), role: learner ? 'learner' : 'voter', matchIndex: 10 },
  ],
  leader: nodeId('a'),
  commitIndex: 10,
  sizeBytes: 0,
  qps: 0,
});
const observed = (partitions: PartitionView[]): ObservedCluster => {
  const observation: Observation = {
    epoch: 1n,
    nodes: ['a', 'b', 'c'].map((id) => ({ id: nodeId(id), weight: 1, health: 'up', state: 'active', capacityBytes: 100, freeBytes: 100 })),
    partitions,
  };
  return {
    observation,
    mapReplicas: new Map(),
    registry: ['a', 'b', 'c'].map((id) => ({ id, grpcAddress: `${id}:1`, httpAddress: '', state: 'active' })),
    confChangePending: new Set(),
    info: new Map(),
    mapSource: 'a:1',
    atMs: 0,
  };
};

/** Answers PartitionDigest with c's checksum = `cSum(partition)`; records the partitions asked. */
function admin(cSum: (p: number) => string): AdminCaller & { asked: number[] } {
  const asked: number[] = [];
  const answer = async <Res>(_a: string, _m: string, req: object): Promise<Res> => {
    const p = (req as { partitionId: number }).partitionId;
    asked.push(p);
    const r = (nodeId: string, checksum: string) => ({ nodeId, ok: true, keyCount: '3', checksum, bytes: '9', complete: true, error: '' });
    return { readTs: String(100 + p), replicas: [r('a', 'good'), r('b', 'good'), r('c', cSum(p))] } as Res;
  };
  return { asked, call: answer, callLeader: answer, close() {} };
}

describe('replica digests in the controller', () => {
  it('names two disagreeing replicas; unanswered and incomplete digests are not compared', () => {
    const r = (nodeId: string, checksum: string, ok = true, complete = true) => ({ nodeId, ok, keyCount: 1, checksum, complete, error: '' });
    const d = (...replicas: ReturnType<typeof r>[]) => ({ partitionId: 4, generation: 1n, readTs: 7n, atMs: 0, replicas });
    expect(disagreement(d(r('a', 'x'), r('b', 'x')))).toBeUndefined();
    expect(disagreement(d(r('a', 'x'), r('b', 'y', false), r('c', 'z', true, false)))).toBeUndefined();
    expect(disagreement(d(r('a', 'x'), r('b', 'x'), r('c', 'y')))).toMatch(/partition 4 disagree at read timestamp 7: a has .*, c has/);
  });

  it('audits changed partitions first, one at a time and at most once per interval, and the checker reports a disagreement', async () => {
    let now = 0;
    const a = admin((p) => (p === 1 ? 'bad' : 'good'));
    const auditor = new DigestAuditor({ admin: a, intervalMs: 1000, now: () => now });
    const oc = observed([part(0, 1n), part(1, 1n), part(2, 1n, true)]);
    for (const _ of [0, 1, 2]) {
      auditor.maybeAudit(oc);
      await auditor.idle();
    }
    expect(a.asked).toEqual([0]); // interval not passed
    now = 1000;
    auditor.maybeAudit(oc);
    await auditor.idle();
    now = 2000;
    auditor.maybeAudit(oc);
    await auditor.idle();
    // Partition 2 has a learner (a move under way): not audited.
    expect(a.asked).toEqual([0, 1, 0]);
    expect(auditor.audited).toBe(3);

    const violations = checkInvariants(auditor.attach(oc.observation), 3).filter((v) => v.code === ViolationCode.ReplicasDisagree);
    expect(violations.map((v) => [v.partitionId, v.nodeId])).toEqual([[1, 'c']]);
    // Once partition 1's generation changes (a move), its old digests are no longer attached, and it is audited next.
    const moved = observed([part(0, 1n), part(1, 2n), part(2, 1n)]);
    expect(checkInvariants(auditor.attach(moved.observation), 3).filter((v) => v.code === ViolationCode.ReplicasDisagree)).toEqual([]);
    now = 3000;
    auditor.maybeAudit(moved);
    await auditor.idle();
    expect(a.asked.at(-1)).toBe(1);
  });

  it('paces audits by partition size: a large partition delays the next audit past the interval', async () => {
    let now = 0;
    const a = admin(() => 'good');
    const auditor = new DigestAuditor({ admin: a, intervalMs: 1000, bytesPerSec: 1_000_000, now: () => now });
    const big = { ...part(0, 1n), sizeBytes: 5_000_000 };
    const oc = observed([big, { ...part(1, 1n), sizeBytes: 10 }, { ...part(2, 1n), sizeBytes: 10 }]);
    auditor.maybeAudit(oc);
    await auditor.idle();
    expect(a.asked).toEqual([0]);
    // 5 MB at 1 MB/s: five seconds before the next audit, not the one-second interval.
    for (const t of [1000, 2500, 4999]) {
      now = t;
      auditor.maybeAudit(oc);
      await auditor.idle();
    }
    expect(a.asked).toEqual([0]);
    now = 5000;
    auditor.maybeAudit(oc);
    await auditor.idle();
    expect(a.asked).toEqual([0, 1]);
    // A small partition: the interval applies.
    now = 6000;
    auditor.maybeAudit(oc);
    await auditor.idle();
    expect(a.asked).toEqual([0, 1, 2]);
  });
});
