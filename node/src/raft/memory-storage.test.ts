/**
 * The in-memory durable store used by tests and the simulator.
 */
import { describe, expect, it } from 'vitest';
import { MemoryRaftStorage } from './memory-storage.ts';
import { RaftStorageRangeError } from './storage.ts';
import { A, B, run, storageWith } from './testing/fixtures.ts';

describe('MemoryRaftStorage', () => {
  it('bootstraps a group at index 1, term 1, with its membership', () => {
    const s = MemoryRaftStorage.bootstrap({ voters: [A, B], learners: [] });
    expect([s.firstIndex(), s.lastIndex(), s.term(1), s.term(0)]).toEqual([2, 1, 1, undefined]);
    expect(s.snapshotMetadata().confState.voters).toEqual([A, B]);
    expect(s.hardState()).toEqual({ term: 1, vote: undefined, commit: 1 });
  });

  it('append replaces the tail from the first new index, and refuses gaps', () => {
    const s = storageWith([A], {}, run(2, 6, 2));
    s.append(run(4, 5, 3));
    expect([s.lastIndex(), s.term(3), s.term(4), s.term(5), s.term(6)]).toEqual([5, 2, 3, 3, undefined]);
    expect(() => s.append(run(8, 8, 3))).toThrow(RaftStorageRangeError);
  });

  it('compact keeps a snapshot of the applied state and drops the entries it covers', () => {
    const s = storageWith([A], { commit: 5 }, run(2, 6, 2));
    s.compact(4, { voters: [A], learners: [] }, new Uint8Array([4]));
    expect([s.firstIndex(), s.lastIndex(), s.term(4), s.term(3)]).toEqual([5, 6, 2, undefined]);
    expect(s.entries(5, 7, 10, 100).map((e) => e.index)).toEqual([5, 6]);
    expect(() => s.entries(4, 6, 10, 100)).toThrow(RaftStorageRangeError);
    expect(() => s.compact(6, { voters: [A], learners: [] }, new Uint8Array())).toThrow(RaftStorageRangeError);
  });

  it('applySnapshot replaces the whole log and refuses an older snapshot', () => {
    const s = storageWith([A], {}, run(2, 6, 2));
    s.applySnapshot({ metadata: { index: 9, term: 4, confState: { voters: [A], learners: [] } }, data: new Uint8Array() });
    expect([s.firstIndex(), s.lastIndex(), s.term(9)]).toEqual([10, 9, 4]);
    expect(() => s.applySnapshot({ metadata: { index: 9, term: 4, confState: { voters: [A], learners: [] } }, data: new Uint8Array() })).toThrow(
      RaftStorageRangeError,
    );
  });

  it('entries honours its count and byte limits, returning at least one entry', () => {
    const s = storageWith([A], {}, run(2, 9, 2));
    expect(s.entries(2, 10, 3, 1000)).toHaveLength(3);
    expect(s.entries(2, 10, 100, 1)).toHaveLength(1);
  });
});
