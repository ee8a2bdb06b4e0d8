/**
 * The checker must be able to fail: every invariant is shown to fire on a planted violation,
 * and the simulator is shown to catch disks that lie about durability.
 */
import { describe, expect, it } from 'vitest';
import { InvariantChecker, InvariantViolation, type ReplicaView } from './testing/invariants.ts';
import { type DiskBugs, type FaultProfile, runSimulation } from './testing/simulator.ts';
import { type Entry, ReadOnlyOption, replicaId } from './types.ts';

const [R1, R2] = [replicaId('r1'), replicaId('r2')];
const entry = (index: number, term: number, data: string): Entry => ({ type: 'normal', index, term, data: new TextEncoder().encode(data) });

function violation(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvariantViolation) return err.invariant;
    throw err;
  }
  return 'none';
}

describe('invariant checker', () => {
  it('Election Safety fires on two leaders in one term', () => {
    const c = new InvariantChecker();
    c.observeLeader(R1, 3);
    c.observeLeader(R1, 3);
    expect(violation(() => c.observeLeader(R2, 3))).toBe('Election Safety');
  });

  it('Log Matching fires on two entries with one index and term, or on different histories before them', () => {
    const c = new InvariantChecker();
    c.observePersisted(R1, entry(5, 2, 'x'), 2);
    expect(violation(() => c.observePersisted(R2, entry(5, 2, 'y'), 2))).toBe('Log Matching');
    expect(violation(() => c.observePersisted(R2, entry(5, 2, 'x'), 1))).toBe('Log Matching');
  });

  it('committed entries may never change', () => {
    const c = new InvariantChecker();
    c.observeCommit(R1, 0, 3, () => 2);
    expect(violation(() => c.observeCommit(R2, 0, 3, (i) => (i === 3 ? 3 : 2)))).toBe('Committed entries are stable');
  });

  it('Leader Completeness fires when a later leader lacks a committed entry', () => {
    const c = new InvariantChecker();
    c.observeCommit(R1, 0, 4, () => 2);
    const leader: ReplicaView = {
      id: R2,
      term: () => 3,
      isLeader: () => true,
      firstIndex: () => 1,
      lastIndex: () => 3,
      logTerm: (i) => (i <= 3 ? 2 : undefined),
    };
    expect(violation(() => c.checkLeaders([leader]))).toBe('Leader Completeness');
  });

  it('State Machine Safety fires when two replicas apply different states at one index', () => {
    const c = new InvariantChecker();
    c.observeApplied(R1, 7, 0xabc, 'entry');
    expect(violation(() => c.observeApplied(R2, 7, 0xabd, 'entry'))).toBe('State Machine Safety');
  });
});

/** Runs seeds until a few fail; returns the failures' invariant names. */
function firstFailures(bugs: DiskBugs | undefined, profile: Partial<FaultProfile>, seeds: number, readOnlyOption?: ReadOnlyOption): string[] {
  const found: string[] = [];
  for (let seed = 1; seed <= seeds && found.length < 3; seed++) {
    const r = runSimulation({ seed, voters: 3, steps: 300, bugs, profile, ...(readOnlyOption === undefined ? {} : { readOnlyOption }) });
    if (!r.ok) found.push(r.failure?.split(':')[0] ?? '?');
  }
  return found;
}

describe('the simulator catches planted bugs', () => {
  it('a disk that loses acknowledged entries on crash', () => {
    const found = firstFailures({ forgetEntriesOnCrash: 2 }, { crashRate: 0.03 }, 300);
    expect(found.length).toBeGreaterThan(0);
  });

  it('a disk that loses the vote on crash lets two leaders win one term', () => {
    const found = firstFailures({ forgetVoteOnCrash: true }, { crashRate: 0.05 }, 400);
    expect(found).toContain('Election Safety');
  });

  it('lease reads are not linearizable when a leader pauses past its lease (their clock assumption)', () => {
    const found = firstFailures(undefined, { pauseRate: 0.02, readRate: 0.3 }, 400, ReadOnlyOption.Lease);
    expect(found).toContain('Linearizable reads');
  });

  it('a cluster that cannot converge in time fails the liveness check', () => {
    const r = runSimulation({ seed: 1, voters: 3, steps: 50, healTicksMax: 1 });
    expect(r.failure).toMatch(/^Liveness/);
  });
});
