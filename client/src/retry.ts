/**
 * Retry policy (DESIGN §10): retry only errors whose code is marked retryable, back off
 * exponentially with equal jitter, never past the call's overall deadline, and never resend a
 * write that could then apply twice:
 *
 * - reads: any retryable error is retried;
 * - writes WITHOUT a request id (conditional or not) are resent only after a failure that proves
 *   the attempt did not apply (`writeOutcome(err) === 'not-applied'`: refused before it was
 *   proposed, or never sent). "Unconditional writes are idempotent in effect" is false: a resent
 *   put that applies a second time, late, overwrites whatever another client wrote in between
 *   (found by the fault suite, e2e/src/faults);
 * - writes WITH a request id (`deduplicated`; the SDK's default, docs/adr/0011-exactly-once-writes.md)
 *   carry the same 16-byte id in every attempt, and the partition applies an id at most once while
 *   it remembers it (`REQUEST_ID_RETENTION_MS` on the node, 10 min). They are also resent after an
 *   ambiguous failure, but only while the call's deadline AND the resend window
 *   (`DEDUP_RESEND_WINDOW_MS`, 60 s from the first attempt, far inside the retention) allow.
 *
 * A write that gives up after an ambiguous failure (deadline, a connection or stream lost after
 * sending) surfaces the error with `details.outcome = 'unknown'` and `retryable: false`; the
 * caller must read the key to find out whether it applied.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { type Clock, cancelledError } from './clock.ts';
import { decodeGrpcError, isServiceError, withUnknownOutcome, writeOutcome } from './errors.ts';

export interface RetryPolicy {
  /** Attempts in all, the first included. 1 = never retry. */
  readonly attemptsMax: number;
  /** Cap of the first backoff; doubles per retry. */
  readonly baseDelayMs: number;
  /** Largest cap of a backoff. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attemptsMax: 12, baseDelayMs: 20, maxDelayMs: 1000 };

export const Idempotency = {
  /** Reads and admin calls: resent after any retryable error. */
  read: 'read',
  /** Writes without a request id: resent only after a failure proving the attempt did not apply. */
  write: 'write',
  /** Writes with a request id: resent after any retryable failure within the resend window. */
  deduplicated: 'deduplicated',
} as const;
export type Idempotency = (typeof Idempotency)[keyof typeof Idempotency];

/**
 * How long after its first attempt a write with a request id may still be resent after an
 * ambiguous failure. The node remembers request ids far longer (`REQUEST_ID_RETENTION_MS`,
 * node/src/replication/request-record.ts, 10 min): the margin covers clock skew between nodes
 * and requests delayed on the way. Past the window the write is treated like one without an id.
 */
export const DEDUP_RESEND_WINDOW_MS = 60_000;

/** Bytes of a write's request id (random, chosen once per logical write). */
export const REQUEST_ID_BYTES = 16;

/**
 * Equal-jitter backoff before retry number `retry` (1 = the first retry): uniform in
 * [cap/2, cap) with cap = min(maxDelayMs, baseDelayMs * 2^(retry-1)).
 *
 * The floor is what makes a call's attempts last: the default policy's retries wait at least
 * ~3 s in all (half the caps), so a call rides out a partition's first election after a split or
 * a leader's death (1-2 s) on the attempt count alone. Full jitter (uniform in [0, cap)) sometimes
 * spent all twelve attempts in about a second and failed clients through splits (a flaky
 * e2e/src/split-clients.test.ts in sessions 13 and 16).
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const half = cap / 2;
  // (min: half + r * half can round up to cap itself when r is just below 1.)
  return Math.min(Math.floor(half + random() * half), Math.max(0, Math.ceil(cap) - 1));
}

/** Whether an error may be retried for an operation of the given idempotency. */
export function isRetryAllowed(err: KeyVaError, idempotency: Idempotency): boolean {
  if (!err.retryable) return false;
  if (idempotency === Idempotency.write) return writeOutcome(err) === 'not-applied';
  return true;
}

/**
 * The error to surface when giving up: a write of unknown outcome says so in its details and is
 * marked not retryable (resending it blindly is what the SDK just refused to do).
 */
export function finalError(err: KeyVaError, idempotency: Idempotency): KeyVaError {
  if (idempotency === Idempotency.read || !err.retryable || writeOutcome(err) !== 'unknown') return err;
  return withUnknownOutcome(err, false);
}

/** Normalises anything a call threw: KeyVaError as is, gRPC errors decoded, other errors (bugs) undefined. */
export function asKeyVaError(e: unknown): KeyVaError | undefined {
  if (e instanceof KeyVaError) return e;
  if (isServiceError(e)) return decodeGrpcError(e);
  return undefined;
}

export interface RetryContext {
  readonly policy: RetryPolicy;
  readonly idempotency: Idempotency;
  /** Absolute time (clock.now() scale) after which no attempt starts and no backoff ends. */
  readonly deadlineAt: number;
  /** Deduplicated writes: how long after the first attempt a resend after an ambiguous failure may start (default `DEDUP_RESEND_WINDOW_MS`). */
  readonly resendWindowMs?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly clock: Clock;
  readonly random: () => number;
  /**
   * Runs before each retry with the error of the failed attempt (e.g. to refresh routing).
   * Resolving true sends the next attempt at once, without backoff (the request was redirected).
   */
  readonly beforeRetry?: ((err: KeyVaError, attempt: number, delayMs: number) => Promise<boolean> | boolean) | undefined;
}

/** Runs `attempt(1)`, `attempt(2)`, ... until one succeeds or the policy says stop. */
export async function withRetry<T>(attempt: (n: number) => Promise<T>, ctx: RetryContext): Promise<T> {
  const attemptsMax = Math.max(1, ctx.policy.attemptsMax);
  const resendUntil = ctx.clock.now() + (ctx.resendWindowMs ?? DEDUP_RESEND_WINDOW_MS);
  // Once one attempt of a write may have applied, the write's outcome stays unknown, whatever later attempts say.
  let maybeApplied = false;
  const giveUp = (err: KeyVaError) => finalError(maybeApplied && writeOutcome(err) === 'not-applied' ? withUnknownOutcome(err, false) : err, ctx.idempotency);
  for (let n = 1; ; n++) {
    if (ctx.signal?.aborted) throw cancelledError(ctx.signal);
    let err: KeyVaError;
    try {
      return await attempt(n);
    } catch (e) {
      const decoded = asKeyVaError(e);
      if (decoded === undefined) throw e;
      err = decoded;
    }
    if (ctx.idempotency !== Idempotency.read && writeOutcome(err) === 'unknown') maybeApplied = true;
    if (ctx.signal?.aborted) throw cancelledError(ctx.signal);
    if (!isRetryAllowed(err, ctx.idempotency) || n >= attemptsMax) throw giveUp(err);
    const delayMs = backoffDelayMs(n, ctx.policy, ctx.random);
    const immediate = ctx.beforeRetry === undefined ? false : await ctx.beforeRetry(err, n, delayMs);
    const waitMs = immediate ? 0 : delayMs;
    if (ctx.clock.now() + waitMs >= ctx.deadlineAt) throw giveUp(err);
    // A request id is remembered for a bounded time: no resend of a maybe-applied write after the window.
    if (maybeApplied && ctx.idempotency === Idempotency.deduplicated && ctx.clock.now() + waitMs >= resendUntil) throw giveUp(err);
    if (waitMs > 0) await ctx.clock.sleep(waitMs, ctx.signal);
  }
}
