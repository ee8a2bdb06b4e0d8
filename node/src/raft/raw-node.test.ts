/**
 * The driver contract of `RaftNode`: what a Ready contains, in which order it must be handled,
 * and that the core is a deterministic function of its inputs.
 */
import { describe, expect, it } from 'vitest';
import type { MemoryRaftStorage } from './memory-storage.ts';
import { MessageType } from './messages.ts';
import { Prng } from './prng.ts';
import { RaftNode, RaftNodeError } from './raw-node.ts';
import { utf8 } from './testing/cluster.ts';
import { A, B, C, drain, message, newNode, run, storageWith } from './testing/fixtures.ts';
import { Role } from './types.ts';

describe('Ready', () => {
  it('a vote and the message that reveals it come in the same Ready, which must be synced first', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(C, s);
    n.step(message({ type: MessageType.Vote, from: A, to: C, term: 2, index: 1, logTerm: 1 }));
    const rd = n.ready();
    expect(rd.hardState).toMatchObject({ term: 2, vote: A });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages).toHaveLength(1);
    n.advance(rd);
    expect(n.hasReady()).toBe(false);
  });

  it('a leader counts its own copy of an entry only once the driver has persisted it', () => {
    const s = storageWith([A]);
    const n = newNode(A, s);
    n.campaign();
    drain(n, s);
    n.propose(utf8('x'));
    const rd = n.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([3]);
    expect(rd.committedEntries).toEqual([]);
    s.append(rd.entries);
    n.advance(rd);
    const next = n.ready();
    expect(next.committedEntries.map((e) => e.index)).toEqual([3]);
  });

  it('committed entries handed to a follower are durable or persisted by the same Ready', () => {
    const s = storageWith([A, B, C], { term: 2 });
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Append, from: A, to: B, term: 2, index: 1, logTerm: 1, entries: run(2, 4, 2), commit: 3 }));
    const rd = n.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2, 3, 4]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2, 3]);
    expect(rd.hardState?.commit).toBe(3);
  });

  it('reports role and leader changes in softState', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Heartbeat, from: A, to: B, term: 2 }));
    expect(n.ready().softState).toEqual({ role: Role.Follower, leader: A });
  });

  it('ready() twice without advance() and advance() with a stale Ready are refused', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(A, s);
    n.campaign();
    const rd = n.ready();
    expect(n.hasReady()).toBe(false);
    expect(() => n.ready()).toThrow(RaftNodeError);
    n.advance(rd);
    expect(() => n.advance(rd)).toThrow(RaftNodeError);
  });

  it('accepts ticks and messages between ready() and advance(); their output comes in the next Ready', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(A, s, { preVote: false });
    n.campaign();
    const rd = n.ready();
    n.step(message({ type: MessageType.VoteResponse, from: B, to: A, term: 2 }));
    s.setHardState(rd.hardState ?? s.hardState());
    n.advance(rd);
    const next = n.ready();
    expect(next.softState.role).toBe(Role.Leader);
    expect(next.messages.filter((m) => m.type === MessageType.Append).map((m) => m.to)).toEqual([B, C]);
  });

  it('has nothing to do when nothing happened', () => {
    const s = storageWith([A, B, C]);
    const n = newNode(A, s);
    expect(n.hasReady()).toBe(false);
    n.tick();
    expect(n.hasReady()).toBe(false);
  });

  it('refuses a message addressed to another replica', () => {
    const n = newNode(A, storageWith([A, B, C]));
    expect(() => n.step(message({ type: MessageType.Heartbeat, from: B, to: C, term: 2 }))).toThrow(RaftNodeError);
  });

  it('restarted with an applied index, it does not hand out applied entries again', () => {
    const s = storageWith([A, B, C], { term: 2, commit: 5 }, run(2, 6, 2));
    const n = newNode(A, s, { applied: 4 });
    expect(n.ready().committedEntries.map((e) => e.index)).toEqual([5]);
  });
});

describe('determinism', () => {
  it('the same inputs produce the same outputs', () => {
    const script = (n: RaftNode, s: MemoryRaftStorage) => {
      const out: unknown[] = [];
      for (let i = 0; i < 40; i++) {
        n.tick();
        if (i === 25) n.step(message({ type: MessageType.PreVoteResponse, from: B, to: A, term: 2 }));
        if (i === 26) n.step(message({ type: MessageType.VoteResponse, from: C, to: A, term: 2 }));
        if (i === 30) n.propose(utf8('x'));
        out.push(drain(n, s));
      }
      return out;
    };
    const run1 = () => {
      const s = storageWith([A, B, C]);
      return script(new RaftNode({ id: A, storage: s, random: new Prng(42), electionTick: 10, heartbeatTick: 1 }), s);
    };
    expect(run1()).toEqual(run1());
  });
});
