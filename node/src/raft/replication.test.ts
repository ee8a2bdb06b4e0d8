/**
 * Log replication and safety, named after the Raft paper (§5.3, §5.4.2, §5.5), plus the flow
 * control and batching a pipelined implementation adds.
 */
import { describe, expect, it } from 'vitest';
import { MessageType, mergeAppends } from './messages.ts';
import { ProgressState } from './progress.ts';
import { Refusal } from './results.ts';
import { TestCluster, utf8 } from './testing/cluster.ts';
import { A, B, C, D, drain, E, entries, message, newNode, run, storageWith } from './testing/fixtures.ts';
import { Role } from './types.ts';

describe('§5.3 log replication', () => {
  it('§5.3 the leader appends a proposal to its log and replicates it to every follower', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    const res = c.node('a').propose(utf8('x'));
    expect(res).toEqual({ ok: true, index: 3, term: 2 });
    const appends = c.takeMessages().filter((m) => m.type === MessageType.Append);
    expect(appends.map((m) => m.to).sort()).toEqual([B, C]);
    for (const m of appends) expect(m.entries.map((e) => [e.index, e.term])).toEqual([[3, 2]]);
  });

  it('§5.3 an entry is committed once a majority stores it, and followers learn the commit index', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.cutLink('a', 'c');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    expect(c.appliedData('a')).toEqual(['x']);
    expect(c.appliedData('b')).toEqual(['x']);
    expect(c.appliedData('c')).toEqual([]);
    c.heal();
    c.tick('a', 1);
    expect(c.appliedData('c')).toEqual(['x']);
  });

  it('§5.3 a follower rejects AppendEntries whose prevLogIndex/term does not match', () => {
    const s = storageWith([A, B, C], { term: 2 }, run(2, 3, 2));
    const n = newNode(B, s);
    const append = (index: number, logTerm: number) => {
      n.step(message({ type: MessageType.Append, from: A, to: B, term: 2, index, logTerm, entries: entries([index + 1, 2]) }));
      return drain(n, s).messages[0];
    };
    expect(append(5, 2)).toMatchObject({ type: MessageType.AppendResponse, reject: true, index: 5, rejectHint: 3, logTerm: 2 });
    expect(append(3, 1)).toMatchObject({ reject: true, rejectHint: 1, logTerm: 1 });
    expect(s.lastIndex()).toBe(3);
    expect(append(3, 2)).toMatchObject({ reject: false, index: 4 });
  });

  it('§5.3 a follower deletes conflicting entries and takes the leader’s', () => {
    const s = storageWith([A, B, C], { term: 2 }, run(2, 4, 2));
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Append, from: A, to: B, term: 3, index: 2, logTerm: 2, entries: entries([3, 3]) }));
    const [resp] = drain(n, s).messages;
    expect(resp).toMatchObject({ reject: false, index: 3 });
    expect([s.term(2), s.term(3), s.lastIndex()]).toEqual([2, 3, 3]);
  });

  it('§5.3 a follower commits no further than the last entry the append proved to match', () => {
    // b holds a stale tail 4..6 of term 2; the leader of term 3 proves only 2..3 and says commit 6.
    const s = storageWith([A, B, C], { term: 3 }, run(2, 6, 2));
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Append, from: A, to: B, term: 3, index: 3, logTerm: 2, commit: 6 }));
    const { committed } = drain(n, s);
    expect(n.basicStatus().hardState.commit).toBe(3);
    expect(committed.map((e) => e.index)).toEqual([2, 3]);
  });

  it('§5.3 a follower keeps entries that match and are not in the append (a late, shorter duplicate)', () => {
    const s = storageWith([A, B, C], { term: 2 }, run(2, 5, 2));
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Append, from: A, to: B, term: 2, index: 2, logTerm: 2, entries: run(3, 3, 2) }));
    drain(n, s);
    expect(s.lastIndex()).toBe(5);
  });

  it('§5.3 AppendEntries is idempotent: a duplicated append leaves the log unchanged', () => {
    const s = storageWith([A, B, C], { term: 2 });
    const n = newNode(B, s);
    const m = message({ type: MessageType.Append, from: A, to: B, term: 2, index: 1, logTerm: 1, entries: run(2, 4, 2), commit: 3 });
    n.step(m);
    const first = drain(n, s);
    const log = s.dump().entries;
    n.step(m);
    const second = drain(n, s);
    expect(s.dump().entries).toEqual(log);
    expect(first.messages[0]).toMatchObject({ reject: false, index: 4 });
    // Already committed up to 3: the duplicate is acknowledged at the commit index.
    expect(second.messages[0]).toMatchObject({ reject: false, index: 3 });
    expect(first.committed.map((e) => e.index)).toEqual([2, 3]);
    expect(second.committed).toEqual([]);
  });

  it('§5.3 a leader finds the match point with one rejection per conflicting term, not per entry', () => {
    // a and b: 2..4@2 then 5..6@5. c: 2..4@2 then 26 entries of term 3 that never committed.
    const good = () => storageWith([A, B, C], { term: 5, commit: 4 }, [...run(2, 4, 2), ...run(5, 6, 5)]);
    const c = new TestCluster(['a', 'b', 'c'], {
      storages: { a: good(), b: good(), c: storageWith([A, B, C], { term: 5, commit: 4 }, [...run(2, 4, 2), ...run(5, 30, 3)]) },
    });
    c.elect('a');
    const rejects = c.member('c').sent.filter((m) => m.type === MessageType.AppendResponse && m.reject);
    expect(rejects.length).toBeLessThanOrEqual(2);
    expect(c.member('c').storage.lastIndex()).toBe(7);
    expect(c.member('c').storage.term(6)).toBe(5);
  });

  it('§5.3 a leader never overwrites or deletes entries in its own log (Leader Append-Only)', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    const before = c.member('a').storage.dump().entries;
    // A stale append from an old term with a conflicting entry.
    c.deliver(message({ type: MessageType.Append, from: B, to: A, term: 1, index: 1, logTerm: 1, entries: entries([2, 1], [3, 1]) }));
    c.stabilize();
    expect(c.member('a').storage.dump().entries).toEqual(before);
    expect(c.leader()).toBe('a');
  });

  it('§5.3 followers refuse proposals with NotLeader and a leader hint', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    expect(c.node('b').propose(utf8('x'))).toEqual({ ok: false, reason: Refusal.NotLeader, leader: A, term: 2 });
  });
});

describe('§5.4.2 committing entries from previous terms', () => {
  it('§5.4.2 a leader never commits an entry of a previous term by counting replicas', () => {
    // Figure 8: a holds 2@2 from an old term, becomes leader of term 4 and appends 3@4.
    const s = storageWith([A, B, C, D, E], { term: 3 }, entries([2, 2]));
    const n = newNode(A, s, { preVote: false });
    n.campaign();
    n.step(message({ type: MessageType.VoteResponse, from: B, to: A, term: 4 }));
    n.step(message({ type: MessageType.VoteResponse, from: C, to: A, term: 4 }));
    expect(n.basicStatus().softState.role).toBe(Role.Leader);
    drain(n, s);
    // b and c store 2@2 (a majority with a), but not yet 3@4.
    n.step(message({ type: MessageType.AppendResponse, from: B, to: A, term: 4, index: 2 }));
    n.step(message({ type: MessageType.AppendResponse, from: C, to: A, term: 4, index: 2 }));
    drain(n, s);
    expect(n.basicStatus().hardState.commit).toBe(1);
    n.step(message({ type: MessageType.AppendResponse, from: B, to: A, term: 4, index: 3 }));
    drain(n, s);
    expect(n.basicStatus().hardState.commit).toBe(1);
    n.step(message({ type: MessageType.AppendResponse, from: C, to: A, term: 4, index: 3 }));
    const { committed } = drain(n, s);
    // 3@4 is on a majority: it commits, and 2@2 with it.
    expect(n.basicStatus().hardState.commit).toBe(3);
    expect(committed.map((e) => `${e.index}@${e.term}`)).toEqual(['2@2', '3@4']);
  });

  it('§5.4.2 a new leader commits earlier entries by committing the empty entry it appends on election', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    // x reaches b, but a never learns: it cannot commit.
    c.cutLink('a', 'c');
    c.cutLink('b', 'a');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    expect(c.appliedData('b')).toEqual([]);
    expect(c.member('b').storage.lastIndex()).toBe(3);
    c.heal();
    c.isolate('a');
    c.tick(['b', 'c'], 40);
    const leader = c.node('b').basicStatus();
    expect(leader.softState.role).toBe(Role.Leader);
    const last = c.member('b').storage.dump().entries.at(-1);
    expect(last).toMatchObject({ type: 'normal', term: leader.hardState.term });
    expect(c.appliedData('b')).toEqual(['x']);
    expect(c.appliedData('c')).toEqual(['x']);
  });
});

describe('§5.5 crashes', () => {
  it('§5.5 a restarted replica keeps its term, vote and log', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.node('a').propose(utf8('x'));
    c.stabilize();
    c.crash('b');
    c.restart('b');
    const st = c.node('b').basicStatus();
    expect(st.hardState).toMatchObject({ term: 2, vote: A });
    expect(st.lastIndex).toBe(3);
    // It still refuses a second candidate in the term it voted in.
    c.deliver(message({ type: MessageType.Vote, from: C, to: B, term: 2, index: 3, logTerm: 2 }));
    c.flush();
    expect(c.member('b').sent.at(-1)).toMatchObject({ type: MessageType.VoteResponse, reject: true });
    // It re-applies the committed log from its snapshot.
    c.tick('a', 1);
    expect(c.appliedData('b')).toEqual(['x']);
  });

  it('§5.5 a leader that crashes with unreplicated entries loses them, and the cluster moves on', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('a');
    c.node('a').propose(utf8('lost'));
    c.stabilize();
    c.crash('a');
    c.tick(['b', 'c'], 40);
    const leader = c.leader();
    expect(leader === 'b' || leader === 'c').toBe(true);
    c.node(leader as string).propose(utf8('kept'));
    c.stabilize();
    c.heal();
    c.restart('a');
    c.tick('all', 5);
    expect(c.appliedData('a')).toEqual(['kept']);
    expect(
      c
        .member('a')
        .storage.dump()
        .entries.some((e) => e.type === 'normal' && new TextDecoder().decode(e.data) === 'lost'),
    ).toBe(false);
  });
});

describe('pipelining, batching and flow control', () => {
  it('in replicate state the leader pipelines at most inflightMsgsMax appends per follower', () => {
    const c = new TestCluster(['a', 'b', 'c'], { inflightMsgsMax: 3, entriesPerMsgMax: 1 });
    c.elect('a');
    for (let i = 0; i < 10; i++) c.node('a').propose(utf8(`v${i}`));
    const toB = c.takeMessages().filter((m) => m.type === MessageType.Append && m.to === B);
    expect(toB.length).toBe(3);
    expect(toB.map((m) => m.index)).toEqual([2, 3, 4]);
    expect(c.node('a').status().progress.get(B)).toMatchObject({ state: ProgressState.Replicate, inflight: 3 });
    for (const m of toB) c.deliver(m);
    c.stabilize();
    expect(c.appliedData('b')).toHaveLength(10);
  });

  it('an append carries at most entriesPerMsgMax entries', () => {
    const c = new TestCluster(['a', 'b', 'c'], { entriesPerMsgMax: 4 });
    c.elect('a');
    c.isolate('b');
    for (let i = 0; i < 10; i++) c.node('a').propose(utf8(`v${i}`));
    c.stabilize();
    c.heal();
    c.tick('a', 1);
    const sizes = c
      .member('a')
      .sent.filter((m) => m.type === MessageType.Append && m.to === B && m.entries.length > 0)
      .map((m) => m.entries.length);
    expect(Math.max(...sizes)).toBe(4);
    expect(c.appliedData('b')).toHaveLength(10);
  });

  it('a follower in probe state gets one append at a time until it answers', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('b');
    c.node('a').reportUnreachable(B);
    expect(c.node('a').status().progress.get(B)?.state).toBe(ProgressState.Probe);
    for (let i = 0; i < 5; i++) c.node('a').propose(utf8(`v${i}`));
    const toB = c.takeMessages().filter((m) => m.type === MessageType.Append && m.to === B);
    expect(toB.length).toBe(1);
  });

  it('a full window whose appends were all lost recovers through heartbeat responses', () => {
    const c = new TestCluster(['a', 'b', 'c'], { inflightMsgsMax: 2, entriesPerMsgMax: 1 });
    c.elect('a');
    c.filter = (m) => !(m.type === MessageType.Append && m.to === B && m.entries.length > 0);
    for (let i = 0; i < 6; i++) c.node('a').propose(utf8(`v${i}`));
    c.stabilize();
    expect(c.node('a').status().progress.get(B)?.inflight).toBe(2);
    c.heal();
    c.tick('all', 3);
    expect(c.appliedData('b')).toHaveLength(6);
  });

  it('proposals between two Readys leave as one append per follower, answered once (batchAppend)', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    for (let i = 0; i < 5; i++) c.node('a').propose(utf8(`v${i}`));
    const appends = c.takeMessages().filter((m) => m.type === MessageType.Append);
    expect(appends.map((m) => m.to).sort()).toEqual([B, C]);
    for (const m of appends) expect(m.entries.map((e) => e.index)).toEqual([3, 4, 5, 6, 7]);
    // One inflight append per follower, not five: the window counts messages.
    expect(c.node('a').status().progress.get(B)).toMatchObject({ state: ProgressState.Replicate, inflight: 1, next: 8 });
    for (const m of appends) c.deliver(m);
    const answers = c.takeMessages().filter((m) => m.type === MessageType.AppendResponse);
    expect(answers.map((m) => [m.from, m.index]).sort()).toEqual([
      [B, 7],
      [C, 7],
    ]);
    for (const m of answers) c.deliver(m);
    c.stabilize();
    expect(c.appliedData('b')).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
    expect(c.node('a').status().progress.get(B)).toMatchObject({ match: 7, inflight: 0 });
  });

  it('without batchAppend every proposal leaves as its own append', () => {
    const c = new TestCluster(['a', 'b', 'c'], { batchAppend: false });
    c.elect('a');
    for (let i = 0; i < 5; i++) c.node('a').propose(utf8(`v${i}`));
    const toB = c.takeMessages().filter((m) => m.type === MessageType.Append && m.to === B);
    expect(toB.map((m) => m.entries.length)).toEqual([1, 1, 1, 1, 1]);
  });

  it('batched appends keep entriesPerMsgMax and bytesPerMsgMax', () => {
    const c = new TestCluster(['a', 'b', 'c'], { entriesPerMsgMax: 2 });
    c.elect('a');
    for (let i = 0; i < 5; i++) c.node('a').propose(utf8(`v${i}`));
    const toB = c.takeMessages().filter((m) => m.type === MessageType.Append && m.to === B);
    expect(toB.map((m) => m.entries.length)).toEqual([2, 2, 1]);
    const d = new TestCluster(['a', 'b', 'c'], { bytesPerMsgMax: 4 });
    d.elect('a');
    for (let i = 0; i < 3; i++) d.node('a').propose(utf8('abc'));
    const toC = d.takeMessages().filter((m) => m.type === MessageType.Append && m.to === C);
    expect(toC.map((m) => m.entries.length)).toEqual([1, 1, 1]);
  });

  it('mergeAppends folds only a continuing append of the same term to the same follower', () => {
    const append = (to: typeof B, term: number, index: number, n: number, commit = 0) =>
      message({ type: MessageType.Append, from: A, to, term, index, logTerm: term, entries: run(index + 1, index + n, term), commit });
    const first = append(B, 2, 4, 2, 3);
    expect(mergeAppends(first, append(B, 2, 6, 1, 5), 64, 1 << 20)).toMatchObject({ index: 4, logTerm: 2, commit: 5, to: B });
    expect(mergeAppends(first, append(B, 2, 6, 1), 64, 1 << 20)?.entries.map((e) => e.index)).toEqual([5, 6, 7]);
    expect(mergeAppends(first, append(B, 2, 7, 1), 64, 1 << 20)).toBeUndefined(); // a gap
    expect(mergeAppends(first, append(B, 2, 5, 1), 64, 1 << 20)).toBeUndefined(); // an overlap
    expect(mergeAppends(first, append(C, 2, 6, 1), 64, 1 << 20)).toBeUndefined(); // another follower
    expect(mergeAppends(first, append(B, 3, 6, 1), 64, 1 << 20)).toBeUndefined(); // another term
    expect(mergeAppends(first, append(B, 2, 6, 0), 64, 1 << 20)).toBeUndefined(); // nothing to fold
    expect(mergeAppends(first, append(B, 2, 6, 1), 2, 1 << 20)).toBeUndefined(); // over the entry limit
    const heartbeat = message({ type: MessageType.Heartbeat, from: A, to: B, term: 2 });
    expect(mergeAppends(heartbeat, append(B, 2, 6, 1), 64, 1 << 20)).toBeUndefined();
  });

  it('an append is not folded past another message to the same follower', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.node('a').propose(utf8('v0'));
    c.node('a').tick(); // a heartbeat to b and c after the first append (heartbeatTick 1)
    c.node('a').propose(utf8('v1'));
    const toB = c.takeMessages().filter((m) => m.to === B);
    expect(toB.map((m) => [m.type, m.entries.length])).toEqual([
      [MessageType.Append, 1],
      [MessageType.Heartbeat, 0],
      [MessageType.Append, 1],
    ]);
  });

  it('a leader refuses proposals beyond uncommittedEntriesMax', () => {
    const c = new TestCluster(['a', 'b', 'c'], { uncommittedEntriesMax: 3 });
    c.elect('a');
    c.isolate('a');
    const results = Array.from({ length: 5 }, (_, i) => c.node('a').propose(utf8(`v${i}`)).ok);
    expect(results).toEqual([true, true, true, false, false]);
    expect(c.node('a').propose(utf8('again'))).toMatchObject({ ok: false, reason: Refusal.TooManyUncommitted });
  });
});
