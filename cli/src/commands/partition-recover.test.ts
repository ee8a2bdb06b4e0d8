import { startTestNode, type TestNode } from '@keyva/node/testing/test-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cmdPartitionRecover, parseSurvivors } from './partition-recover.ts';

describe('keyva partition recover', () => {
  let lone: TestNode;
  beforeAll(async () => {
    lone = await startTestNode('memory');
  });
  afterAll(async () => {
    await lone.close();
  });

  it('parses the survivors: node ids, at least one, duplicates dropped', () => {
    expect(parseSurvivors('node-1, node-2,node-1')).toEqual(['node-1', 'node-2']);
    for (const bad of [undefined, '', ' ', 'node-1,', 'Node_1', 'a/b']) expect(() => parseSurvivors(bad), String(bad)).toThrow(/survivors/);
  });

  it('without --i-understand-data-loss it refuses locally and says what may be lost', async () => {
    // The endpoint is never dialled: the refusal comes before any call.
    await expect(
      cmdPartitionRecover({ endpoint: '127.0.0.1:1', json: true, deadlineMs: 1000 }, '3', { survivors: 'node-1', iUnderstandDataLoss: false }),
    ).rejects.toMatchObject({ code: 'CONDITION_FAILED', details: { reason: 'confirmationRequired' }, message: expect.stringMatching(/LOST/) });
  });

  it('refuses a bad partition id, and surfaces the node refusal (a lone node has no Raft groups)', async () => {
    await expect(
      cmdPartitionRecover({ endpoint: lone.node.grpcAddress, json: true, deadlineMs: 5000 }, 'x', { survivors: 'a', iUnderstandDataLoss: true }),
    ).rejects.toThrow(/not a partition id/);
    await expect(
      cmdPartitionRecover({ endpoint: lone.node.grpcAddress, json: true, deadlineMs: 5000 }, 'meta', { survivors: 'a', iUnderstandDataLoss: true }),
    ).rejects.toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });
});
