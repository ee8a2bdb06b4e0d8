/**
 * Retry policy (DESIGN §10): retry only errors whose code is marked retryable, back off
 * exponentially with full jitter, never past the call's overall deadline, and resend a write
 * only when doing so cannot apply it twice with a different meaning:
 *
 * - reads: any retryable error is retried;
 * - unconditional puts and deletes (and batches of them) are idempotent in effect (the last
 *   writer wins and the value is the same), so they are retried like reads;
 * - conditional writes (ifAbsent / ifExists / ifVersion / ifValue, cas, batches holding one) are
 *   retried only when the failure proves the write did not apply (`writeOutcome`); after an
 *   ambiguous failure (deadline, a connection or stream lost after sending) the error is
 *   surfaced with `details.outcome = 'unknown'` and `retryable: false`; the caller must read
 *   the key to find out whether it applied.
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

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attemptsMax: 5, baseDelayMs: 20, maxDelayMs: 1000 };

export const Idempotency = {
  /** Reads and admin calls. */
  read: 'read',
  /** Unconditional puts and deletes: resending has the same effect. */
  idempotent: 'idempotent',
  /** Conditional writes: resending after an applied attempt would fail or apply twice. */
  conditional: 'conditional',
} as const;
export type Idempotency = (typeof Idempotency)[keyof typeof Idempotency];

/**
 * Full-jitter backoff before retry number `retry` (1 = the first retry):
 * uniform in [0, min(maxDelayMs, baseDelayMs * 2^(retry-1))).
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * cap);
}

/** Whether an error may be retried for an operation of the given idempotency. */
export function isRetryAllowed(err: KeyVaError, idempotency: Idempotency): boolean {
  if (!err.retryable) return false;
  if (idempotency === Idempotency.conditional) return writeOutcome(err) === 'not-applied';
  return true;
}

/**
 * The error to surface when giving up: writes of unknown outcome say so in their details, and a
 * conditional one is marked not retryable (resending it blindly is what the SDK just refused to do).
 */
export function finalError(err: KeyVaError, idempotency: Idempotency): KeyVaError {
  if (idempotency === Idempotency.read || !err.retryable || writeOutcome(err) !== 'unknown') return err;
  return withUnknownOutcome(err, idempotency !== Idempotency.conditional);
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
  // Once one attempt of a write may have applied, the write's outcome stays unknown, whatever later attempts say.
  let maybeApplied = false;
  const giveUp = (err: KeyVaError) =>
    finalError(maybeApplied && writeOutcome(err) === 'not-applied' ? withUnknownOutcome(err, err.retryable) : err, ctx.idempotency);
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
    if (waitMs > 0) await ctx.clock.sleep(waitMs, ctx.signal);
  }
}
