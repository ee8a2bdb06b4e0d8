/**
 * Linearizable reads without writing to the log (dissertation §6.4 ReadIndex, §6.4.1 leases).
 */
import { describe, expect, it } from 'vitest';
import { MessageType } from './messages.ts';
import { RaftConfigError } from './raft.ts';
import { Refusal } from './results.ts';
import { TestCluster, utf8 } from './testing/cluster.ts';
import { A, B, C, message, newNode, storageWith } from './testing/fixtures.ts';
import { ReadOnlyOption } from './types.ts';

const ctx = (s: string) => utf8(s);

describe('§6.4 ReadIndex', () => {
  it('§6.4 the leader answers a read only after a heartbeat round confirms its leadership', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    expect(c.node('a').readIndex(ctx('r1')).ok).toBe(true);
    const beats = c.takeMessages().filter((m) => m.type === MessageType.Heartbeat);
    expect(beats.map((m) => new TextDecoder().decode(m.context))).toEqual(['r1', 'r1']);
    expect(c.member('a').readStates).toEqual([]);
    for (const m of beats) c.deliver(m);
    c.stabilize();
    expect(c.member('a').readStates).toEqual([{ index: 3, context: ctx('r1') }]);
  });

  it('§6.4 ReadIndex waits until a new leader has committed an entry of its term', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.filter = (m) => m.type !== MessageType.AppendResponse;
    c.elect('a');
    expect(c.node('a').readIndex(ctx('early')).ok).toBe(true);
    c.stabilize();
    expect(c.member('a').readStates).toEqual([]);
    c.heal();
    c.tick('a', 1);
    expect(c.member('a').readStates).toEqual([{ index: 2, context: ctx('early') }]);
  });

  it('§6.4 a leader cut off from the quorum never answers a read', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('a');
    c.node('a').readIndex(ctx('r'));
    c.tick('a', 15);
    expect(c.member('a').readStates).toEqual([]);
  });

  it('§6.4 a follower’s read is forwarded to the leader and answered with the leader’s commit index', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.filter = (m) => !(m.type === MessageType.Append && m.to === C);
    c.node('a').propose(utf8('x'));
    c.stabilize();
    expect(c.node('c').basicStatus().hardState.commit).toBe(2);
    expect(c.node('c').readIndex(ctx('f')).ok).toBe(true);
    c.stabilize();
    // The read point is the leader's commit index, ahead of what c has applied: c must wait.
    expect(c.member('c').readStates).toEqual([{ index: 3, context: ctx('f') }]);
  });

  it('§6.4 one heartbeat round answers every earlier read, in order', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.filter = (m) => m.type !== MessageType.Heartbeat;
    c.node('a').readIndex(ctx('1'));
    c.node('a').readIndex(ctx('2'));
    c.stabilize();
    c.heal();
    c.node('a').readIndex(ctx('3'));
    c.stabilize();
    expect(c.member('a').readStates.map((r) => new TextDecoder().decode(r.context))).toEqual(['1', '2', '3']);
  });

  it('§6.4 a replica that knows no leader refuses a read', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    expect(c.node('b').readIndex(ctx('r'))).toMatchObject({ ok: false, reason: Refusal.NotLeader, leader: undefined });
  });
});

describe('§6.4.1 leader leases', () => {
  it('§6.4.1 within its lease the leader answers at once, without a heartbeat round', () => {
    const c = new TestCluster(['a', 'b', 'c'], { readOnlyOption: ReadOnlyOption.Lease });
    c.elect('a');
    c.tick('a', 1); // one acknowledged heartbeat round starts the lease
    c.node('a').readIndex(ctx('l'));
    const msgs = c.takeMessages();
    expect(msgs).toEqual([]);
    expect(c.member('a').readStates).toEqual([{ index: 2, context: ctx('l') }]);
  });

  it('§6.4.1 a leader whose lease ran out confirms leadership with a heartbeat round instead', () => {
    const c = new TestCluster(['a', 'b', 'c'], { readOnlyOption: ReadOnlyOption.Lease });
    c.elect('a');
    c.tick('a', 1);
    c.isolate('a');
    c.tick('a', 9);
    c.node('a').readIndex(ctx('late'));
    c.tick('a', 5);
    expect(c.member('a').readStates).toEqual([]);
    c.heal();
    c.tick('a', 1);
    expect(c.member('a').readStates).toEqual([{ index: 2, context: ctx('late') }]);
  });

  it('§6.4.1 a leader that sent TimeoutNow stops trusting its lease (the forced campaign ignores leases)', () => {
    const c = new TestCluster(['a', 'b', 'c'], { readOnlyOption: ReadOnlyOption.Lease });
    c.elect('a');
    c.tick('a', 1);
    c.cutLink('c', 'a');
    c.node('a').transferLeader(C);
    c.stabilize();
    expect(c.node('c').basicStatus().softState.role).toBe('leader');
    // a has not heard of the new term yet; its lease would still look valid.
    expect(c.node('a').basicStatus().softState.role).toBe('leader');
    c.isolate('a');
    c.node('a').readIndex(ctx('stale?'));
    c.tick('a', 3);
    expect(c.member('a').readStates).toEqual([]);
  });

  it('§6.4.1 a restarted replica keeps its lease promise: no vote for an election timeout', () => {
    const c = new TestCluster(['a', 'b', 'c'], { readOnlyOption: ReadOnlyOption.Lease });
    c.elect('a');
    c.crash('b');
    c.restart('b');
    const before = c.member('b').sent.length;
    c.deliver(message({ type: MessageType.PreVote, from: C, to: B, term: 3, index: 9, logTerm: 2 }));
    c.flush();
    expect(c.member('b').sent.length).toBe(before);
    c.tick('b', 10);
    c.deliver(message({ type: MessageType.PreVote, from: C, to: B, term: 3, index: 9, logTerm: 2 }));
    c.flush();
    expect(c.member('b').sent.at(-1)).toMatchObject({ type: MessageType.PreVoteResponse, reject: false });
  });

  it('§6.4.1 leases require CheckQuorum', () => {
    expect(() => newNode(A, storageWith([A]), { readOnlyOption: ReadOnlyOption.Lease, checkQuorum: false })).toThrow(RaftConfigError);
  });
});
