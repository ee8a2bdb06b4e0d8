/**
 * Property tests of the quorum arithmetic against brute force.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { committedIndex, jointCommittedIndex, jointVoteResult, majority, quorumActive, VoteResult, voteResult } from './quorum.ts';
import { type ReplicaId, replicaId } from './types.ts';

const ID_POOL = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map(replicaId);

const voterSet = (min = 1) => fc.subarray(ID_POOL, { minLength: min });
const acks = fc.dictionary(fc.constantFrom(...ID_POOL), fc.nat(20));
const votes = fc.dictionary(fc.constantFrom(...ID_POOL), fc.boolean());

function subsets<T>(items: readonly T[]): T[][] {
  return Array.from({ length: 1 << items.length }, (_, mask) => items.filter((_, i) => mask & (1 << i)));
}

describe('majority quorums', () => {
  it('committedIndex is the largest index acknowledged by a majority', () => {
    fc.assert(
      fc.property(voterSet(), acks, (voters, acked) => {
        const ack = (id: ReplicaId) => acked[id];
        const got = committedIndex(voters, ack);
        const holders = (k: number) => voters.filter((v) => (ack(v) ?? 0) >= k).length;
        expect(holders(got)).toBeGreaterThanOrEqual(majority(voters.length));
        expect(holders(got + 1)).toBeLessThan(majority(voters.length));
      }),
    );
  });

  it('committedIndex never decreases when an acknowledgement grows', () => {
    fc.assert(
      fc.property(voterSet(), acks, fc.constantFrom(...ID_POOL), fc.nat(20), (voters, acked, who, more) => {
        const before = committedIndex(voters, (id) => acked[id]);
        const grown = { ...acked, [who]: (acked[who] ?? 0) + more };
        expect(committedIndex(voters, (id) => grown[id])).toBeGreaterThanOrEqual(before);
      }),
    );
  });

  it('voteResult: won with a majority of grants, lost once a majority is out of reach, else pending', () => {
    fc.assert(
      fc.property(voterSet(), votes, (voters, v) => {
        const map = new Map(Object.entries(v) as [ReplicaId, boolean][]);
        const granted = voters.filter((id) => map.get(id) === true).length;
        const missing = voters.filter((id) => !map.has(id)).length;
        const q = majority(voters.length);
        const expected = granted >= q ? VoteResult.Won : granted + missing >= q ? VoteResult.Pending : VoteResult.Lost;
        expect(voteResult(voters, map)).toBe(expected);
        expect(quorumActive(voters, (id) => map.get(id) === true)).toBe(expected === VoteResult.Won);
      }),
    );
  });

  it('any two majorities of one voter set overlap (so two leaders cannot win one term)', () => {
    const twoQuorums = voterSet().chain((voters) => {
      const quorum = fc.subarray(voters, { minLength: majority(voters.length) });
      return fc.tuple(quorum, quorum);
    });
    fc.assert(
      fc.property(twoQuorums, ([q1, q2]) => {
        expect(q1.some((id) => q2.includes(id))).toBe(true);
      }),
    );
  });

  it('§4.1 single-replica changes: every majority of C overlaps every majority of C plus or minus one voter', () => {
    fc.assert(
      fc.property(
        voterSet(1).filter((v) => v.length <= 6),
        fc.constantFrom(...ID_POOL),
        (voters, x) => {
          const other = voters.includes(x) ? voters.filter((v) => v !== x) : [...voters, x];
          if (other.length === 0) return;
          const qa = subsets(voters).filter((s) => s.length >= majority(voters.length));
          const qb = subsets(other).filter((s) => s.length >= majority(other.length));
          for (const a of qa) for (const b of qb) expect(a.some((id) => b.includes(id))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('an empty voter set constrains nothing', () => {
    expect(committedIndex([], () => 3)).toBe(Number.POSITIVE_INFINITY);
    expect(voteResult([], new Map())).toBe(VoteResult.Won);
  });
});

describe('joint quorums', () => {
  it('a joint config commits the smaller of its halves’ committed indexes', () => {
    fc.assert(
      fc.property(voterSet(), voterSet(0), acks, (incoming, outgoing, acked) => {
        const ack = (id: ReplicaId) => acked[id];
        const got = jointCommittedIndex({ incoming, outgoing }, ack);
        const expected = Math.min(committedIndex(incoming, ack), committedIndex(outgoing, ack));
        expect(got).toBe(expected);
      }),
    );
  });

  it('a joint election is won only when both halves are won, and lost when either is lost', () => {
    fc.assert(
      fc.property(voterSet(), voterSet(0), votes, (incoming, outgoing, v) => {
        const map = new Map(Object.entries(v) as [ReplicaId, boolean][]);
        const a = voteResult(incoming, map);
        const b = voteResult(outgoing, map);
        const got = jointVoteResult({ incoming, outgoing }, map);
        if (a === VoteResult.Won && b === VoteResult.Won) expect(got).toBe(VoteResult.Won);
        else if (a === VoteResult.Lost || b === VoteResult.Lost) expect(got).toBe(VoteResult.Lost);
        else expect(got).toBe(VoteResult.Pending);
      }),
    );
  });
});
