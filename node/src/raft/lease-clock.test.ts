/**
 * The lease clock (dissertation §6.4.1 with a driver whose ticks can fall behind real time):
 * `advanceLeaseClock` ages only a leader's lease; elections, heartbeats and CheckQuorum stay
 * on `tick()`.
 */
import { describe, expect, it } from 'vitest';
import { MessageType } from './messages.ts';
import { TestCluster, utf8 } from './testing/cluster.ts';
import { ReadOnlyOption, Role } from './types.ts';

describe('§6.4.1 lease clock', () => {
  it('real time the ticks missed expires the lease: the next read takes a heartbeat round', () => {
    const c = new TestCluster(['a', 'b', 'c'], { readOnlyOption: ReadOnlyOption.Lease });
    c.elect('a');
    c.tick('a', 1); // an acknowledged heartbeat round starts the lease
    c.node('a').readIndex(utf8('in-lease'));
    expect(c.takeMessages()).toEqual([]);
    expect(c.member('a').readStates).toEqual([{ index: 2, context: utf8('in-lease') }]);

    c.node('a').advanceLeaseClock(9); // electionTick 10, less the one-tick margin
    c.node('a').readIndex(utf8('stale-lease'));
    const beats = c.takeMessages().filter((m) => m.type === MessageType.Heartbeat);
    expect(beats).toHaveLength(2);
    expect(c.member('a').readStates).toEqual([{ index: 2, context: utf8('in-lease') }]);
    for (const m of beats) c.deliver(m);
    c.stabilize();
    expect(c.member('a').readStates.at(-1)).toEqual({ index: 2, context: utf8('stale-lease') });
    // The lease clock moved, not the election clock: still leading, nobody campaigned.
    expect(c.node('a').basicStatus().softState.role).toBe(Role.Leader);
    expect(c.node('a').basicStatus().hardState.term).toBe(c.node('b').basicStatus().hardState.term);
  });

  it('does not step a leader down or make a follower campaign', () => {
    const c = new TestCluster(['a', 'b', 'c'], { readOnlyOption: ReadOnlyOption.Lease });
    c.elect('a');
    const term = c.node('a').basicStatus().hardState.term;
    c.node('a').advanceLeaseClock(1000);
    c.node('b').advanceLeaseClock(1000);
    c.stabilize();
    expect(c.takeMessages()).toEqual([]);
    expect(c.node('a').basicStatus().softState.role).toBe(Role.Leader);
    expect(c.node('b').basicStatus().softState.role).toBe(Role.Follower);
    expect(c.node('b').basicStatus().hardState.term).toBe(term);
  });
});
