/**
 * Membership changes (Raft paper §6, dissertation §4): learner first, one change at a time,
 * each taking effect when applied.
 */
import { describe, expect, it } from 'vitest';
import { ConfChangeRejection } from './conf-change.ts';
import { MemoryRaftStorage } from './memory-storage.ts';
import { MessageType } from './messages.ts';
import { Refusal } from './results.ts';
import { TestCluster, utf8 } from './testing/cluster.ts';
import { A, B, C, D, drain, E, message, newNode, storageWith } from './testing/fixtures.ts';
import { ConfChangeType, Role } from './types.ts';

const addLearner = (replica: typeof A) => ({ type: ConfChangeType.AddLearner, replica });
const promote = (replica: typeof A) => ({ type: ConfChangeType.PromoteLearner, replica });
const remove = (replica: typeof A) => ({ type: ConfChangeType.RemoveReplica, replica });

describe('§6 learners', () => {
  it('§6 learners receive the log but never campaign', () => {
    const c = new TestCluster(['a', 'b', 'c'], { learners: ['d'] });
    c.elect('a');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    expect(c.appliedData('d')).toEqual(['x']);
    c.isolate('d');
    c.tick('d', 100);
    c.node('d').campaign();
    expect(c.node('d').basicStatus().softState.role).toBe(Role.Follower);
    expect(c.node('d').basicStatus().hardState.term).toBe(2);
  });

  it('§6 learners do not vote: a learner’s vote does not count toward a quorum', () => {
    const s = storageWith([A, B, C], {}, [], [D]);
    const n = newNode(A, s, { preVote: false });
    n.campaign();
    n.step(message({ type: MessageType.VoteResponse, from: D, to: A, term: 2 }));
    expect(n.basicStatus().softState.role).toBe(Role.Candidate);
    n.step(message({ type: MessageType.VoteResponse, from: B, to: A, term: 2 }));
    expect(n.basicStatus().softState.role).toBe(Role.Leader);
  });

  it('§6 a learner’s acknowledgements do not count toward the commit quorum', () => {
    const c = new TestCluster(['a', 'b', 'c'], { learners: ['d'] });
    c.elect('a');
    c.cutLink('a', 'b');
    c.cutLink('a', 'c');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    expect(c.member('d').storage.lastIndex()).toBe(3);
    expect(c.appliedData('a')).toEqual([]);
    expect(c.node('a').basicStatus().hardState.commit).toBe(2);
  });
});

describe('§6 membership changes', () => {
  it('§6 a new replica joins as a learner: it catches up from a snapshot, then from the log', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    expect(c.node('a').proposeConfChange(addLearner(D))).toMatchObject({ ok: true, index: 4 });
    c.add(D, new MemoryRaftStorage());
    c.stabilize();
    const d = c.member('d');
    expect(d.restored.map((s) => s.metadata.index)).toEqual([1]);
    expect(c.appliedData('d')).toEqual(['x']);
    expect(d.node.confState()).toEqual({ voters: [A, B, C], learners: [D] });
    expect(c.node('a').status().progress.get(D)).toMatchObject({ isLearner: true, match: 4 });
  });

  it('§6 a learner is promoted to voter when the change applies, and then counts toward quorum', () => {
    const c = new TestCluster(['a', 'b', 'c'], { learners: ['d'] });
    c.elect('a');
    expect(c.node('a').proposeConfChange(promote(D)).ok).toBe(true);
    c.stabilize();
    for (const id of ['a', 'b', 'c', 'd']) expect(c.node(id).confState()).toEqual({ voters: [A, B, C, D], learners: [] });
    // Four voters: a and d alone are no longer a majority.
    c.cutLink('a', 'b');
    c.cutLink('a', 'c');
    c.node('a').propose(utf8('y'));
    c.stabilize();
    expect(c.appliedData('a')).toEqual([]);
    c.heal();
    c.cutLink('a', 'c');
    c.tick('a', 1);
    expect(c.appliedData('a')).toEqual(['y']);
  });

  it('§6 only one membership change may be pending at a time', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    expect(c.node('a').proposeConfChange(addLearner(D)).ok).toBe(true);
    expect(c.node('a').proposeConfChange(addLearner(E))).toMatchObject({ ok: false, reason: Refusal.ConfChangePending });
    c.add(D);
    c.stabilize();
    expect(c.node('a').proposeConfChange(addLearner(E)).ok).toBe(true);
  });

  it('§6 a new leader may not change membership until it has committed an entry of its term', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.filter = (m) => m.type !== MessageType.AppendResponse;
    c.elect('a');
    expect(c.leader()).toBe('a');
    expect(c.node('a').proposeConfChange(addLearner(D))).toMatchObject({ ok: false, reason: Refusal.LeaderNotReady });
    c.heal();
    c.tick('a', 1);
    expect(c.node('a').proposeConfChange(addLearner(D)).ok).toBe(true);
  });

  it('§6 invalid changes are refused with a reason', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    const a = c.node('a');
    expect(a.proposeConfChange(addLearner(B))).toMatchObject({ ok: false, reason: ConfChangeRejection.AlreadyMember });
    expect(a.proposeConfChange(promote(B))).toMatchObject({ ok: false, reason: ConfChangeRejection.NotLearner });
    expect(a.proposeConfChange(remove(D))).toMatchObject({ ok: false, reason: ConfChangeRejection.NotMember });
    expect(c.node('b').proposeConfChange(addLearner(D))).toMatchObject({ ok: false, reason: Refusal.NotLeader, leader: A });
    const single = new TestCluster(['a']);
    single.elect('a');
    expect(single.node('a').proposeConfChange(remove(A))).toMatchObject({ ok: false, reason: ConfChangeRejection.LastVoter });
  });

  it('§6 a removed leader steps down once its removal applies, and the rest elect a new leader', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    expect(c.node('a').proposeConfChange(remove(A)).ok).toBe(true);
    c.stabilize();
    expect(c.node('a').basicStatus().softState.role).toBe(Role.Follower);
    expect(c.node('b').confState()).toEqual({ voters: [B, C], learners: [] });
    c.tick('all', 40);
    const leader = c.leader();
    expect(leader === 'b' || leader === 'c').toBe(true);
    expect(c.node('a').basicStatus().softState.role).toBe(Role.Follower);
    c.node(leader as string).propose(utf8('after'));
    c.stabilize();
    expect(c.appliedData(leader === 'b' ? 'c' : 'b')).toEqual(['after']);
  });

  it('§6 a replica that applied its own removal never campaigns', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.node('a').proposeConfChange(remove(C));
    c.stabilize();
    expect(c.node('c').confState().voters).toEqual([A, B]);
    c.isolate('c');
    c.tick('c', 100);
    expect(c.node('c').basicStatus()).toMatchObject({ softState: { role: Role.Follower }, hardState: { term: 2 } });
  });

  it('§4.2.3 a removed replica that missed its removal cannot disrupt the cluster', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    c.node('a').proposeConfChange(remove(C));
    c.stabilize();
    expect(c.node('a').confState().voters).toEqual([A, B]);
    c.tick('c', 60);
    expect(c.node('c').basicStatus().softState.role).toBe(Role.PreCandidate);
    c.heal();
    c.tick('all', 60);
    expect(c.leader()).toBe('a');
    expect(c.node('a').basicStatus().hardState.term).toBe(2);
    expect(c.node('b').basicStatus().hardState.term).toBe(2);
  });

  it('§6 a replica with an empty log belongs to no group and never campaigns', () => {
    const s = new MemoryRaftStorage();
    const n = newNode(D, s);
    for (let i = 0; i < 100; i++) n.tick();
    n.campaign();
    expect(drain(n, s).messages).toEqual([]);
    expect(n.basicStatus().softState.role).toBe(Role.Follower);
  });
});
