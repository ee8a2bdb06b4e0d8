/**
 * Durations in CRD fields, written as Kubernetes writes them (Go `time.Duration` strings without
 * fractions or signs): "24h", "1h30m", "90s", "500ms", "0s". The OpenAPI pattern rejects anything
 * else at the API server; `parseDurationMs` reads what passed it.
 */
import { KeyVaError } from '@keyva/proto/errors';

export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h))+$';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a duration string; INVALID_ARGUMENT naming `field` when it does not match the pattern. */
export function parseDurationMs(value: string, field: string): number {
  if (!new RegExp(DURATION_PATTERN).test(value)) {
    throw new KeyVaError('INVALID_ARGUMENT', `${field} must be a duration such as 24h, 1h30m or 90s, got ${JSON.stringify(value)}`, { field });
  }
  let ms = 0;
  for (const [, n, unit] of value.matchAll(/([0-9]+)(ms|s|m|h)/g)) ms += Number(n) * (UNIT_MS[unit as string] as number);
  if (!Number.isSafeInteger(ms)) throw new KeyVaError('INVALID_ARGUMENT', `${field} is too long: ${value}`, { field });
  return ms;
}
