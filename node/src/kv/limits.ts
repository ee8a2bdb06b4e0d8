/** Validation of keys, values, TTLs and batch sizes against the configured limits. */
import { KeyVaError } from '@keyva/proto/errors';

export interface Limits {
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  readonly ttlMsMax: number;
  readonly batchOpsMax: number;
  readonly scanLimitMax: number;
}

export function checkKey(key: Buffer, limits: Limits): void {
  if (key.length === 0) throw new KeyVaError('KEY_EMPTY', 'key is empty: keys are 1 or more bytes', { field: 'key' });
  if (key.length > limits.keyBytesMax)
    throw new KeyVaError('KEY_TOO_LARGE', `key is ${key.length} bytes; the limit is ${limits.keyBytesMax}`, {
      limit: String(limits.keyBytesMax),
      size: String(key.length),
    });
}

export function checkValue(value: Buffer, limits: Limits): void {
  if (value.length > limits.valueBytesMax)
    throw new KeyVaError('VALUE_TOO_LARGE', `value is ${value.length} bytes; the limit is ${limits.valueBytesMax}`, {
      limit: String(limits.valueBytesMax),
      size: String(value.length),
    });
}

export function checkTtl(ttlMs: number, limits: Limits): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0 || ttlMs > limits.ttlMsMax)
    throw new KeyVaError('INVALID_TTL', `ttl ${ttlMs} ms is invalid: use 0 (no expiry) or an integer from 1 to ${limits.ttlMsMax}`, {
      limit: String(limits.ttlMsMax),
      ttlMs: String(ttlMs),
    });
}

export function checkBatch(size: number, limits: Limits, what: string): void {
  if (size > limits.batchOpsMax)
    throw new KeyVaError('BATCH_TOO_LARGE', `${what} has ${size} operations; the limit is ${limits.batchOpsMax}`, {
      limit: String(limits.batchOpsMax),
      size: String(size),
    });
}
