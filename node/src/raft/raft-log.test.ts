/**
 * Property tests of the replica log against a model written straight from the paper's
 * AppendEntries receiver rules (Figure 2), across its durable and unstable parts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryRaftStorage } from './memory-storage.ts';
import { RaftLog, RaftLogError } from './raft-log.ts';
import { A } from './testing/fixtures.ts';
import { bootstrapSnapshot, type Entry, type Index, type Term } from './types.ts';

/** Terms of indexes 1..n (index 1 is the bootstrap snapshot, term 1): a valid log never decreases. */
const termsArb = fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 12 }).map((steps) => {
  const terms = [1];
  for (const s of steps) terms.push((terms[terms.length - 1] ?? 1) + s);
  return terms;
});

function entriesFrom(first: Index, terms: readonly Term[]): Entry[] {
  return terms.map((term, i) => ({ type: 'normal', index: first + i, term, data: new Uint8Array([first + i, term]) }));
}

/** A RaftLog whose first `durable` entries are in storage and the rest unstable. */
function build(terms: readonly Term[], durable: number, commit: Index) {
  const all = entriesFrom(2, terms.slice(1));
  const storage = new MemoryRaftStorage({
    hardState: { term: 9, vote: undefined, commit: Math.min(commit, 1 + durable) },
    snapshot: bootstrapSnapshot({ voters: [A], learners: [] }),
    entries: all.slice(0, durable),
  });
  const log = new RaftLog(storage, Math.min(commit, 1 + durable), 1);
  log.append(all.slice(durable));
  log.commitTo(commit);
  return { log, storage };
}

/** Model of one AppendEntries on a follower (Figure 2, receiver rules 2-5). */
function modelAppend(model: { terms: Term[]; commit: Index }, prev: Index, prevTerm: Term, leaderCommit: Index, ents: readonly Entry[]) {
  const termAt = (i: Index) => (i >= 1 ? model.terms[i - 1] : undefined);
  if (termAt(prev) !== prevTerm) return { result: undefined };
  for (const e of ents) {
    const mine = termAt(e.index);
    if (mine === e.term) continue;
    if (mine !== undefined) {
      if (e.index <= model.commit) return { throws: true };
      model.terms.length = e.index - 1;
    }
    model.terms.push(e.term);
  }
  const lastNew = prev + ents.length;
  model.commit = Math.max(model.commit, Math.min(leaderCommit, lastNew));
  return { result: lastNew };
}

function persist(log: RaftLog, storage: MemoryRaftStorage): void {
  const ents = log.unstable.entries;
  const last = ents[ents.length - 1];
  if (last === undefined) return;
  storage.append(ents);
  log.stableTo(last.index, last.term);
}

function expectSameLog(log: RaftLog, model: { terms: Term[]; commit: Index }): void {
  expect(log.lastIndex()).toBe(model.terms.length);
  expect(log.committed).toBe(model.commit);
  for (let i = 0; i <= model.terms.length + 2; i++) expect(log.term(i)).toBe(i >= 1 ? model.terms[i - 1] : undefined);
}

const appendArb = fc.record({
  prev: fc.nat(16),
  prevTerm: fc.integer({ min: 1, max: 8 }),
  leaderCommit: fc.nat(20),
  termSteps: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 6 }),
  persistAfter: fc.boolean(),
  /** Most appends should match at prev, as they do in a healthy cluster. */
  matchPrev: fc.boolean(),
});

describe('RaftLog', () => {
  it('maybeAppend follows the AppendEntries receiver rules, across durable and unstable parts', () => {
    let accepted = 0;
    fc.assert(
      fc.property(termsArb, fc.nat(), fc.nat(), fc.array(appendArb, { maxLength: 6 }), (terms, d, c, ops) => {
        const durable = d % terms.length;
        const commit = 1 + (c % terms.length);
        const { log, storage } = build(terms, durable, commit);
        const model = { terms: [...terms], commit };
        for (const op of ops) {
          const prevTerm = op.matchPrev ? (model.terms[op.prev - 1] ?? op.prevTerm) : op.prevTerm;
          let t = prevTerm;
          const entTerms = op.termSteps.map((s) => (t += s));
          const ents = entriesFrom(op.prev + 1, entTerms);
          const before = { terms: [...model.terms], commit: model.commit };
          const expected = modelAppend(model, op.prev, prevTerm, op.leaderCommit, ents);
          if (expected.throws) {
            expect(() => log.maybeAppend(op.prev, prevTerm, op.leaderCommit, ents)).toThrow(RaftLogError);
            return;
          }
          if (expected.result !== undefined) accepted++;
          expect(log.maybeAppend(op.prev, prevTerm, op.leaderCommit, ents)).toBe(expected.result);
          if (expected.result === undefined) expect(model).toEqual(before);
          expectSameLog(log, model);
          if (op.persistAfter) {
            persist(log, storage);
            expectSameLog(log, model);
          }
        }
      }),
      { numRuns: 300 },
    );
    expect(accepted).toBeGreaterThan(30);
  });

  it('findConflict returns the first entry that is missing or has another term', () => {
    fc.assert(
      fc.property(termsArb, fc.nat(14), fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 5 }), (terms, from, entTerms) => {
        const { log } = build(terms, terms.length - 1, 1);
        const ents = entriesFrom(from + 1, entTerms);
        const first = ents.find((e) => terms[e.index - 1] !== e.term);
        expect(log.findConflict(ents)).toBe(first?.index ?? 0);
      }),
    );
  });

  it('findConflictByTerm skips every entry that cannot match (fast backtracking hint)', () => {
    fc.assert(
      fc.property(termsArb, fc.nat(16), fc.integer({ min: 0, max: 10 }), (terms, index, term) => {
        const { log } = build(terms, terms.length - 1, 1);
        const hint = log.findConflictByTerm(index, term);
        expect(hint.index).toBeLessThanOrEqual(Math.min(index, log.lastIndex()));
        if (hint.term !== 0) {
          expect(log.term(hint.index)).toBe(hint.term);
          expect(hint.term).toBeLessThanOrEqual(term);
        }
        for (let i = hint.index + 1; i <= Math.min(index, log.lastIndex()); i++) expect(log.term(i) ?? 0).toBeGreaterThan(term);
      }),
    );
  });

  it('isUpToDate compares last terms first, then lengths (§5.4.1)', () => {
    fc.assert(
      fc.property(termsArb, fc.nat(20), fc.integer({ min: 1, max: 30 }), (terms, lastIndex, lastTerm) => {
        const { log } = build(terms, 0, 1);
        const myTerm = terms[terms.length - 1] ?? 0;
        const expected = lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= terms.length);
        expect(log.isUpToDate(lastIndex, lastTerm)).toBe(expected);
      }),
    );
  });

  it('slice honours count and byte limits but always returns at least one entry', () => {
    fc.assert(
      fc.property(
        termsArb.filter((t) => t.length > 1),
        fc.nat(),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 7 }),
        (terms, d, countMax, bytesMax) => {
          const { log } = build(terms, d % terms.length, 1);
          const got = log.slice(2, log.lastIndex() + 1, countMax, bytesMax);
          expect(got.length).toBeGreaterThanOrEqual(1);
          expect(got.length).toBeLessThanOrEqual(countMax);
          if (got.length > 1) expect(got.length * 2).toBeLessThanOrEqual(bytesMax);
          expect(got.map((e) => e.index)).toEqual(got.map((_, i) => 2 + i));
        },
      ),
    );
  });

  it('never commits past its last index, nor overwrites a committed entry', () => {
    const { log } = build([1, 2, 2], 1, 2);
    expect(() => log.commitTo(4)).toThrow(RaftLogError);
    expect(() => log.append(entriesFrom(2, [3]))).toThrow(RaftLogError);
  });

  it('hands out committed entries once, and none while a snapshot is pending', () => {
    const { log } = build([1, 2, 2, 2], 3, 3);
    expect(log.nextCommittedEntries(10).map((e) => e.index)).toEqual([2, 3]);
    log.appliedTo(3);
    expect(log.hasNextCommittedEntries()).toBe(false);
    log.restore({ metadata: { index: 9, term: 3, confState: { voters: [A], learners: [] } }, data: new Uint8Array() });
    expect(log.nextCommittedEntries(10)).toEqual([]);
    expect([log.firstIndex(), log.lastIndex(), log.committed, log.term(9)]).toEqual([10, 9, 9, 3]);
  });
});
