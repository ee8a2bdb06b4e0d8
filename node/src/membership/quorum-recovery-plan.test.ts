import type { NodeId } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { decideRecovery, type LocalGroupView, majority, type PeerGroupView, RecoveryRefusal } from './quorum-recovery-plan.ts';

const n = (id: string) => id as NodeId;
const local = (over: Partial<LocalGroupView> = {}): LocalGroupView => ({
  self: n('a'),
  voters: [n('a'), n('b'), n('c')],
  learners: [],
  leader: undefined,
  term: 7,
  lastIndex: 120,
  lastTerm: 6,
  commit: 115,
  applied: 110,
  ...over,
});
const peer = (over: Partial<PeerGroupView> = {}): PeerGroupView => ({ leader: undefined, term: 7, lastIndex: 100, lastTerm: 6, ...over });
const peers = (entries: [string, PeerGroupView | undefined][]) => new Map(entries.map(([k, v]) => [n(k), v]));
const yes = (survivors: string[]) => ({ survivors: survivors.map(n), confirmDataLoss: true });

function refusal(d: ReturnType<typeof decideRecovery>): string | undefined {
  return d.kind === 'refuse' ? d.reason : undefined;
}

describe('decideRecovery', () => {
  it('majority arithmetic', () => {
    expect([1, 2, 3, 4, 5].map(majority)).toEqual([1, 2, 2, 3, 3]);
  });

  it('recovers a 3-voter group down to its one survivor, removing the lost voters under a new term', () => {
    const d = decideRecovery(local(), peers([]), yes(['a']), 'partition 3');
    expect(d).toEqual({ kind: 'recover', removed: ['b', 'c'], newTerm: 8, uncommittedKept: 5 });
  });

  it('refuses without the explicit confirmation, before anything else', () => {
    const d = decideRecovery(local({ leader: n('b') }), peers([]), { survivors: [n('a')], confirmDataLoss: false }, 'partition 3');
    expect(refusal(d)).toBe(RecoveryRefusal.ConfirmationRequired);
    expect(d.kind === 'refuse' && d.message).toMatch(/--i-understand-data-loss/);
  });

  it('refuses on a node that is not listed as a survivor, and survivors that are not voters', () => {
    expect(refusal(decideRecovery(local(), peers([]), yes(['b']), 'p'))).toBe(RecoveryRefusal.SelfNotSurvivor);
    expect(refusal(decideRecovery(local({ learners: [n('d')] }), peers([]), yes(['a', 'd']), 'p'))).toBe(RecoveryRefusal.NotVoter);
    expect(refusal(decideRecovery(local(), peers([]), yes(['a', 'x']), 'p'))).toBe(RecoveryRefusal.NotVoter);
  });

  it('refuses while a leader is known here or by any member that answers', () => {
    expect(refusal(decideRecovery(local({ leader: n('a') }), peers([]), yes(['a']), 'p'))).toBe(RecoveryRefusal.LeaderPresent);
    expect(refusal(decideRecovery(local(), peers([['b', peer({ leader: n('b') })]]), yes(['a', 'b']), 'p'))).toBe(RecoveryRefusal.LeaderPresent);
  });

  it('refuses while a majority of the voters answers (quorum live), even without a leader', () => {
    const d = decideRecovery(local(), peers([['b', peer()]]), yes(['a', 'b']), 'p');
    expect(refusal(d)).toBe(RecoveryRefusal.QuorumLive);
    const five = local({ voters: ['a', 'b', 'c', 'd', 'e'].map(n) });
    expect(
      refusal(
        decideRecovery(
          five,
          peers([
            ['b', peer()],
            ['c', peer()],
          ]),
          yes(['a', 'b', 'c']),
          'p',
        ),
      ),
    ).toBe(RecoveryRefusal.QuorumLive);
  });

  it('refuses when a voter answers that is not listed, or a listed survivor does not answer', () => {
    const five = local({ voters: ['a', 'b', 'c', 'd', 'e'].map(n) });
    expect(refusal(decideRecovery(five, peers([['b', peer()]]), yes(['a']), 'p'))).toBe(RecoveryRefusal.VoterReachable);
    expect(refusal(decideRecovery(five, peers([['b', undefined]]), yes(['a', 'b']), 'p'))).toBe(RecoveryRefusal.SurvivorUnreachable);
    expect(refusal(decideRecovery(local(), peers([]), yes(['a', 'b']), 'p'))).toBe(RecoveryRefusal.SurvivorUnreachable);
  });

  it('refuses on a survivor whose log is behind another survivor, naming the one to use', () => {
    const five = local({ voters: ['a', 'b', 'c', 'd', 'e'].map(n) });
    const byIndex = decideRecovery(five, peers([['b', peer({ lastIndex: 121, lastTerm: 6 })]]), yes(['a', 'b']), 'p');
    expect(refusal(byIndex)).toBe(RecoveryRefusal.NotMostUpToDate);
    expect(byIndex.kind === 'refuse' && byIndex.details.nodeId).toBe('b');
    const byTerm = decideRecovery(five, peers([['b', peer({ lastIndex: 50, lastTerm: 7 })]]), yes(['a', 'b']), 'p');
    expect(refusal(byTerm)).toBe(RecoveryRefusal.NotMostUpToDate);
  });

  it('with two survivors of five, picks a term above every term either has seen and removes the other three and the learners', () => {
    const five = local({ voters: ['a', 'b', 'c', 'd', 'e'].map(n), learners: [n('f')] });
    const d = decideRecovery(five, peers([['b', peer({ term: 12, lastIndex: 90, lastTerm: 5 })]]), yes(['b', 'a']), 'p');
    expect(d).toEqual({ kind: 'recover', removed: ['c', 'd', 'e', 'f'], newTerm: 13, uncommittedKept: 5 });
  });

  it('answers done for a repeated call once the membership is the survivors and a leader is known', () => {
    const after = local({ voters: [n('a')], leader: n('a') });
    expect(decideRecovery(after, peers([]), yes(['a']), 'p')).toEqual({ kind: 'done' });
  });
});
