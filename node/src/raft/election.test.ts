/**
 * Leader election, named after the rules of the Raft paper (§5.1, §5.2, §5.4.1) and of Ongaro's
 * dissertation (§4.2.3 disruptive servers, §6.2 CheckQuorum, §9.6 PreVote).
 */
import { describe, expect, it } from 'vitest';
import { CAMPAIGN_TRANSFER, MessageType } from './messages.ts';
import { Prng } from './prng.ts';
import { TestCluster } from './testing/cluster.ts';
import { A, B, C, D, drain, E, message, newNode, run, storageWith } from './testing/fixtures.ts';
import { Role } from './types.ts';

function leaderAtTerm2() {
  const s = storageWith([A, B, C]);
  const n = newNode(A, s, { preVote: false });
  n.campaign();
  n.step(message({ type: MessageType.VoteResponse, from: B, to: A, term: 2 }));
  drain(n, s);
  return { n, s };
}

describe('§5.1 terms', () => {
  it('§5.1 a replica that sees a higher term adopts it and becomes a follower', () => {
    const { n } = leaderAtTerm2();
    expect(n.basicStatus().softState.role).toBe(Role.Leader);
    n.step(message({ type: MessageType.Heartbeat, from: B, to: A, term: 5 }));
    expect(n.basicStatus().hardState.term).toBe(5);
    expect(n.basicStatus().softState).toEqual({ role: Role.Follower, leader: B });
  });

  it('§5.1 a stale leader is answered with the current term and steps down', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('a');
    c.tick(['b', 'c'], 40);
    const next = ['b', 'c'].find((id) => c.node(id).basicStatus().softState.role === Role.Leader);
    expect(next).toBeDefined();
    expect(c.node('a').basicStatus().softState.role).toBe(Role.Leader);
    c.heal();
    c.tick('a', 1);
    const st = c.node('a').basicStatus();
    expect(st.softState.role).toBe(Role.Follower);
    expect(st.hardState.term).toBe(c.node(next as string).basicStatus().hardState.term);
  });
});

describe('§5.2 leader election', () => {
  it('§5.2 a follower that hears from no leader for an election timeout starts an election (PreVote first)', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(A, s);
    for (let i = 0; i < 20 && n.basicStatus().softState.role === Role.Follower; i++) n.tick();
    expect(n.basicStatus().softState.role).toBe(Role.PreCandidate);
    expect(n.basicStatus().hardState.term).toBe(1);
    const msgs = drain(n, s).messages;
    expect(msgs.map((m) => [m.type, m.to, m.term, m.index, m.logTerm])).toEqual([
      [MessageType.PreVote, B, 2, 1, 1],
      [MessageType.PreVote, C, 2, 1, 1],
    ]);
  });

  it('§5.2 a candidate that gets votes from a majority becomes leader', () => {
    const s = storageWith([A, B, C, D, E]);
    const n = newNode(A, s);
    n.campaign();
    drain(n, s);
    n.step(message({ type: MessageType.PreVoteResponse, from: B, to: A, term: 2 }));
    expect(n.basicStatus().softState.role).toBe(Role.PreCandidate);
    n.step(message({ type: MessageType.PreVoteResponse, from: C, to: A, term: 2 }));
    expect(n.basicStatus().softState.role).toBe(Role.Candidate);
    expect(n.basicStatus().hardState).toMatchObject({ term: 2, vote: A });
    const votes = drain(n, s).messages;
    expect(votes.filter((m) => m.type === MessageType.Vote).map((m) => m.to)).toEqual([B, C, D, E]);
    n.step(message({ type: MessageType.VoteResponse, from: B, to: A, term: 2 }));
    n.step(message({ type: MessageType.VoteResponse, from: C, to: A, term: 2, reject: true }));
    expect(n.basicStatus().softState.role).toBe(Role.Candidate);
    n.step(message({ type: MessageType.VoteResponse, from: D, to: A, term: 2 }));
    expect(n.basicStatus().softState).toEqual({ role: Role.Leader, leader: A });
  });

  it('§5.2 a candidate rejected by a majority returns to follower', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(A, s, { preVote: false });
    n.campaign();
    n.step(message({ type: MessageType.VoteResponse, from: B, to: A, term: 2, reject: true }));
    n.step(message({ type: MessageType.VoteResponse, from: C, to: A, term: 2, reject: true }));
    expect(n.basicStatus().softState.role).toBe(Role.Follower);
    expect(n.basicStatus().hardState.term).toBe(2);
  });

  it('§5.2 a voter grants at most one vote per term, first come first served', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(C, s);
    const vote = (from: typeof A) => {
      n.step(message({ type: MessageType.Vote, from, to: C, term: 2, index: 1, logTerm: 1 }));
      const [resp] = drain(n, s).messages;
      return resp;
    };
    expect(vote(A)).toMatchObject({ type: MessageType.VoteResponse, to: A, term: 2, reject: false });
    expect(s.hardState().vote).toBe(A);
    expect(vote(B)).toMatchObject({ to: B, reject: true });
    expect(vote(A)).toMatchObject({ to: A, reject: false });
  });

  it('§5.2 a candidate that receives an append from a leader of its term steps down', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(A, s, { preVote: false });
    n.campaign();
    expect(n.basicStatus().softState.role).toBe(Role.Candidate);
    n.step(message({ type: MessageType.Append, from: B, to: A, term: 2, index: 1, logTerm: 1 }));
    expect(n.basicStatus().softState).toEqual({ role: Role.Follower, leader: B });
    expect(n.basicStatus().hardState.term).toBe(2);
  });

  it('§5.2 election timeouts are randomized in [electionTick, 2*electionTick)', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 60; seed++) {
      const n = newNode(A, storageWith([A, B, C]), { random: new Prng(seed) });
      let ticks = 0;
      while (n.basicStatus().softState.role === Role.Follower) {
        n.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(5);
  });

  it('§5.2 the leader sends heartbeats every heartbeatTick', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(A, s, { preVote: false, heartbeatTick: 3 });
    n.campaign();
    n.step(message({ type: MessageType.VoteResponse, from: B, to: A, term: 2 }));
    drain(n, s);
    const beats: number[] = [];
    for (let t = 1; t <= 9; t++) {
      n.tick();
      if (drain(n, s).messages.some((m) => m.type === MessageType.Heartbeat)) beats.push(t);
    }
    expect(beats).toEqual([3, 6, 9]);
  });

  it('§5.2 a single voter elects itself at once', () => {
    const s = storageWith([A]);
    const n = newNode(A, s);
    n.campaign();
    expect(n.basicStatus().softState.role).toBe(Role.Leader);
    expect(n.basicStatus().hardState.term).toBe(2);
  });
});

describe('§5.4.1 election restriction', () => {
  const voter = () => {
    // Voter log: 2..4 at term 2, 5..6 at term 3.
    const s = storageWith([A, B, C], { term: 3, commit: 1 }, [...run(2, 4, 2), ...run(5, 6, 3)]);
    return { s, n: newNode(C, s) };
  };
  const ask = (lastIndex: number, lastTerm: number) => {
    const { s, n } = voter();
    n.step(message({ type: MessageType.Vote, from: A, to: C, term: 4, index: lastIndex, logTerm: lastTerm }));
    return drain(n, s).messages[0];
  };

  it('§5.4.1 a voter refuses a candidate whose last log term is lower, however long its log', () => {
    expect(ask(100, 2)).toMatchObject({ type: MessageType.VoteResponse, reject: true });
  });

  it('§5.4.1 a voter refuses a candidate with the same last term but a shorter log', () => {
    expect(ask(5, 3)).toMatchObject({ reject: true });
  });

  it('§5.4.1 a voter grants a candidate whose log is at least as up-to-date', () => {
    expect(ask(6, 3)).toMatchObject({ reject: false, term: 4 });
    expect(ask(7, 3)).toMatchObject({ reject: false });
    expect(ask(2, 4)).toMatchObject({ reject: false });
  });
});

describe('§9.6 PreVote and §4.2.3 disruptive servers', () => {
  it('§9.6 a pre-vote request changes neither the voter’s term nor its vote', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(C, s);
    n.step(message({ type: MessageType.PreVote, from: A, to: C, term: 2, index: 1, logTerm: 1 }));
    const [resp] = drain(n, s).messages;
    expect(resp).toMatchObject({ type: MessageType.PreVoteResponse, term: 2, reject: false });
    expect(n.basicStatus().hardState).toMatchObject({ term: 1, vote: undefined });
  });

  it('§9.6 PreVote: a partitioned replica does not inflate its term, and rejoining does not disrupt the leader', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    c.tick('all', 100);
    expect(c.node('c').basicStatus().hardState.term).toBe(2);
    expect(c.node('c').basicStatus().softState.role).toBe(Role.PreCandidate);
    c.heal();
    c.tick('all', 30);
    expect(c.leader()).toBe('a');
    for (const id of ['a', 'b', 'c']) expect(c.node(id).basicStatus().hardState.term).toBe(2);
  });

  it('§9.6 without PreVote the same rejoin deposes the leader (why PreVote is on)', () => {
    const c = new TestCluster(['a', 'b', 'c'], { preVote: false });
    c.elect('a');
    c.isolate('c');
    c.tick('all', 100);
    expect(c.node('c').basicStatus().hardState.term).toBeGreaterThan(2);
    c.heal();
    c.tick('all', 2);
    expect(c.node('a').basicStatus().hardState.term).toBeGreaterThan(2);
  });

  it('§4.2.3 a follower that heard from its leader within the election timeout ignores vote requests', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.tick('all', 3);
    const b = c.member('b');
    const before = b.sent.length;
    c.deliver(message({ type: MessageType.Vote, from: C, to: B, term: 9, index: 100, logTerm: 9 }));
    c.flush();
    expect(b.sent.length).toBe(before);
    expect(b.node.basicStatus().hardState.term).toBe(2);
    // A campaign asked for by the leader (TimeoutNow) overrides the lease.
    c.deliver(message({ type: MessageType.Vote, from: C, to: B, term: 9, index: 100, logTerm: 9, context: CAMPAIGN_TRANSFER }));
    c.flush();
    expect(b.sent.at(-1)).toMatchObject({ type: MessageType.VoteResponse, to: C, reject: false, term: 9 });
  });

  it('§6.2 CheckQuorum: a leader that hears from no quorum for an election timeout steps down', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('a');
    c.tick('a', 9);
    expect(c.node('a').basicStatus().softState.role).toBe(Role.Leader);
    c.tick('a', 11);
    expect(c.node('a').basicStatus().softState).toEqual({ role: Role.Follower, leader: undefined });
  });

  it('§6.2 a leader in contact with a quorum keeps leading through CheckQuorum rounds', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    c.tick(['a', 'b'], 100);
    expect(c.leader()).toBe('a');
    expect(c.node('a').basicStatus().hardState.term).toBe(2);
  });
});
