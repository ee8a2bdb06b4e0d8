import type { NodeId } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { type NodeState, NodeState as NS } from './meta-state.ts';
import { META_VOTER_DOWN_GRACE_MS, type MetaReplicaView, metaVotersTarget, planMetaVoters } from './meta-voters-plan.ts';

const id = (s: string) => s as NodeId;
const nodes = (states: Record<string, NodeState>) => Object.entries(states).map(([n, state]) => ({ id: id(n), state, grpcAddress: `127.0.0.1:${n.length}` }));
const voter = (n: string, healthy = true): MetaReplicaView => ({ nodeId: id(n), voter: true, reachable: healthy, caughtUp: healthy });
const learner = (n: string, caughtUp: boolean): MetaReplicaView => ({ nodeId: id(n), voter: false, reachable: true, caughtUp });
const A = NS.Active;
const D = NS.Draining;
const R = NS.Removed;

describe('meta group voters follow the registry', () => {
  it('targets every active node up to five, odd where it can', () => {
    expect([1, 2, 3, 4, 5, 6, 9].map((n) => metaVotersTarget(n))).toEqual([1, 2, 3, 3, 5, 5, 5]);
  });

  it('grows to five voters as nodes join, one learner at a time, promoted once caught up', () => {
    const base = { self: id('n1'), nodes: nodes({ n1: A, n2: A, n3: A, n4: A, n5: A }) };
    expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), voter('n3')] })).toEqual({ kind: 'addLearner', node: 'n4' });
    expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), voter('n3'), learner('n4', false)] })).toBeUndefined();
    expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), voter('n3'), learner('n4', true)] })).toEqual({ kind: 'promote', node: 'n4' });
    const four = [voter('n1'), voter('n2'), voter('n3'), voter('n4')];
    expect(planMetaVoters({ ...base, replicas: four })).toEqual({ kind: 'addLearner', node: 'n5' });
    expect(planMetaVoters({ ...base, replicas: [...four, voter('n5')] })).toBeUndefined();
  });

  it('skips a node it could not add recently and tries the next', () => {
    const ns = nodes({ n1: A, n2: A, n3: A, n4: A, n5: A });
    const replicas = [voter('n1'), voter('n2'), voter('n3')];
    expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas, avoid: new Set([id('n4')]) })).toEqual({ kind: 'addLearner', node: 'n5' });
    expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas, avoid: new Set([id('n4'), id('n5')]) })).toBeUndefined();
  });

  it('with four active nodes three voters are enough (no churn)', () => {
    const replicas = [voter('n1'), voter('n2'), voter('n3')];
    expect(planMetaVoters({ self: id('n1'), nodes: nodes({ n1: A, n2: A, n3: A, n4: A }), replicas })).toBeUndefined();
  });

  it('replaces a draining founder make-before-break, then removes it', () => {
    const ns = nodes({ n1: A, n2: D, n3: A, n4: A });
    expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas: [voter('n1'), voter('n2'), voter('n3')] })).toEqual({ kind: 'addLearner', node: 'n4' });
    expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas: [voter('n1'), voter('n2'), voter('n3'), voter('n4')] })).toEqual({
      kind: 'remove',
      node: 'n2',
      why: 'voter on a node that is not active',
    });
  });

  it('removes a leaving voter even without a replacement when the rest keep a majority', () => {
    const ns = nodes({ n1: A, n2: A, n3: A, n4: R });
    const replicas = [voter('n1'), voter('n2'), voter('n3'), voter('n4', false)];
    expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas })).toMatchObject({ kind: 'remove', node: 'n4' });
  });

  it('never removes a voter when the remaining healthy voters would not form a majority', () => {
    // 4 voters, n2 leaving, n3 and n4 unreachable: the 3 left would have 1 healthy (the leader).
    const ns = nodes({ n1: A, n2: D, n3: A, n4: A });
    const replicas = [voter('n1'), voter('n2'), voter('n3', false), voter('n4', false)];
    expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas })).toBeUndefined();
  });

  it('the leader on a draining node hands leadership to a healthy active voter first', () => {
    const ns = nodes({ n1: D, n2: A, n3: A, n4: A });
    const replicas = [voter('n1'), voter('n2', false), voter('n3'), voter('n4')];
    expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas })).toEqual({ kind: 'transferLeader', to: 'n3' });
  });

  it('removes a learner whose node is no longer active, and nodes not in the registry count as leaving', () => {
    const ns = nodes({ n1: A, n2: A, n3: A, n4: D });
    expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas: [voter('n1'), voter('n2'), voter('n3'), learner('n4', true)] })).toMatchObject({
      kind: 'remove',
      node: 'n4',
    });
    const replicas = [voter('n1'), voter('n2'), voter('n3'), voter('ghost')];
    expect(planMetaVoters({ self: id('n1'), nodes: nodes({ n1: A, n2: A, n3: A }), replicas })).toMatchObject({ kind: 'remove', node: 'ghost' });
  });

  describe('a voter on an active node that stays unreachable past the grace (rule 4)', () => {
    const down = (n: string, ms: number): MetaReplicaView => ({ nodeId: id(n), voter: true, reachable: false, caughtUp: false, downForMs: ms });
    const grace = 60_000;

    it('is replaced make-before-break: a learner first, promoted, then the dead voter removed', () => {
      const ns = nodes({ n1: A, n2: A, n3: A, n4: A });
      const base = { self: id('n1'), nodes: ns, downGraceMs: grace };
      expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), down('n3', grace)] })).toEqual({ kind: 'addLearner', node: 'n4' });
      expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), down('n3', grace), learner('n4', true)] })).toEqual({
        kind: 'promote',
        node: 'n4',
      });
      expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), down('n3', grace), voter('n4')] })).toEqual({
        kind: 'remove',
        node: 'n3',
        why: 'voter unreachable for 60 s, replaced',
      });
      // Once it is gone, three healthy voters are the target: nothing more, even if n3 comes back.
      expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), voter('n4')] })).toBeUndefined();
    });

    it('never promotes an unreachable learner, and drops one that stays unreachable', () => {
      const ns = nodes({ n1: A, n2: A, n3: A, n4: A });
      const gone: MetaReplicaView = { nodeId: id('n4'), voter: false, reachable: false, caughtUp: true, downForMs: grace - 1 };
      const base = { self: id('n1'), nodes: ns, downGraceMs: grace };
      expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), down('n3', grace), gone] })).toBeUndefined();
      expect(planMetaVoters({ ...base, replicas: [voter('n1'), voter('n2'), down('n3', grace), { ...gone, downForMs: grace }] })).toEqual({
        kind: 'remove',
        node: 'n4',
        why: 'learner unreachable past the grace',
      });
    });

    it('waits out the grace: a short outage changes nothing', () => {
      const ns = nodes({ n1: A, n2: A, n3: A, n4: A });
      const replicas = [voter('n1'), voter('n2'), down('n3', grace - 1)];
      expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas, downGraceMs: grace })).toBeUndefined();
      const four = [voter('n1'), voter('n2'), down('n3', grace - 1), voter('n4')];
      expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas: four, downGraceMs: grace })).toBeUndefined();
    });

    it('without a spare node keeps the dead voter (removing it would leave two voters, both needed)', () => {
      const ns = nodes({ n1: A, n2: A, n3: A });
      expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas: [voter('n1'), voter('n2'), down('n3', 10 * grace)], downGraceMs: grace })).toBeUndefined();
    });

    it('never removes a dead voter when the others would not keep a healthy majority', () => {
      // 4 voters: n3 dead past the grace, n4 unreachable recently: left {n1, n2, n4} with n4 unhealthy is 2 of 3, fine;
      // with n2 unhealthy too only the leader is healthy: no removal.
      const ns = nodes({ n1: A, n2: A, n3: A, n4: A });
      const ok = [voter('n1'), voter('n2'), down('n3', grace), voter('n4', false)];
      expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas: ok, downGraceMs: grace })).toMatchObject({ kind: 'remove', node: 'n3' });
      const bad = [voter('n1'), voter('n2', false), down('n3', grace), voter('n4', false)];
      expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas: bad, downGraceMs: grace })).toBeUndefined();
    });

    it('replaces the longest-dead voter first, and the default grace is minutes, not seconds', () => {
      const ns = nodes({ n1: A, n2: A, n3: A, n4: A, n5: A, n6: A });
      const replicas = [voter('n1'), voter('n2'), down('n3', 2 * grace), down('n4', 3 * grace), voter('n5'), voter('n6')];
      expect(planMetaVoters({ self: id('n1'), nodes: ns, replicas, downGraceMs: grace })).toMatchObject({ kind: 'remove', node: 'n4' });
      expect(META_VOTER_DOWN_GRACE_MS).toBeGreaterThanOrEqual(60_000);
      expect(
        planMetaVoters({ self: id('n1'), nodes: ns, replicas: [voter('n1'), voter('n2'), down('n3', 30_000), voter('n4'), voter('n5'), voter('n6')] }),
      ).toBeUndefined();
    });
  });
});
