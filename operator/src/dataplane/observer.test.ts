import { describe, expect, it } from 'vitest';
import type { AdminCaller, AdminMethod } from './admin-client.ts';
import { Observer } from './observer.ts';

/** The leader's view of a partition as a node answers it (uint64 fields as strings). */
const view = (partitionId: number, leader: string) => ({
  partitionId,
  leader,
  term: '2',
  lastIndex: '10',
  commitIndex: String(10 + partitionId),
  confChangePending: false,
  replicas: ['a', 'b', 'c'].map((nodeId) => ({ nodeId, role: 'VOTER', matchIndex: '10', appliedIndex: '0', caughtUp: true, reachable: nodeId === leader })),
  sizeBytes: '0',
  keys: '0',
  sizeExact: true,
  splitHint: '0',
  qps: 0,
});

/**
 * Three nodes; the map names a as the leader of partitions 0 and 1, b of partition 2. Node a
 * leads only partition 0 now (partition 1's leadership moved to c); node b predates
 * ListPartitionReplicas. Records every call.
 */
function cluster(): AdminCaller & { calls: [string, AdminMethod, object][] } {
  const calls: [string, AdminMethod, object][] = [];
  const answer = async <Res>(address: string, method: AdminMethod, req: object): Promise<Res> => {
    calls.push([address, method, req]);
    const node = address.slice(0, 1);
    switch (method) {
      case 'GetPartitionMap':
        return {
          map: {
            epoch: '7',
            nodes: ['a', 'b', 'c'].map((id) => ({ id, grpcAddress: `${id}:1`, httpAddress: '', state: 'ACTIVE' })),
            partitions: [0, 1, 2].map((id) => ({
              id,
              start: String(BigInt(id) << 62n),
              end: id === 2 ? '0' : String(BigInt(id + 1) << 62n),
              generation: '1',
              replicas: ['a', 'b', 'c'],
              leaderHint: id === 2 ? 'b' : 'a',
            })),
          },
        } as Res;
      case 'Health':
        return { status: 'SERVING' } as Res;
      case 'NodeInfo':
        return { nodeId: node, storageBytes: '0', partitions: 3 } as Res;
      case 'ListPartitionReplicas':
        if (node === 'b') throw new Error('12 UNIMPLEMENTED: unknown method');
        return { partitions: node === 'a' ? [view(0, 'a')] : [] } as Res;
      case 'GetPartitionReplicas': {
        const id = (req as { partitionId: number }).partitionId;
        return view(id, id === 1 ? 'c' : 'b') as Res;
      }
      default:
        throw new Error(`unexpected ${method}`);
    }
  };
  return { calls, call: answer, callLeader: answer, close() {} };
}

describe('observer', () => {
  it("takes each partition's leader view from one ListPartitionReplicas per leader node, asking one by one only for what it left out", async () => {
    const admin = cluster();
    const oc = await new Observer({ admin, seeds: () => ['a:1'] }).observe();
    const lists = admin.calls.filter(([, m]) => m === 'ListPartitionReplicas');
    expect(lists.map(([a, , req]) => [a, req])).toEqual([
      ['a:1', { partitionIds: [0, 1] }],
      ['b:1', { partitionIds: [2] }],
    ]);
    // Partition 1 (a no longer leads it) and partition 2 (b is older) are asked one by one.
    const singles = admin.calls.filter(([, m]) => m === 'GetPartitionReplicas');
    expect(singles.map(([, , req]) => (req as { partitionId: number }).partitionId).sort()).toEqual([1, 2]);
    expect(singles.every(([, , req]) => (req as { leaderViewOnly?: boolean }).leaderViewOnly === true)).toBe(true);
    expect(oc.observation.partitions.map((p) => [p.id, p.leader, p.commitIndex])).toEqual([
      [0, 'a', 10],
      [1, 'c', 11],
      [2, 'b', 12],
    ]);
  });
});
