/**
 * When a failed snapshot transfer may be tried again (pure; the caller passes the time).
 *
 * Raft asks for the snapshot again on the next heartbeat after a transfer failed, and each
 * attempt costs the sender a full export of the partition before the receiver can refuse it
 * (e.g. while it is still installing the previous one). So the attempts to one replica of one
 * group are spaced out: the first retry waits `SNAPSHOT_RETRY_MIN_MS`, each further failure
 * doubles the wait up to `SNAPSHOT_RETRY_MAX_MS`, and a transfer that succeeds clears it.
 */

export const SNAPSHOT_RETRY_MIN_MS = 250;
export const SNAPSHOT_RETRY_MAX_MS = 8_000;

export class SnapshotRetryPacing {
  readonly #waits = new Map<string, { readonly delayMs: number; readonly untilMs: number }>();

  /** How long a transfer for `key` must still wait at `nowMs` (0: it may start now). */
  waitMs(key: string, nowMs: number): number {
    const w = this.#waits.get(key);
    return w === undefined ? 0 : Math.max(0, w.untilMs - nowMs);
  }

  /** A transfer for `key` failed at `nowMs`: returns how long the next one waits. */
  failed(key: string, nowMs: number): number {
    const previous = this.#waits.get(key)?.delayMs;
    const delayMs = previous === undefined ? SNAPSHOT_RETRY_MIN_MS : Math.min(previous * 2, SNAPSHOT_RETRY_MAX_MS);
    this.#waits.set(key, { delayMs, untilMs: nowMs + delayMs });
    return delayMs;
  }

  /** A transfer for `key` succeeded: the next one starts at once. */
  succeeded(key: string): void {
    this.#waits.delete(key);
  }
}
