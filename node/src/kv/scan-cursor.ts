/**
 * Resumable scan cursors: opaque base64url text holding the snapshot timestamp, the last
 * position returned and a fingerprint of the scan's parameters, so a cursor cannot be reused
 * for a different scan. Anything malformed is INVALID_CURSOR.
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { Timestamp } from '../engine/types.ts';

export interface CursorState {
  readonly readTs: Timestamp;
  readonly hash: bigint;
  readonly key: Buffer;
  readonly scanId: string;
}

const VERSION = 1;

export function encodeCursor(c: CursorState): string {
  const json = JSON.stringify({ v: VERSION, t: c.readTs.toString(), h: c.hash.toString(), k: c.key.toString('base64'), s: c.scanId });
  return Buffer.from(json, 'utf8').toString('base64url');
}

function bad(why: string): KeyVaError {
  return new KeyVaError('INVALID_CURSOR', `scan cursor is invalid (${why}); start the scan again without a cursor`, { field: 'cursor' });
}

export function decodeCursor(text: string, scanId: string): CursorState {
  if (text.length > 16384 || !/^[A-Za-z0-9_-]+$/.test(text)) throw bad('not base64url');
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw bad('not a KeyVa cursor');
  }
  if (typeof o !== 'object' || o === null) throw bad('not a KeyVa cursor');
  const r = o as Record<string, unknown>;
  if (r.v !== VERSION) throw bad('unknown cursor version');
  if (typeof r.t !== 'string' || typeof r.h !== 'string' || typeof r.k !== 'string' || typeof r.s !== 'string') throw bad('missing fields');
  if (!/^\d{1,20}$/.test(r.t) || !/^\d{1,20}$/.test(r.h)) throw bad('bad numbers');
  if (r.s !== scanId) throw bad('it belongs to a different scan');
  const hash = BigInt(r.h);
  if (hash >= 1n << 64n) throw bad('hash out of range');
  return { readTs: BigInt(r.t), hash, key: Buffer.from(r.k, 'base64'), scanId: r.s };
}

/** A short fingerprint of the parameters that define a scan (not its limit or cursor). */
export function scanFingerprint(parts: readonly Buffer[]): string {
  let h = 0x811c9dc5;
  for (const p of parts) {
    for (const b of p) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    h = Math.imul(h ^ 0xff, 0x01000193) >>> 0;
    h = Math.imul(h ^ (p.length & 0xff), 0x01000193) >>> 0;
  }
  return h.toString(36);
}
