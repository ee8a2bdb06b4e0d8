/**
 * Leadership transfer (dissertation §3.10): the leader brings the target up to date, then tells
 * it to time out now; the target campaigns at once, past PreVote and leases.
 */
import { describe, expect, it } from 'vitest';
import { MessageType } from './messages.ts';
import { Refusal } from './results.ts';
import { TestCluster, utf8 } from './testing/cluster.ts';
import { C, D } from './testing/fixtures.ts';
import { Role } from './types.ts';

describe('§3.10 leadership transfer', () => {
  it('§3.10 the leader catches the target up, sends TimeoutNow, and the target wins', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.cutLink('a', 'c');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    c.heal();
    expect(c.node('a').transferLeader(C).ok).toBe(true);
    c.stabilize();
    expect(c.leader()).toBe('c');
    expect(c.node('c').basicStatus().hardState.term).toBe(3);
    const toC = c.member('a').sent.filter((m) => m.to === C);
    const timeoutNow = toC.findIndex((m) => m.type === MessageType.TimeoutNow);
    const lastAppend = toC.findLastIndex((m) => m.type === MessageType.Append && m.entries.length > 0);
    expect(timeoutNow).toBeGreaterThan(lastAppend);
    c.node('c').propose(utf8('y'));
    c.stabilize();
    expect(c.appliedData('a')).toEqual(['x', 'y']);
  });

  it('§3.10 proposals are refused while a transfer is in progress', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    c.node('a').transferLeader(C);
    expect(c.node('a').propose(utf8('x'))).toMatchObject({ ok: false, reason: Refusal.LeaderTransferring });
  });

  it('§3.10 a transfer is abandoned after an election timeout if the target does not take over', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    c.node('a').transferLeader(C);
    c.tick(['a', 'b'], 10);
    expect(c.node('a').basicStatus()).toMatchObject({ softState: { role: Role.Leader }, leadTransferee: undefined });
    expect(c.node('a').propose(utf8('x')).ok).toBe(true);
  });

  it('§3.10 only a voter can take over, and only the leader can hand over', () => {
    const c = new TestCluster(['a', 'b', 'c'], { learners: ['d'] });
    c.elect('a');
    expect(c.node('a').transferLeader(D)).toMatchObject({ ok: false, reason: Refusal.NotVoter });
    expect(c.node('b').transferLeader(C)).toMatchObject({ ok: false, reason: Refusal.NotLeader });
  });
});
