import { startTestNode, type TestNode } from '@keyva/node/testing/test-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmdPartitionMerge, cmdPartitionSplit, parseHash, parsePartitionId } from './partition.ts';

describe('keyva partition split', () => {
  let lone: TestNode;
  beforeAll(async () => {
    lone = await startTestNode('memory');
  });
  afterAll(async () => {
    await lone.close();
  });

  it('parses split points and partition ids, refusing anything outside the hash space', () => {
    expect(parseHash('0x8000000000000000')).toBe(1n << 63n);
    expect(parseHash('12345')).toBe(12345n);
    for (const bad of ['0', '0x10000000000000000', '18446744073709551616', '-1', 'abc', '']) expect(() => parseHash(bad), bad).toThrow(/hash|outside/);
    expect(parsePartitionId('7')).toBe(7);
    for (const bad of ['-1', 'x', '4294967295']) expect(() => parsePartitionId(bad), bad).toThrow(/not a partition id/);
  });

  it('surfaces the node refusal: a lone node has no splits', async () => {
    await expect(cmdPartitionSplit({ endpoint: lone.node.grpcAddress, json: true, deadlineMs: 5000 }, '0', '0x10')).rejects.toMatchObject({
      code: 'ROUTE_NOT_FOUND',
    });
  });

  it('merge: refuses bad ids before calling, and surfaces the node refusal (a lone node has no merges)', async () => {
    const o = { endpoint: lone.node.grpcAddress, json: true, deadlineMs: 5000 };
    await expect(cmdPartitionMerge(o, '0', '0')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(cmdPartitionMerge(o, 'x', '1')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(cmdPartitionMerge(o, '0', '1')).rejects.toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });
});
