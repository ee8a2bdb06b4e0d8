/**
 * Time as the SDK sees it: `now()` for deadline arithmetic and `sleep()` for retry backoff.
 * Injected so tests run retries without waiting (DESIGN STYLE: clock and randomness injected).
 */
import { KeyVaError } from '@keyva/proto/errors';

export interface Clock {
  /** Milliseconds on a monotonic-enough scale; only differences matter. */
  now(): number;
  /** Resolves after `ms`; rejects with KeyVaError CANCELLED when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(cancelledError(signal));
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(cancelledError(signal));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** The error a call rejects with when its AbortSignal fires. */
export function cancelledError(signal?: AbortSignal): KeyVaError {
  return new KeyVaError('CANCELLED', 'the call was aborted by its AbortSignal', {}, { cause: signal?.reason });
}
