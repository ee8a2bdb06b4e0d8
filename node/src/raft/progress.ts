/**
 * What a leader knows about one follower, and how fast it may send to it.
 *
 * - `probe`: the leader does not know where the follower's log matches; it sends one append at
 *   a time and waits for the answer (or the next heartbeat response) before sending another.
 * - `replicate`: the logs match up to `match`; the leader pipelines appends, advancing `next`
 *   optimistically, at most `inflightMsgsMax` unacknowledged appends at once (flow control).
 * - `snapshot`: the follower needs entries the leader compacted; nothing is sent until the
 *   snapshot is acknowledged or reported failed.
 */
import type { Index } from './types.ts';

export const ProgressState = { Probe: 'probe', Replicate: 'replicate', Snapshot: 'snapshot' } as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/** A bounded FIFO of the last index of each append in flight to one follower. */
export class Inflights {
  readonly capacity: number;
  private readonly buffer: Index[] = [];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`inflight capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  get count(): number {
    return this.buffer.length;
  }

  full(): boolean {
    return this.buffer.length >= this.capacity;
  }

  /** Records an append whose last entry is `lastIndex`; indexes must increase. */
  add(lastIndex: Index): void {
    if (this.full()) throw new Error('inflights: add to a full window');
    const tail = this.buffer[this.buffer.length - 1];
    if (tail !== undefined && lastIndex <= tail) throw new Error(`inflights: index ${lastIndex} not above ${tail}`);
    this.buffer.push(lastIndex);
  }

  /** The newest append in flight grew to end at `lastIndex` (entries were folded into it). */
  extendLast(lastIndex: Index): void {
    const n = this.buffer.length;
    const tail = this.buffer[n - 1];
    if (tail === undefined || lastIndex <= tail) throw new Error(`inflights: cannot extend ${String(tail)} to ${lastIndex}`);
    this.buffer[n - 1] = lastIndex;
  }

  /** Frees every append whose last index is <= `index` (they are acknowledged). */
  freeLE(index: Index): void {
    let n = 0;
    while (n < this.buffer.length && (this.buffer[n] ?? 0) <= index) n++;
    if (n > 0) this.buffer.splice(0, n);
  }

  reset(): void {
    this.buffer.length = 0;
  }
}

export class Progress {
  /** Highest index known to be replicated (durably) on the follower. */
  match: Index;
  /** Next index to send. */
  next: Index;
  state: ProgressState = ProgressState.Probe;
  /** In `snapshot` state: the index of the snapshot sent. */
  pendingSnapshot: Index = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Leader lease: the leader's tick count when it sent the latest heartbeat this follower answered. */
  leaseAck = Number.NEGATIVE_INFINITY;
  /** In `probe` state: an append was sent and no answer has come back yet. */
  probeSent = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: Index, inflightMsgsMax: number, isLearner: boolean) {
    this.match = 0;
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(inflightMsgsMax);
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: Index): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** Bookkeeping after sending an append of `count` entries ending at `lastIndex`. */
  sentEntries(count: number, lastIndex: Index, folded = false): void {
    if (this.state === ProgressState.Replicate) {
      if (count > 0) {
        this.next = lastIndex + 1;
        if (folded) this.inflights.extendLast(lastIndex);
        else this.inflights.add(lastIndex);
      }
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
  }

  /** An acknowledgement up to `index`; returns false if it was stale (taught nothing new). */
  maybeUpdate(index: Index): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the append at `rejected`; `hint` is where the leader should probe next (from
   * the follower's reject hint). Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: Index, hint: Index): boolean {
    if (this.state === ProgressState.Replicate) {
      // Answers to appends sent before the one that failed may arrive late.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe (or snapshot): only the answer to the last probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold back appends to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}
