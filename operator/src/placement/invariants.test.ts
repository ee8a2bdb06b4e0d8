/**
 * LESSONS #9 (redis-operator #1250: "not all slots are covered"), #10 (kvrocks #2715: a slot on
 * both nodes, key count grew; an off-by-one at the last slot): a continuous checker that trusts
 * only what the nodes report.
 */
import { describe, expect, it } from 'vitest';
import { HASH_SPACE_END } from './cluster-view.ts';
import { checkInvariants, ViolationCode } from './invariants.ts';
import { nodeList, settledSim } from './testing/fixtures.ts';
import type { NodeId, Observation, PartitionView } from './types.ts';

function healthy(): Observation {
  return settledSim({ nodes: nodeList(4), partitions: 8, replicationFactor: 3 }).observe();
}
const edit = (o: Observation, id: number, f: (p: PartitionView) => PartitionView): Observation => ({
  ...o,
  partitions: o.partitions.map((p) => (p.id === id ? f(p) : p)),
});
const codes = (o: Observation) => checkInvariants(o, 3).map((v) => v.code);

describe('LESSONS #9, #10 — the invariant checker', () => {
  it('a healthy map has no violations', () => {
    expect(checkInvariants(healthy(), 3)).toEqual([]);
  });

  it('every partition has RF voters (learners do not count)', () => {
    const o = edit(healthy(), 3, (p) => ({ ...p, replicas: p.replicas.map((r, i) => (i === 2 ? { ...r, role: 'learner' } : r)) }));
    const v = checkInvariants(o, 3);
    expect(v).toMatchObject([{ code: ViolationCode.BelowReplicationFactor, partitionId: 3 }]);
    expect(v[0]?.message).toBe('partition 3 has 2 voter(s), fewer than RF 3');
  });

  it('every partition has exactly one leader, and it is a voter', () => {
    expect(codes(edit(healthy(), 1, (p) => ({ ...p, leader: undefined })))).toEqual([ViolationCode.NoLeader]);
    expect(codes(edit(healthy(), 1, (p) => ({ ...p, leader: 'zz' as NodeId })))).toEqual([ViolationCode.LeaderNotVoter]);
  });

  it('ranges cover the hash space exactly once: gaps, overlaps, the last hash and empty ranges are caught', () => {
    const o = healthy();
    const p1 = o.partitions[1] as PartitionView;
    expect(codes(edit(o, 1, (p) => ({ ...p, end: p.end - 1n })))).toEqual([ViolationCode.Gap]);
    expect(codes(edit(o, 1, (p) => ({ ...p, end: p.end + 1n })))).toEqual([ViolationCode.Overlap]);
    const last = o.partitions.at(-1) as PartitionView;
    const g = checkInvariants(
      edit(o, last.id, (p) => ({ ...p, end: HASH_SPACE_END - 1n })),
      3,
    );
    expect(g).toMatchObject([{ code: ViolationCode.Gap, message: 'hashes [0xffffffffffffffff, 2^64) belong to no partition' }]);
    expect(codes(edit(o, 1, (p) => ({ ...p, end: p.start })))).toContain(ViolationCode.EmptyRange);
    // The same range owned twice (a partition on "both nodes" after a botched move).
    const twice = { ...o, partitions: [...o.partitions, { ...p1, id: 99 as never }] };
    expect(codes(twice)).toEqual([ViolationCode.Overlap]);
    expect(codes({ ...o, partitions: [...o.partitions, p1] })).toEqual([ViolationCode.DuplicatePartitionId, ViolationCode.Overlap]);
  });

  it('LESSONS #10 — replicas agree: equal key count and checksum at the same read timestamp; different timestamps are not compared', () => {
    const digest = (readTs: number, keyCount: number, checksum: string) => ({ readTs: BigInt(readTs), keyCount, checksum });
    const o = edit(healthy(), 2, (p) => ({
      ...p,
      replicas: p.replicas.map((r, i) => ({ ...r, digest: i === 2 ? digest(40, 11, 'bb') : digest(40, 10, 'aa') })),
    }));
    const v = checkInvariants(o, 3);
    expect(v).toHaveLength(1);
    expect(v[0]?.code).toBe(ViolationCode.ReplicasDisagree);
    expect(v[0]?.message).toMatch(/at read timestamp 40: .* has 10 keys \(checksum aa\), .* has 11 keys \(checksum bb\)/);
    const lagging = edit(healthy(), 2, (p) => ({
      ...p,
      replicas: p.replicas.map((r, i) => ({ ...r, digest: i === 2 ? digest(39, 11, 'bb') : digest(40, 10, 'aa') })),
    }));
    expect(checkInvariants(lagging, 3)).toEqual([]);
  });

  it('replicas only on registered, non-removed nodes, each listed once', () => {
    const o = healthy();
    const p0 = o.partitions[0] as PartitionView;
    const victim = p0.replicas[1]?.nodeId as NodeId;
    const removed = { ...o, nodes: o.nodes.map((n) => (n.id === victim ? { ...n, state: 'removed' as const } : n)) };
    expect(codes(removed)).toContain(ViolationCode.ReplicaOnRemovedNode);
    expect(codes(edit(o, 0, (p) => ({ ...p, replicas: [...p.replicas, { nodeId: 'ghost' as NodeId, role: 'learner', matchIndex: 0 }] })))).toEqual([
      ViolationCode.ReplicaOnUnknownNode,
    ]);
    expect(codes(edit(o, 0, (p) => ({ ...p, replicas: [...p.replicas, p.replicas[0] as never] })))).toEqual([ViolationCode.DuplicateReplica]);
  });
});
