/**
 * Raft's safety properties (paper Figure 3), checked incrementally as the simulator runs:
 *
 * - Election Safety: at most one leader per term.
 * - Log Matching: two logs with an entry of the same index and term agree on everything up to
 *   it. Checked by induction on persisted entries: each (index, term) has one content and one
 *   predecessor term, cluster-wide.
 * - Leader Completeness: an entry committed in a term is in the log of every leader of a later
 *   term (checked against current leaders whenever anything commits or anyone leads).
 * - State Machine Safety: no two replicas apply different entries at an index (a digest of the
 *   applied prefix per index, shared across replicas and snapshots).
 * - Committed entries never change (a replica's committed prefix agrees with the record).
 *
 * A violation throws `InvariantViolation`; the simulator turns it into a failed run.
 */
import type { Entry, Index, ReplicaId, Term } from '../types.ts';

export class InvariantViolation extends Error {
  readonly invariant: string;

  constructor(invariant: string, detail: string) {
    super(`${invariant}: ${detail}`);
    this.invariant = invariant;
  }
}

/** FNV-1a over a 32-bit word stream: a cheap, stable content hash. */
export function mix(h: number, word: number): number {
  let x = h;
  for (let i = 0; i < 4; i++) {
    x ^= (word >>> (i * 8)) & 0xff;
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  return x;
}

export const FNV_OFFSET = 0x811c9dc5;

export function entryHash(e: Entry): number {
  let h = mix(mix(FNV_OFFSET, e.index), e.term);
  if (e.type === 'normal') {
    for (const b of e.data) h = mix(h, b);
  } else {
    h = mix(h, 0xc0ffee);
    for (let i = 0; i < e.change.replica.length; i++) h = mix(h, e.change.replica.charCodeAt(i));
    for (let i = 0; i < e.change.type.length; i++) h = mix(h, e.change.type.charCodeAt(i));
  }
  return h;
}

/** The view of a live replica the checker needs. */
export interface ReplicaView {
  readonly id: ReplicaId;
  term(): Term;
  isLeader(): boolean;
  firstIndex(): Index;
  lastIndex(): Index;
  logTerm(index: Index): Term | undefined;
}

interface EntryIdentity {
  readonly hash: number;
  readonly prevTerm: Term;
}

export class InvariantChecker {
  private readonly leaders = new Map<Term, ReplicaId>();
  private readonly identities = new Map<string, EntryIdentity>();
  private readonly committed = new Map<Index, Term>();
  private maxCommitted: Index = 0;
  private readonly digests = new Map<Index, number>();
  /** Per (replica, term) leadership: committed index verified present in its log. */
  private readonly verified = new Map<string, Index>();
  checks = 0;

  /** The highest index any replica has known as committed. */
  maxCommittedIndex(): Index {
    return this.maxCommitted;
  }

  committedTerm(index: Index): Term | undefined {
    return this.committed.get(index);
  }

  /** Election Safety. */
  observeLeader(id: ReplicaId, term: Term): void {
    this.checks++;
    const other = this.leaders.get(term);
    if (other === undefined) this.leaders.set(term, id);
    else if (other !== id) throw new InvariantViolation('Election Safety', `term ${term} has two leaders: ${other} and ${id}`);
  }

  /** Log Matching, for entries just made durable; `prevTerm` is the term durably before each. */
  observePersisted(id: ReplicaId, entry: Entry, prevTerm: Term | undefined): void {
    this.checks++;
    const key = `${entry.index}:${entry.term}`;
    const hash = entryHash(entry);
    const prev = prevTerm ?? -1;
    const known = this.identities.get(key);
    if (known === undefined) {
      this.identities.set(key, { hash, prevTerm: prev });
      return;
    }
    if (known.hash !== hash) throw new InvariantViolation('Log Matching', `${id} holds a different entry at index ${entry.index} term ${entry.term}`);
    if (known.prevTerm !== prev && prev !== -1 && known.prevTerm !== -1) {
      throw new InvariantViolation(
        'Log Matching',
        `${id}: entry ${entry.index}@${entry.term} follows term ${prev}, elsewhere term ${known.prevTerm}: logs differ before a matching entry`,
      );
    }
  }

  /** A replica reports its commit index moved from `from` to `to`; `termAt` reads its log. */
  observeCommit(id: ReplicaId, from: Index, to: Index, termAt: (i: Index) => Term | undefined): void {
    for (let i = from + 1; i <= to; i++) {
      this.checks++;
      const t = termAt(i);
      if (t === undefined) continue; // covered by a snapshot: checked through state digests
      const known = this.committed.get(i);
      if (known === undefined) this.committed.set(i, t);
      else if (known !== t)
        throw new InvariantViolation('Committed entries are stable', `${id} committed index ${i} at term ${t}, elsewhere committed at term ${known}`);
    }
    if (to > this.maxCommitted) this.maxCommitted = to;
  }

  /** State Machine Safety: the applied-prefix digest at `index` is the same everywhere. */
  observeApplied(id: ReplicaId, index: Index, digest: number, what: string): void {
    this.checks++;
    const known = this.digests.get(index);
    if (known === undefined) this.digests.set(index, digest);
    else if (known !== digest)
      throw new InvariantViolation('State Machine Safety', `${id} ${what} at index ${index} gives a state that differs from another replica's`);
  }

  /** Leader Completeness for every current leader. */
  checkLeaders(replicas: Iterable<ReplicaView>): void {
    for (const r of replicas) {
      if (!r.isLeader()) continue;
      const term = r.term();
      this.observeLeader(r.id, term);
      const key = `${r.id}:${term}`;
      const from = Math.max(this.verified.get(key) ?? 0, r.firstIndex() - 1);
      for (let i = from + 1; i <= this.maxCommitted; i++) {
        this.checks++;
        const t = this.committed.get(i);
        if (t === undefined || t > term) continue;
        const mine = r.logTerm(i);
        if (mine !== t) {
          throw new InvariantViolation(
            'Leader Completeness',
            `leader ${r.id} of term ${term} lacks entry ${i}@${t} committed earlier (has ${mine === undefined ? 'nothing' : `term ${mine}`})`,
          );
        }
      }
      this.verified.set(key, Math.max(from, this.maxCommitted));
    }
  }
}
