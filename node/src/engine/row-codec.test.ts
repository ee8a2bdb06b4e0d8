/**
 * The snapshot chunk row encoding: `checkRows` (the receiver's and sender's allocation-free walk)
 * counts exactly the rows `decodeRows` decodes, refuses every chunk `decodeRows` refuses, and
 * finds rows outside a range; chunks from `encodeRows` own their ArrayBuffer (transferable).
 */
import { describe, expect, it } from 'vitest';
import { checkRows, decodeRows, encodeRows } from './row-codec.ts';
import type { ScanItem } from './types.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomRows(r: () => number, n: number): ScanItem[] {
  return Array.from({ length: n }, (_, i) => ({
    hash: BigInt(Math.floor(r() * 2 ** 32)) * 2n ** 32n + BigInt(i),
    key: Buffer.alloc(Math.floor(r() * 40), i),
    value: Buffer.alloc(Math.floor(r() * 300), i + 1),
    version: BigInt(1 + Math.floor(r() * 1e9)),
    expiresAtMs: r() < 0.3 ? Math.floor(r() * 1e12) : 0,
  }));
}

describe('row codec', () => {
  it('checkRows counts what decodeRows decodes and refuses what it refuses', () => {
    const r = rng(7);
    for (let t = 0; t < 200; t++) {
      const rows = randomRows(r, Math.floor(r() * 20));
      const chunk = encodeRows(rows);
      expect(chunk.byteOffset).toBe(0);
      expect(chunk.buffer.byteLength).toBe(chunk.length);
      expect(checkRows(chunk)).toEqual({ rows: rows.length, outside: false });
      expect(decodeRows(chunk).map((x) => x.hash)).toEqual(rows.map((x) => x.hash));
      // Damaged: cut short, a byte too many, or a random byte changed.
      const damaged = [
        chunk.subarray(0, Math.floor(r() * chunk.length)),
        Buffer.concat([chunk, Buffer.from([1])]),
        (() => {
          const c = Buffer.from(chunk);
          if (c.length > 0) c[Math.floor(r() * c.length)] = Math.floor(r() * 256);
          return c;
        })(),
      ];
      for (const d of damaged) {
        let want: unknown;
        try {
          want = decodeRows(d).length;
        } catch (e) {
          want = (e as Error).message;
        }
        let got: unknown;
        try {
          got = checkRows(d).rows;
        } catch (e) {
          got = (e as Error).message;
        }
        expect(got).toEqual(want);
      }
    }
  });

  it('checkRows finds a row outside the range', () => {
    const rows = [100n, 150n, 199n].map((hash) => ({ hash, key: Buffer.from('k'), value: Buffer.from('v'), version: 1n, expiresAtMs: 0 }));
    expect(checkRows(encodeRows(rows), { start: 100n, end: 200n })).toEqual({ rows: 3, outside: false });
    expect(checkRows(encodeRows(rows), { start: 101n, end: 200n })).toEqual({ rows: 3, outside: true });
    expect(checkRows(encodeRows(rows), { start: 100n, end: 199n })).toEqual({ rows: 3, outside: true });
  });
});
