/**
 * Membership arithmetic: validation and application of single-replica changes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyConfChange, ConfChangeRejection, confAfter, confState, isLearner, isVoter, validateConfChange } from './conf-change.ts';
import { type ConfChange, ConfChangeType, replicaId } from './types.ts';

const ID_POOL = ['a', 'b', 'c', 'd', 'e'].map(replicaId);
const changeArb: fc.Arbitrary<ConfChange> = fc.record({
  type: fc.constantFrom(ConfChangeType.AddLearner, ConfChangeType.PromoteLearner, ConfChangeType.RemoveReplica),
  replica: fc.constantFrom(...ID_POOL),
});

describe('conf changes', () => {
  it('any sequence keeps at least one voter, voters and learners disjoint, and invalid changes as no-ops', () => {
    fc.assert(
      fc.property(fc.array(changeArb, { maxLength: 30 }), (changes) => {
        let c = confState([replicaId('a')]);
        for (const change of changes) {
          const invalid = validateConfChange(c, change);
          const next = applyConfChange(c, change);
          if (invalid !== undefined) expect(next).toBe(c);
          c = next;
          expect(c.voters.length).toBeGreaterThanOrEqual(1);
          expect(c.voters.some((v) => c.learners.includes(v))).toBe(false);
        }
      }),
    );
  });

  it('learner first: add a learner, promote it, remove a replica', () => {
    const [a, b, d] = [replicaId('a'), replicaId('b'), replicaId('d')];
    let c = confState([a, b]);
    expect(validateConfChange(c, { type: ConfChangeType.PromoteLearner, replica: d })).toBe(ConfChangeRejection.NotLearner);
    c = applyConfChange(c, { type: ConfChangeType.AddLearner, replica: d });
    expect(isLearner(c, d)).toBe(true);
    c = applyConfChange(c, { type: ConfChangeType.PromoteLearner, replica: d });
    expect([isVoter(c, d), isLearner(c, d)]).toEqual([true, false]);
    c = applyConfChange(c, { type: ConfChangeType.RemoveReplica, replica: a });
    expect(c).toEqual({ voters: [b, d], learners: [] });
    expect(validateConfChange(confState([b]), { type: ConfChangeType.RemoveReplica, replica: b })).toBe(ConfChangeRejection.LastVoter);
  });

  it('confAfter replays the changes in log entries on top of a snapshot', () => {
    const [a, d] = [replicaId('a'), replicaId('d')];
    const conf = confAfter({ index: 1, term: 1, confState: confState([a]) }, [
      { type: 'normal', index: 2, term: 2, data: new Uint8Array() },
      { type: 'confChange', index: 3, term: 2, change: { type: ConfChangeType.AddLearner, replica: d } },
      { type: 'confChange', index: 4, term: 2, change: { type: ConfChangeType.PromoteLearner, replica: d } },
    ]);
    expect(conf).toEqual({ voters: [a, d], learners: [] });
  });
});
