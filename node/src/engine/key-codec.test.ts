import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkRawKey,
  decodeDataKey,
  decodeDataValue,
  decodeHashRange,
  decodeLatestValue,
  encodeDataKey,
  encodeDataValue,
  encodeHashRange,
  encodeLatestKey,
  encodeLatestValue,
  escapeKey,
  hashRangeBounds,
  keyLowerBound,
  keyPrefixRange,
  keyUpperBound,
  latestHashRangeBounds,
  latestValueOfRow,
  prefixOfLatestKey,
  unescapeKey,
  versionsPrefix,
  visibleVersionsRange,
} from './key-codec.ts';
import { HASH_SPACE_END, MAX_TS } from './types.ts';

const keyArb = fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a));
/** Keys biased towards 0x00 / 0x01 / 0xFF, the bytes the escaping cares about. */
const trickyKeyArb = fc.array(fc.constantFrom(0x00, 0x01, 0x02, 0xfe, 0xff), { maxLength: 8 }).map((a) => Buffer.from(a));
const anyKey = fc.oneof(keyArb, trickyKeyArb);
const hashArb = fc.bigInt({ min: 0n, max: HASH_SPACE_END - 1n });
const tsArb = fc.bigInt({ min: 0n, max: MAX_TS });
const sign = (n: number) => Math.sign(n);

describe('key codec', () => {
  it('escapes 0x00 as 0x00 0xFF and terminates with 0x00 0x01', () => {
    expect(escapeKey(Buffer.from([1, 0, 2]))).toEqual(Buffer.from([1, 0, 0xff, 2, 0, 1]));
    expect(escapeKey(Buffer.alloc(0))).toEqual(Buffer.from([0, 1]));
  });

  it('lays out d | hash BE | escaped key | ~commitTs BE', () => {
    const k = encodeDataKey(0x0102030405060708n, Buffer.from('a'), 1n);
    expect(k).toEqual(Buffer.from([0x64, 1, 2, 3, 4, 5, 6, 7, 8, 0x61, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]));
  });

  it('property: decode(encode(x)) == x for data keys', () => {
    fc.assert(
      fc.property(hashArb, anyKey, tsArb, (hash, key, ts) => {
        const d = decodeDataKey(encodeDataKey(hash, key, ts));
        expect(d.hash).toBe(hash);
        expect(d.key.equals(key)).toBe(true);
        expect(d.commitTs).toBe(ts);
      }),
    );
  });

  it('property: unescape(escape(k)) == k', () => {
    fc.assert(
      fc.property(anyKey, (key) => {
        const { key: out, end } = unescapeKey(escapeKey(key));
        expect(out.equals(key)).toBe(true);
        expect(end).toBe(escapeKey(key).length);
      }),
    );
  });

  it('property: escaped order == byte order of keys, and no escaped key is a prefix of another', () => {
    fc.assert(
      fc.property(anyKey, anyKey, (a, b) => {
        const ea = escapeKey(a);
        const eb = escapeKey(b);
        expect(sign(Buffer.compare(ea, eb))).toBe(sign(Buffer.compare(a, b)));
        if (!a.equals(b)) {
          expect(ea.subarray(0, eb.length).equals(eb)).toBe(false);
          expect(eb.subarray(0, ea.length).equals(ea)).toBe(false);
        }
      }),
    );
  });

  it('property: storage order is (hash, key, newest version first)', () => {
    fc.assert(
      fc.property(hashArb, anyKey, tsArb, hashArb, anyKey, tsArb, (h1, k1, t1, h2, k2, t2) => {
        const expected = h1 !== h2 ? (h1 < h2 ? -1 : 1) : !k1.equals(k2) ? sign(Buffer.compare(k1, k2)) : t1 === t2 ? 0 : t1 > t2 ? -1 : 1;
        expect(sign(Buffer.compare(encodeDataKey(h1, k1, t1), encodeDataKey(h2, k2, t2)))).toBe(expected);
      }),
    );
  });

  it('property: versions of one key sort newest first and lie in the key bounds', () => {
    fc.assert(
      fc.property(hashArb, anyKey, fc.array(tsArb, { minLength: 1, maxLength: 10 }), (h, k, tss) => {
        const keys = tss.map((t) => encodeDataKey(h, k, t)).sort(Buffer.compare);
        const back = keys.map((x) => decodeDataKey(x).commitTs);
        expect(back).toEqual([...tss].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));
        const lo = keyLowerBound(h, k);
        const hi = keyUpperBound(h, k);
        for (const x of keys) {
          expect(Buffer.compare(lo, x)).toBeLessThanOrEqual(0);
          expect(Buffer.compare(x, hi)).toBeLessThan(0);
        }
      }),
    );
  });

  it('property: visibleVersionsRange holds exactly the versions <= readTs', () => {
    fc.assert(
      fc.property(hashArb, anyKey, tsArb, tsArb, (h, k, t, readTs) => {
        const { lo, hi } = visibleVersionsRange(h, k, readTs);
        const x = encodeDataKey(h, k, t);
        const inside = Buffer.compare(lo, x) <= 0 && Buffer.compare(x, hi) < 0;
        expect(inside).toBe(t <= readTs);
      }),
    );
  });

  it('property: key bounds and prefix ranges select exactly the matching keys', () => {
    fc.assert(
      fc.property(hashArb, anyKey, anyKey, tsArb, (h, bound, k, t) => {
        const x = encodeDataKey(h, k, t);
        expect(Buffer.compare(x, keyLowerBound(h, bound)) >= 0).toBe(Buffer.compare(k, bound) >= 0);
        const p = keyPrefixRange(h, bound);
        const inPrefix = k.length >= bound.length && k.subarray(0, bound.length).equals(bound);
        expect(Buffer.compare(p.lo, x) <= 0 && Buffer.compare(x, p.hi) < 0).toBe(inPrefix);
      }),
    );
  });

  it('property: hash ranges are contiguous and hold exactly their hashes', () => {
    fc.assert(
      fc.property(hashArb, hashArb, hashArb, anyKey, tsArb, (a, b, h, k, t) => {
        const [lo, mid] = a <= b ? [a, b] : [b, a];
        const left = hashRangeBounds(lo, mid);
        const right = hashRangeBounds(mid, HASH_SPACE_END);
        expect(left.hi.equals(right.lo)).toBe(true);
        const x = encodeDataKey(h, k, t);
        expect(Buffer.compare(left.lo, x) <= 0 && Buffer.compare(x, left.hi) < 0).toBe(h >= lo && h < mid);
        expect(Buffer.compare(right.lo, x) <= 0 && Buffer.compare(x, right.hi) < 0).toBe(h >= mid);
      }),
    );
  });

  it('the last hash range ends before the next key space', () => {
    const { hi } = hashRangeBounds(0n, HASH_SPACE_END);
    expect(Buffer.compare(encodeDataKey(HASH_SPACE_END - 1n, Buffer.from([0xff, 0xff]), 0n), hi)).toBeLessThan(0);
    expect(Buffer.compare(hi, Buffer.from('m'))).toBeLessThan(0);
  });

  it('property: decodeValue(encodeValue(x)) == x', () => {
    fc.assert(
      fc.property(fc.option(keyArb, { nil: undefined }), fc.nat(), (value, expiresAtMs) => {
        const d = decodeDataValue(encodeDataValue(value, expiresAtMs));
        expect(d.tombstone).toBe(value === undefined);
        expect(d.expiresAtMs).toBe(expiresAtMs);
        expect(d.value.equals(value ?? Buffer.alloc(0))).toBe(true);
      }),
    );
  });

  it('rejects out-of-range hashes and corrupt keys', () => {
    expect(() => encodeDataKey(-1n, Buffer.from('a'), 1n)).toThrow();
    expect(() => encodeDataKey(HASH_SPACE_END, Buffer.from('a'), 1n)).toThrow();
    expect(() => decodeDataKey(Buffer.from('mxx'))).toThrow();
    expect(() => decodeDataKey(Buffer.concat([encodeDataKey(1n, Buffer.from('a'), 1n), Buffer.from([1])]))).toThrow();
  });

  it('raw keys must not start with d nor the engine-reserved m\\0', () => {
    expect(() => checkRawKey(Buffer.from('dx'), true)).toThrow();
    expect(() => checkRawKey(Buffer.from([0x6d, 0, 1]), true)).toThrow();
    expect(() => checkRawKey(Buffer.from([0x6d, 0, 1]), false)).not.toThrow();
    expect(() => checkRawKey(Buffer.from('mnode'), true)).not.toThrow();
  });

  it('raw keys must not start with l (the latest key space)', () => {
    expect(() => checkRawKey(Buffer.from('lx'), true)).toThrow();
    expect(() => checkRawKey(Buffer.from('lx'), false)).toThrow();
  });

  it('latest keys are the versions prefix behind an l, in the same order, inside their hash range', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_TS }), keyArb, fc.bigInt({ min: 0n, max: MAX_TS }), keyArb, (h1, k1, h2, k2) => {
        const a = encodeLatestKey(h1, k1);
        const b = encodeLatestKey(h2, k2);
        expect(a[0]).toBe(0x6c);
        expect(prefixOfLatestKey(a).equals(versionsPrefix(h1, k1))).toBe(true);
        expect(Math.sign(Buffer.compare(a, b))).toBe(Math.sign(Buffer.compare(versionsPrefix(h1, k1), versionsPrefix(h2, k2))));
        const { lo: rlo, hi: rhi } = latestHashRangeBounds(h1, h1 + 1n);
        const inRange = (x: Buffer): boolean => Buffer.compare(x, rlo) >= 0 && Buffer.compare(x, rhi) < 0;
        expect(inRange(a)).toBe(true);
        expect(inRange(b)).toBe(h1 === h2);
        const all = latestHashRangeBounds(0n, HASH_SPACE_END);
        expect(Buffer.compare(a, all.lo) >= 0 && Buffer.compare(a, all.hi) < 0).toBe(true);
      }),
    );
  });

  it('latest values round-trip and embed the data value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_TS }), fc.option(keyArb, { nil: undefined }), fc.nat({ max: Number.MAX_SAFE_INTEGER }), (ts, value, exp) => {
        const { latest, dataValue } = encodeLatestValue(ts, value, exp);
        expect(dataValue.equals(encodeDataValue(value, exp))).toBe(true);
        expect(latestValueOfRow(ts, dataValue).equals(latest)).toBe(true);
        const d = decodeLatestValue(latest);
        expect(d.version).toBe(ts);
        expect(d.tombstone).toBe(value === undefined);
        expect(d.expiresAtMs).toBe(exp);
        expect(d.value.equals(value ?? Buffer.alloc(0))).toBe(true);
      }),
    );
  });

  it('hash ranges round-trip through the pending range delete marker', () => {
    for (const [s, e] of [
      [0n, HASH_SPACE_END],
      [5n, 9n],
      [MAX_TS - 1n, MAX_TS],
    ] as const) {
      expect(decodeHashRange(encodeHashRange(s, e))).toEqual({ startHash: s, endHash: e });
    }
    expect(() => decodeHashRange(Buffer.alloc(3))).toThrow();
  });
});
