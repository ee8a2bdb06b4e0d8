import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, scanFingerprint } from './scan-cursor.ts';

describe('scan cursors', () => {
  it('round-trip any position', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.uint8Array({ maxLength: 64 }),
        (ts, hash, key) => {
          const c = { readTs: ts, hash, key: Buffer.from(key), scanId: 'abc' };
          const back = decodeCursor(encodeCursor(c), 'abc');
          return back.readTs === ts && back.hash === hash && back.key.equals(Buffer.from(key));
        },
      ),
    );
  });

  it('reject garbage, other versions, other scans and out-of-range numbers as INVALID_CURSOR', () => {
    const good = encodeCursor({ readTs: 1n, hash: 2n, key: Buffer.from('k'), scanId: 's1' });
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    for (const bad of [
      '',
      '!!',
      'aGVsbG8',
      enc({ v: 2, t: '1', h: '1', k: '', s: 's1' }),
      enc({ v: 1, t: 'x', h: '1', k: '', s: 's1' }),
      enc({ v: 1, t: '1', h: (1n << 64n).toString(), k: '', s: 's1' }),
      enc([1]),
    ]) {
      expect(() => decodeCursor(bad, 's1'), bad).toThrow(expect.objectContaining({ code: 'INVALID_CURSOR' }));
    }
    expect(() => decodeCursor(good, 's2')).toThrow(/different scan/);
  });

  it('fingerprints distinguish parameter boundaries', () => {
    expect(scanFingerprint([Buffer.from('ab'), Buffer.from('c')])).not.toBe(scanFingerprint([Buffer.from('a'), Buffer.from('bc')]));
    expect(scanFingerprint([Buffer.from('t')])).toBe(scanFingerprint([Buffer.from('t')]));
  });
});
