/** The benchmark cluster's pure helpers: probe keys covering every partition, leader counts and changes. */
import { keyHash, PartitionMap, uniformPartitions } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { countLeaders, keyPerPartition, leaderChanges } from './keyva-cluster.ts';

describe('keyva-cluster helpers', () => {
  it('finds one probe key per partition', () => {
    const map = new PartitionMap(1n, uniformPartitions(64));
    const keys = keyPerPartition(64, (h) => map.locate(h).id);
    expect(keys).toHaveLength(64);
    expect(new Set(keys.map((k) => map.locate(keyHash(Buffer.from(k))).id)).size).toBe(64);
  });

  it('counts leaders per node and partitions whose leader changed or was missing', () => {
    const before = { '0': 'node-1', '1': 'node-2', '2': '(none)', '3': 'node-1' };
    expect(countLeaders(before)).toEqual({ 'node-1': 2, 'node-2': 1, '(none)': 1 });
    expect(leaderChanges(before, before)).toBe(1);
    expect(leaderChanges(before, { '0': 'node-3', '1': 'node-2', '2': 'node-2', '3': 'node-1' })).toBe(2);
  });
});
