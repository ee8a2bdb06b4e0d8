/**
 * Bounded staleness for `follower` reads (ADR 0008 §6), per partition replica.
 *
 * A replica may answer a follower read from its own applied state only if that state is known
 * to hold every write the partition had committed at some moment no more than `maxStalenessMs`
 * ago. The proof is a completed read barrier (ReadIndex, which works on followers too: the
 * leader confirms its commit index with a quorum and this replica waits until it applied up to
 * it): a barrier STARTED at local time `t` that completed shows the replica holds every write
 * committed before `t`. So the replica is "fresh as of `t`", and a read at local time `now` is
 * at most `now - t` stale. Only this replica's own clock is used (no clock comparison between
 * nodes), and measuring from the barrier's start (not its end) keeps the bound conservative.
 *
 * Serving: fresh enough → answer at once (and refresh in the background once past half the
 * bound, so a steady stream of follower reads never waits); too stale → run (or join) a barrier
 * and answer after it; a barrier that fails (no leader reachable) leaves the read refused.
 * Linearizable reads served here pass a barrier anyway and refresh the same record.
 *
 * Pure: the barrier and the clock are injected.
 */
import { KeyVaError } from '@keyva/proto/errors';

/** Default bound of a follower read's staleness, in ms. */
export const FOLLOWER_STALENESS_MS_DEFAULT = 1000;

interface Inflight {
  readonly startedAtMs: number;
  readonly done: Promise<void>;
}

export class FollowerFreshness {
  private readonly barrier: () => Promise<void>;
  private readonly nowMs: () => number;
  /** Local start time of the latest completed barrier; -Infinity before the first. */
  private freshAtMs = Number.NEGATIVE_INFINITY;
  private inflight: Inflight | undefined;

  constructor(barrier: () => Promise<void>, nowMs: () => number) {
    this.barrier = barrier;
    this.nowMs = nowMs;
  }

  /** How stale the replica may be now, in ms (Infinity before any barrier completed). */
  ageMs(): number {
    return this.nowMs() - this.freshAtMs;
  }

  /** Records a barrier run elsewhere (e.g. by a linearizable read) that started at `startedAtMs`. */
  confirm(startedAtMs: number): void {
    if (startedAtMs > this.freshAtMs) this.freshAtMs = startedAtMs;
  }

  /**
   * Resolves when a read served now is at most `maxStalenessMs` stale; rejects with the
   * barrier's error, or with UNAVAILABLE when even a fresh barrier cannot prove the bound
   * (it took longer than the bound).
   */
  async ensure(maxStalenessMs: number): Promise<void> {
    const age = this.ageMs();
    if (age <= maxStalenessMs) {
      if (age > maxStalenessMs / 2) this.run().catch(() => undefined);
      return;
    }
    // Join a barrier in flight (it may prove enough), else start one; then one fresh try.
    await this.run();
    if (this.ageMs() <= maxStalenessMs) return;
    await this.run(true);
    if (this.ageMs() <= maxStalenessMs) return;
    throw new KeyVaError(
      'UNAVAILABLE',
      `this replica cannot prove its data is at most ${maxStalenessMs} ms stale (the last read barrier took longer); retry, or allow more staleness`,
      { maxStalenessMs: String(maxStalenessMs) },
    );
  }

  /** Starts a barrier, or returns the one in flight (unless `fresh`, which waits for a new one). */
  private run(fresh = false): Promise<void> {
    const current = this.inflight;
    if (current !== undefined && !fresh) return current.done;
    const startedAtMs = this.nowMs();
    const done = (current?.done.catch(() => undefined) ?? Promise.resolve())
      .then(() => this.barrier())
      .then(() => this.confirm(startedAtMs))
      .finally(() => {
        if (this.inflight?.done === done) this.inflight = undefined;
      });
    this.inflight = { startedAtMs, done };
    return done;
  }
}
