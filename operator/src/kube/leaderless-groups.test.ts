import { describe, expect, it } from 'vitest';
import { LeaderlessGroups } from './leaderless-groups.ts';

describe('leaderless groups (input of Degraded=QuorumLost)', () => {
  it('partitions keep their first time while leaderless and are forgotten once led', () => {
    const g = new LeaderlessGroups();
    g.observed([{ id: 0, leader: 'a' }, { id: 1 }, { id: 2 }], 1000);
    g.observed([{ id: 0, leader: 'a' }, { id: 1 }, { id: 2, leader: 'b' }], 2000);
    expect(g.list()).toEqual([{ group: 1, sinceMs: 1000 }]);
  });

  it('meta: leaderless only when a hosting member answers and none knows a leader; unknown when nobody answers', () => {
    const g = new LeaderlessGroups();
    g.metaAnswers([undefined, undefined], 1000);
    expect(g.list()).toEqual([]);
    g.metaAnswers([{ hosted: true, leader: '' }, undefined, { hosted: false, leader: '' }], 2000);
    g.metaAnswers([{ hosted: true, leader: '' }, undefined], 3000);
    expect(g.list()).toEqual([{ group: 'meta', sinceMs: 2000 }]);
    // Nobody answers: what was known stays.
    g.metaAnswers([undefined], 4000);
    expect(g.list()).toEqual([{ group: 'meta', sinceMs: 2000 }]);
    g.metaAnswers(
      [
        { hosted: true, leader: '' },
        { hosted: true, leader: 'b' },
      ],
      5000,
    );
    expect(g.list()).toEqual([]);
  });

  it('a fresh observation (the map answered linearizably) means the meta group has a leader', () => {
    const g = new LeaderlessGroups();
    g.metaAnswers([{ hosted: true, leader: '' }], 1000);
    g.observed([{ id: 4 }], 2000);
    expect(g.list()).toEqual([{ group: 4, sinceMs: 2000 }]);
  });
});
