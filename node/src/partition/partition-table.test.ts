/** Routing a key hash on a node that hosts only some partitions (more nodes than the replication factor). */
import { type NodeId, PartitionMap, uniformPartitions } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import { describe, expect, it } from 'vitest';
import { PartitionTable } from './partition-table.ts';

const id = (s: string) => s as NodeId;

function refusal(f: () => unknown): KeyVaError {
  try {
    f();
  } catch (e) {
    if (e instanceof KeyVaError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('PartitionTable.route', () => {
  const parts = uniformPartitions(2).map((p, i) => ({ ...p, replicas: i === 0 ? [id('a'), id('b'), id('c')] : [id('c'), id('d'), id('e')] }));
  const table = new PartitionTable(new PartitionMap(7n, parts), id('a'));

  it('returns a hosted partition', () => {
    expect(table.route(0n).id).toBe(0);
  });

  it('answers NOT_LEADER naming a replica (and all of them) for a partition placed on other nodes only', () => {
    const e = refusal(() => table.route(parts[1]?.start ?? 0n));
    expect(e.code).toBe('NOT_LEADER');
    expect(e.details).toEqual({ epoch: '7', partitionId: '1', leaderHint: 'c', replicas: 'c,d,e' });
  });

  it('prefers the leader the map names, and answers WRONG_PARTITION when no replica is known', () => {
    const led = new PartitionTable(
      new PartitionMap(1n, [{ ...(parts[0] as (typeof parts)[0]), replicas: [id('b'), id('c')], leaderHint: id('c') }, parts[1] as (typeof parts)[0]]),
      id('a'),
    );
    expect(refusal(() => led.route(0n)).details.leaderHint).toBe('c');
    const none = new PartitionTable(new PartitionMap(1n, uniformPartitions(1)), id('a'));
    expect(refusal(() => none.route(0n)).code).toBe('WRONG_PARTITION');
  });

  it('serves a partition whose Raft group it leads before its copy of the map lists it (a moved partition), and only that one', () => {
    const moved = new PartitionTable(new PartitionMap(7n, parts), id('d'));
    expect(refusal(() => moved.route(0n)).code).toBe('NOT_LEADER');
    moved.followLocalLeadership((partitionId) => partitionId === 0);
    expect(moved.route(0n).id).toBe(0);
    // Partition 1 lists d anyway; a partition it neither hosts by the map nor leads is still refused.
    const other = new PartitionTable(new PartitionMap(7n, parts), id('b'));
    other.followLocalLeadership((partitionId) => partitionId === 0);
    expect(refusal(() => other.route(parts[1]?.start ?? 0n)).details.leaderHint).toBe('c');
  });
});
