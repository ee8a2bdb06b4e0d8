/**
 * Log compaction and snapshots (Raft paper §7): storage compacts behind the applied index; a
 * follower that needs compacted entries gets the leader's snapshot and continues from there.
 */
import { describe, expect, it } from 'vitest';
import { MessageType } from './messages.ts';
import { ProgressState } from './progress.ts';
import { TestCluster, utf8 } from './testing/cluster.ts';
import { A, B, C, D, drain, message, newNode, run, storageWith } from './testing/fixtures.ts';
import type { Snapshot } from './types.ts';

const snapshot = (index: number, term: number, voters = [A, B, C]): Snapshot => ({
  metadata: { index, term, confState: { voters, learners: [] } },
  data: utf8(`state@${index}`),
});

describe('§7 log compaction', () => {
  it('§7 the leader sends a snapshot to a follower that needs compacted entries', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.crash('c');
    for (let i = 0; i < 5; i++) c.node('a').propose(utf8(`v${i}`));
    c.stabilize();
    const a = c.member('a');
    const applied = a.node.basicStatus().applied;
    a.storage.compact(applied, a.node.confState(), utf8(`state@${applied}`));
    expect(a.storage.firstIndex()).toBe(applied + 1);
    c.restart('c');
    c.node('a').propose(utf8('after'));
    c.stabilize();
    c.tick('a', 2);
    const sent = a.sent.filter((m) => m.to === C && m.type === MessageType.Snapshot);
    expect(sent.map((m) => m.snapshot?.metadata.index)).toEqual([applied]);
    const cm = c.member('c');
    expect(cm.restored.map((s) => new TextDecoder().decode(s.data))).toEqual([`state@${applied}`]);
    expect(c.appliedData('c')).toEqual(['after']);
    expect(cm.storage.lastIndex()).toBe(a.storage.lastIndex());
    expect(c.node('a').status().progress.get(C)?.state).toBe(ProgressState.Replicate);
  });

  it('§7 a follower discards its conflicting log when it installs a snapshot', () => {
    const s = storageWith([A, B, C], { term: 2 }, run(2, 10, 2));
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Snapshot, from: A, to: B, term: 3, snapshot: snapshot(5, 3) }));
    const { messages } = drain(n, s);
    expect(messages[0]).toMatchObject({ type: MessageType.AppendResponse, reject: false, index: 5 });
    expect(s.snapshotMetadata()).toMatchObject({ index: 5, term: 3 });
    expect([s.firstIndex(), s.lastIndex()]).toEqual([6, 5]);
    expect(n.basicStatus()).toMatchObject({ applied: 5, hardState: { commit: 5, term: 3 } });
  });

  it('§7 a follower ignores a snapshot that is not newer than its commit index', () => {
    const s = storageWith([A, B, C], { term: 2, commit: 6 }, run(2, 8, 2));
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Snapshot, from: A, to: B, term: 2, snapshot: snapshot(4, 2) }));
    const { messages } = drain(n, s);
    expect(messages[0]).toMatchObject({ reject: false, index: 6 });
    expect(s.snapshotMetadata().index).toBe(1);
    expect(s.lastIndex()).toBe(8);
  });

  it('§7 a follower that already holds the snapshot’s last entry keeps its log and advances its commit index', () => {
    const s = storageWith([A, B, C], { term: 2 }, run(2, 10, 2));
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Snapshot, from: A, to: B, term: 2, snapshot: snapshot(5, 2) }));
    const { messages, committed } = drain(n, s);
    expect(messages[0]).toMatchObject({ index: 5 });
    expect(committed.map((e) => e.index)).toEqual([2, 3, 4, 5]);
    expect(s.lastIndex()).toBe(10);
  });

  it('§7 a snapshot carries the membership of its index', () => {
    const s = storageWith([A, B, C], { term: 2 });
    const n = newNode(B, s);
    n.step(message({ type: MessageType.Snapshot, from: A, to: B, term: 3, snapshot: snapshot(9, 3, [A, B, C, D]) }));
    drain(n, s);
    expect(n.confState()).toEqual({ voters: [A, B, C, D], learners: [] });
  });

  it('§7 a restarted replica resumes from its durable snapshot and replays the entries after it', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    for (let i = 0; i < 4; i++) c.node('a').propose(utf8(`v${i}`));
    c.stabilize();
    const b = c.member('b');
    b.storage.compact(4, b.node.confState(), utf8('state@4'));
    c.crash('b');
    c.restart('b');
    expect(b.node.basicStatus()).toMatchObject({ applied: 4, firstIndex: 5 });
    c.tick('a', 1);
    expect(c.appliedData('b')).toEqual(['v2', 'v3']);
  });

  it('§7 a failed snapshot is retried after the transport reports it', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.elect('a');
    c.crash('c');
    for (let i = 0; i < 3; i++) c.node('a').propose(utf8(`v${i}`));
    c.stabilize();
    const a = c.member('a');
    a.storage.compact(a.node.basicStatus().applied, a.node.confState(), utf8('state'));
    c.restart('c');
    c.filter = (m) => m.type !== MessageType.Snapshot;
    c.tick('a', 3);
    expect(a.node.status().progress.get(C)?.state).toBe(ProgressState.Snapshot);
    a.node.reportSnapshot(C, false);
    expect(a.node.status().progress.get(C)?.state).toBe(ProgressState.Probe);
    c.heal();
    c.tick('a', 3);
    expect(c.member('c').restored).toHaveLength(1);
    expect(a.node.status().progress.get(C)?.state).toBe(ProgressState.Replicate);
  });
});
