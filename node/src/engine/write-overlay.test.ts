import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KvOp, KvRow, OrderedKvReader } from './ordered-kv.ts';
import { SortedKv } from './sorted-kv.ts';
import { WriteOverlay } from './write-overlay.ts';

/** A base reader that returns at most `pageMax` rows per call, like RocksDB with a byte bound. */
class ShortPages implements OrderedKvReader {
  readonly #kv: SortedKv;
  readonly #pageMax: number;
  constructor(kv: SortedKv, pageMax: number) {
    this.#kv = kv;
    this.#pageMax = pageMax;
  }
  range(gte: Buffer, lt: Buffer, limit: number): KvRow[] {
    return this.#kv.range(gte, lt, Math.min(limit, this.#pageMax));
  }
  get(key: Buffer): Buffer | undefined {
    return this.#kv.get(key);
  }
}

const keyArb = fc.uint8Array({ minLength: 1, maxLength: 3, max: 4 }).map((a) => Buffer.from(a));
const opArb: fc.Arbitrary<KvOp> = fc.oneof(
  fc.record({ type: fc.constant('put' as const), key: keyArb, value: fc.uint8Array({ maxLength: 2 }).map((a) => Buffer.from(a)) }),
  fc.record({ type: fc.constant('del' as const), key: keyArb }),
);

describe('WriteOverlay', () => {
  it('property: range over base + overlay == range over the store with the ops applied', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 30 }),
        fc.array(opArb, { maxLength: 30 }),
        keyArb,
        keyArb,
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 5 }),
        (baseOps, overlayOps, a, b, limit, pageMax) => {
          const base = new SortedKv();
          base.apply(baseOps);
          const model = new SortedKv();
          model.apply(baseOps);
          model.apply(overlayOps);
          const overlay = new WriteOverlay(new ShortPages(base, pageMax));
          overlay.apply(overlayOps);
          const [gte, lt] = Buffer.compare(a, b) <= 0 ? [a, b] : [b, a];
          const got = overlay.range(gte, lt, limit).map((r) => `${r.key.toString('hex')}=${r.value.toString('hex')}`);
          const want = model.range(gte, lt, limit).map((r) => `${r.key.toString('hex')}=${r.value.toString('hex')}`);
          // Like any reader, the overlay may answer short (when its base does), but only with the
          // right rows in order, and empty only when nothing is left.
          expect(got).toEqual(want.slice(0, got.length));
          expect(got.length > 0).toBe(want.length > 0);
          // Point lookups see the overlay first, then the base.
          for (const k of [a, b, ...overlayOps.map((o) => o.key), ...baseOps.map((o) => o.key)]) {
            expect(overlay.get(k)?.toString('hex'), k.toString('hex')).toBe(model.get(k)?.toString('hex'));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
