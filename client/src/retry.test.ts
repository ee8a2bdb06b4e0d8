import { KeyVaError } from '@keyva/proto/errors';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { markNotApplied, writeOutcome } from './errors.ts';
import { CLIENT_DEFAULTS } from './options.ts';
import { backoffDelayMs, DEDUP_RESEND_WINDOW_MS, DEFAULT_RETRY_POLICY, Idempotency, isRetryAllowed, type RetryContext, withRetry } from './retry.ts';
import { FakeClock, seededRandom } from './testing/fake-clock.ts';
import { rejection } from './testing/rejection.ts';

const policy = DEFAULT_RETRY_POLICY;

function ctx(over: Partial<RetryContext> & { clock: FakeClock }): RetryContext {
  return {
    policy,
    idempotency: Idempotency.read,
    deadlineAt: over.clock.now() + 5000,
    random: seededRandom(42),
    ...over,
  };
}

/** An attempt function failing with `errors` in turn, then answering 'ok'. */
function failing(errors: KeyVaError[]): { fn: (n: number) => Promise<string>; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    fn: async (n) => {
      calls.push(n);
      const e = errors[n - 1];
      if (e !== undefined) throw e;
      return 'ok';
    },
  };
}

const notApplied = (code: 'UNAVAILABLE' | 'NOT_LEADER' = 'UNAVAILABLE') => markNotApplied(new KeyVaError(code));
const ambiguous = (code: 'UNAVAILABLE' | 'DEADLINE_EXCEEDED' = 'UNAVAILABLE') => new KeyVaError(code);

describe('backoffDelayMs (equal jitter)', () => {
  test('is uniform in the upper half of a cap that doubles from baseDelayMs up to maxDelayMs', () => {
    expect(backoffDelayMs(1, policy, () => 0.999999)).toBe(19);
    expect(backoffDelayMs(2, policy, () => 0.999999)).toBe(39);
    expect(backoffDelayMs(3, policy, () => 0.5)).toBe(60);
    expect(backoffDelayMs(7, policy, () => 0.999999)).toBe(999);
    expect(backoffDelayMs(30, policy, () => 0.999999)).toBe(999);
    expect(backoffDelayMs(4, policy, () => 0)).toBe(80);
    expect(backoffDelayMs(30, policy, () => 0)).toBe(500);
  });

  test('the default policy waits at least ~3 s over its retries, however the dice fall (a first election after a split fits)', () => {
    let total = 0;
    for (let n = 1; n < DEFAULT_RETRY_POLICY.attemptsMax; n++) total += backoffDelayMs(n, DEFAULT_RETRY_POLICY, () => 0);
    expect(total).toBeGreaterThanOrEqual(3000);
  });

  test('property: always in [floor(cap/2), cap) with cap = min(max, base * 2^(n-1))', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 60_000 }),
        (n, r, base, max) => {
          const d = backoffDelayMs(n, { attemptsMax: 5, baseDelayMs: base, maxDelayMs: max }, () => r);
          const cap = Math.min(max, base * 2 ** (n - 1));
          return Number.isInteger(d) && d >= Math.floor(cap / 2) && d < Math.max(cap, 1);
        },
      ),
    );
  });

  test('a seed replays the same delays', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const da = [1, 2, 3, 4].map((n) => backoffDelayMs(n, policy, a));
    const db = [1, 2, 3, 4].map((n) => backoffDelayMs(n, policy, b));
    expect(da).toEqual(db);
  });
});

describe('isRetryAllowed', () => {
  test('only retryable codes', () => {
    expect(isRetryAllowed(new KeyVaError('CONDITION_FAILED'), Idempotency.read)).toBe(false);
    expect(isRetryAllowed(new KeyVaError('INVALID_ARGUMENT'), Idempotency.write)).toBe(false);
    expect(isRetryAllowed(new KeyVaError('CANCELLED'), Idempotency.read)).toBe(false);
    expect(isRetryAllowed(new KeyVaError('UNAVAILABLE'), Idempotency.read)).toBe(true);
    expect(isRetryAllowed(new KeyVaError('DEADLINE_EXCEEDED'), Idempotency.read)).toBe(true);
  });

  test('writes only when the failure proves nothing applied', () => {
    expect(isRetryAllowed(ambiguous('UNAVAILABLE'), Idempotency.write)).toBe(false);
    expect(isRetryAllowed(ambiguous('DEADLINE_EXCEEDED'), Idempotency.write)).toBe(false);
    expect(isRetryAllowed(notApplied('NOT_LEADER'), Idempotency.write)).toBe(true);
    expect(isRetryAllowed(notApplied('UNAVAILABLE'), Idempotency.write)).toBe(true);
    expect(isRetryAllowed(markNotApplied(new KeyVaError('DEADLINE_EXCEEDED')), Idempotency.write)).toBe(true);
  });

  test('writes with a request id after any retryable failure (the node applies the id once)', () => {
    expect(isRetryAllowed(ambiguous('DEADLINE_EXCEEDED'), Idempotency.deduplicated)).toBe(true);
    expect(isRetryAllowed(notApplied('NOT_LEADER'), Idempotency.deduplicated)).toBe(true);
    expect(isRetryAllowed(new KeyVaError('CONDITION_FAILED'), Idempotency.deduplicated)).toBe(false);
  });
});

describe('withRetry', () => {
  test('retries retryable errors with seeded equal-jitter backoff, then succeeds', async () => {
    const clock = new FakeClock();
    const f = failing([ambiguous(), ambiguous(), ambiguous()]);
    await expect(withRetry(f.fn, ctx({ clock }))).resolves.toBe('ok');
    expect(f.calls).toEqual([1, 2, 3, 4]);
    const r = seededRandom(42);
    expect(clock.sleeps).toEqual([1, 2, 3].map((n) => backoffDelayMs(n, policy, r)));
  });

  test('gives up after attemptsMax attempts with the last error', async () => {
    const clock = new FakeClock();
    const errs = Array.from({ length: policy.attemptsMax + 1 }, () => ambiguous());
    const f = failing(errs);
    await expect(withRetry(f.fn, ctx({ clock, deadlineAt: clock.now() + 60_000 }))).rejects.toBe(errs[policy.attemptsMax - 1]);
    expect(f.calls).toHaveLength(policy.attemptsMax);
    expect(clock.sleeps).toHaveLength(policy.attemptsMax - 1);
  });

  test('the defaults wait out a leader election (about two election timeouts) within the default deadline', async () => {
    // A partition without a serving leader (a failover, a split's new group electing its first
    // leader) refuses requests for 1-4 s. With 5 attempts the backoffs added up to ~0.15 s and
    // clients failed during splits (session 8: 87 errors through three splits, 0 with these defaults).
    const clock = new FakeClock();
    const f = failing(Array.from({ length: policy.attemptsMax }, () => notApplied()));
    await expect(withRetry(f.fn, ctx({ clock, idempotency: Idempotency.write, deadlineAt: clock.now() + 60_000, random: () => 0.5 }))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    const waited = clock.sleeps.reduce((a, b) => a + b, 0);
    expect(waited).toBeGreaterThan(2 * 1000);
    expect(waited).toBeLessThan(CLIENT_DEFAULTS.deadlineMs);
  });

  test('attemptsMax 1 never retries', async () => {
    const clock = new FakeClock();
    const f = failing([ambiguous()]);
    await expect(withRetry(f.fn, ctx({ clock, policy: { ...policy, attemptsMax: 1 } }))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(f.calls).toEqual([1]);
  });

  test('does not retry a non-retryable code', async () => {
    const clock = new FakeClock();
    const f = failing([new KeyVaError('CONDITION_FAILED')]);
    await expect(withRetry(f.fn, ctx({ clock }))).rejects.toMatchObject({ code: 'CONDITION_FAILED' });
    expect(f.calls).toEqual([1]);
    expect(clock.sleeps).toEqual([]);
  });

  test('a write is retried after a rejection that proves it did not apply', async () => {
    const clock = new FakeClock();
    const f = failing([notApplied('NOT_LEADER'), notApplied('UNAVAILABLE')]);
    await expect(withRetry(f.fn, ctx({ clock, idempotency: Idempotency.write }))).resolves.toBe('ok');
    expect(f.calls).toEqual([1, 2, 3]);
  });

  test('a write (conditional or not) is NOT resent after an ambiguous failure, and says the outcome is unknown', async () => {
    // Found by the fault suite (e2e/src/faults, KEYVA_FAULT_SEED=132367): an unconditional put
    // resent after its answer was lost applied twice; the late second application overwrote
    // another client's write made in between. "Idempotent in effect" does not hold under concurrency.
    for (const first of [ambiguous('DEADLINE_EXCEEDED'), ambiguous('UNAVAILABLE')]) {
      const clock = new FakeClock();
      const f = failing([first]);
      const err = await rejection(withRetry(f.fn, ctx({ clock, idempotency: Idempotency.write })));
      expect(err.code).toBe(first.code);
      expect(err.details.outcome).toBe('unknown');
      expect(writeOutcome(err)).toBe('unknown');
      // Resending it is unsafe: the surfaced error says so, whatever the code's default.
      expect(err.retryable).toBe(false);
      expect(err.toJSON().retryable).toBe(false);
      expect(f.calls).toEqual([1]);
      expect(clock.sleeps).toEqual([]);
    }
  });

  test('a write refused before it was proposed, then lost, stops at the ambiguous failure', async () => {
    const clock = new FakeClock();
    const f = failing([notApplied('NOT_LEADER'), ambiguous('DEADLINE_EXCEEDED'), notApplied()]);
    const err = await rejection(withRetry(f.fn, ctx({ clock, idempotency: Idempotency.write })));
    expect(f.calls).toEqual([1, 2]);
    expect(err.details.outcome).toBe('unknown');
    expect(err.retryable).toBe(false);
  });

  test('a write refused every time reports not-applied and stays retryable; a read never reports an outcome', async () => {
    const clock = new FakeClock();
    const p = { ...policy, attemptsMax: 2 };
    const r = await rejection(withRetry(failing([ambiguous(), ambiguous()]).fn, ctx({ clock, policy: p })));
    expect(r.details.outcome).toBeUndefined();
    expect(r.retryable).toBe(true);
    const n = await rejection(withRetry(failing([notApplied(), notApplied()]).fn, ctx({ clock, policy: p, idempotency: Idempotency.write })));
    expect(writeOutcome(n)).toBe('not-applied');
    expect(n.details.outcome).toBeUndefined();
    expect(n.retryable).toBe(true);
  });

  test('a write with a request id (deduplicated) is resent after ambiguous failures', async () => {
    const clock = new FakeClock();
    const f = failing([ambiguous('DEADLINE_EXCEEDED'), ambiguous('UNAVAILABLE'), notApplied('NOT_LEADER')]);
    await expect(withRetry(f.fn, ctx({ clock, idempotency: Idempotency.deduplicated }))).resolves.toBe('ok');
    expect(f.calls).toEqual([1, 2, 3, 4]);
  });

  test('a deduplicated write is not resent after an ambiguous failure once the resend window passed', async () => {
    const clock = new FakeClock();
    // Each attempt takes 40 virtual seconds; the window is 60 s from the start, the deadline far away.
    const f = failing([ambiguous('DEADLINE_EXCEEDED'), ambiguous('DEADLINE_EXCEEDED'), ambiguous()]);
    const slow = async (n: number) => {
      clock.t += 40_000;
      return f.fn(n);
    };
    const err = await rejection(withRetry(slow, ctx({ clock, deadlineAt: clock.now() + 600_000, idempotency: Idempotency.deduplicated })));
    expect(DEDUP_RESEND_WINDOW_MS).toBe(60_000);
    expect(f.calls).toEqual([1, 2]);
    expect(err.details.outcome).toBe('unknown');
    expect(err.retryable).toBe(false);
    // Refusals that prove nothing applied are still retried past the window (nothing can apply twice).
    const clock2 = new FakeClock();
    const g = failing([notApplied(), notApplied(), notApplied()]);
    const slow2 = async (n: number) => {
      clock2.t += 40_000;
      return g.fn(n);
    };
    await expect(withRetry(slow2, ctx({ clock: clock2, deadlineAt: clock2.now() + 600_000, idempotency: Idempotency.deduplicated }))).resolves.toBe('ok');
  });

  test('a deduplicated write that gives up after a maybe-applied attempt reports an unknown outcome, not retryable', async () => {
    const clock = new FakeClock();
    const p = { ...policy, attemptsMax: 2 };
    const w = await rejection(withRetry(failing([ambiguous(), notApplied('NOT_LEADER')]).fn, ctx({ clock, policy: p, idempotency: Idempotency.deduplicated })));
    expect(w.code).toBe('NOT_LEADER');
    expect(writeOutcome(w)).toBe('unknown');
    expect(w.details.outcome).toBe('unknown');
    expect(w.retryable).toBe(false);
    const n = await rejection(withRetry(failing([notApplied(), notApplied()]).fn, ctx({ clock, policy: p, idempotency: Idempotency.deduplicated })));
    expect(writeOutcome(n)).toBe('not-applied');
    expect(n.retryable).toBe(true);
  });

  test('never sleeps past the overall deadline', async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const deadlineAt = start + 100;
    const errs = Array.from({ length: 50 }, () => ambiguous());
    const f = failing(errs);
    // Each attempt costs 30 virtual ms.
    const slow = async (n: number) => {
      clock.t += 30;
      return f.fn(n);
    };
    await expect(
      withRetry(slow, ctx({ clock, deadlineAt, policy: { attemptsMax: 50, baseDelayMs: 20, maxDelayMs: 1000 }, random: () => 0.99 })),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(clock.now()).toBeLessThanOrEqual(deadlineAt + 30);
    expect(f.calls.length).toBeLessThan(50);
  });

  test('an abort during backoff rejects with CANCELLED', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const f = failing([ambiguous(), ambiguous()]);
    const run = withRetry(
      async (n) => {
        if (n === 1) ac.abort();
        return f.fn(n);
      },
      ctx({ clock, signal: ac.signal }),
    );
    await expect(run).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(f.calls).toEqual([1]);
  });

  test('beforeRetry can redirect at once (no backoff) and sees each failure', async () => {
    const clock = new FakeClock();
    const seen: string[] = [];
    const f = failing([notApplied('NOT_LEADER'), ambiguous()]);
    await withRetry(
      f.fn,
      ctx({
        clock,
        beforeRetry: (err, n) => {
          seen.push(`${n}:${err.code}`);
          return err.code === 'NOT_LEADER';
        },
      }),
    );
    expect(seen).toEqual(['1:NOT_LEADER', '2:UNAVAILABLE']);
    expect(clock.sleeps).toHaveLength(1);
  });

  test('errors that are not KeyVa or gRPC errors (bugs) propagate unchanged, unretried', async () => {
    const clock = new FakeClock();
    const bug = new TypeError('x is not a function');
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw bug;
      }, ctx({ clock })),
    ).rejects.toBe(bug);
    expect(calls).toBe(1);
  });
});
