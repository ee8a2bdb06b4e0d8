import { describe, expect, it } from 'vitest';
import { seededRng } from './prng.ts';
import {
  fnvhash64Mod,
  fnvhash64Reference,
  SCRAMBLED_ZETAN,
  ScrambledZipfianGenerator,
  SkewedLatestGenerator,
  UniformGenerator,
  ZipfianGenerator,
  zetaStatic,
} from './zipfian.ts';

function counts(n: number, draws: number, next: () => number): number[] {
  const c = new Array<number>(n).fill(0);
  for (let i = 0; i < draws; i++) {
    const v = next();
    if (!(v >= 0 && v < n && Number.isInteger(v))) throw new Error(`out of range: ${v}`);
    c[v] = (c[v] ?? 0) + 1;
  }
  return c;
}

describe('seeded PRNG', () => {
  it('replays from a seed and differs across seeds', () => {
    const a = seededRng(42);
    const b = seededRng(42);
    const c = seededRng(43);
    const xs = Array.from({ length: 100 }, () => a.nextDouble());
    expect(Array.from({ length: 100 }, () => b.nextDouble())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.nextDouble())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
  it('is uniform enough (mean, deciles)', () => {
    const r = seededRng(7);
    const dec = new Array<number>(10).fill(0);
    let sum = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const x = r.nextDouble();
      sum += x;
      dec[Math.floor(x * 10)]! += 1;
    }
    expect(sum / n).toBeCloseTo(0.5, 2);
    for (const d of dec) expect(Math.abs(d / n - 0.1)).toBeLessThan(0.005);
  });
});

describe('FNV-1a 64 (YCSB Utils.fnvhash64)', () => {
  it('matches the BigInt reference (Java long semantics) modulo several item counts', () => {
    const r = seededRng(1);
    const vals = [0, 1, 2, 255, 256, 65535, 2 ** 32 - 1, 2 ** 32, 10_000_000_000, 2 ** 53 - 1];
    for (let i = 0; i < 2000; i++) vals.push(r.nextInt(10_000_000_001));
    for (const mod of [1, 7, 1000, 100_000, 123_456_789, 2 ** 36 + 3]) {
      for (const v of vals) expect(fnvhash64Mod(v, mod)).toBe(Number(fnvhash64Reference(BigInt(v)) % BigInt(mod)));
    }
  });
});

describe('ZipfianGenerator (YCSB, theta 0.99)', () => {
  const n = 1000;
  const draws = 400_000;
  const zetan = zetaStatic(0, n, 0.99, 0);
  const expected = (i: number) => 1 / (i + 1) ** 0.99 / zetan;

  it('gives ranks 0 and 1 exactly their zipfian probability and the rest approximately', () => {
    const z = new ZipfianGenerator(seededRng(2024), 0, n - 1);
    const c = counts(n, draws, () => z.next());
    // Ranks 0 and 1 are exact in the Gray et al. algorithm.
    expect(c[0]! / draws).toBeCloseTo(expected(0), 2);
    expect(c[1]! / draws).toBeCloseTo(expected(1), 2);
    // Total variation distance to the true zipfian: the approximation is close, not exact.
    let tv = 0;
    for (let i = 0; i < n; i++) tv += Math.abs(c[i]! / draws - expected(i));
    expect(tv / 2).toBeLessThan(0.05);
    // Monotone on average: each decade of ranks is less popular per item than the previous one.
    const perItem = (a: number, b: number) => c.slice(a, b).reduce((s, x) => s + x, 0) / (b - a);
    expect(perItem(0, 10)).toBeGreaterThan(perItem(10, 100));
    expect(perItem(10, 100)).toBeGreaterThan(perItem(100, 1000));
    // Top 10% of items take most of the requests (zipfian 0.99: ~ 0.67 of them for n = 1000).
    expect(c.slice(0, 100).reduce((s, x) => s + x, 0) / draws).toBeGreaterThan(0.6);
  });

  it('extends zeta incrementally when the item count grows (same as computing it afresh)', () => {
    const a = new ZipfianGenerator(seededRng(5), 0, 999);
    const b = new ZipfianGenerator(seededRng(5), 0, 1999);
    a.nextFor(1500);
    b.nextFor(1500);
    const xs = Array.from({ length: 1000 }, () => a.nextFor(2000));
    const ys = Array.from({ length: 1000 }, () => b.nextFor(2000));
    expect(xs).toEqual(ys);
  });

  it('replays from its seed', () => {
    const a = new ZipfianGenerator(seededRng(9), 0, 99);
    const b = new ZipfianGenerator(seededRng(9), 0, 99);
    expect(Array.from({ length: 500 }, () => a.next())).toEqual(Array.from({ length: 500 }, () => b.next()));
  });
});

describe('ScrambledZipfianGenerator (YCSB request distribution "zipfian")', () => {
  it('keeps the zipfian skew but scatters the hot items over the keyspace', () => {
    const n = 10_000;
    const draws = 400_000;
    const g = new ScrambledZipfianGenerator(seededRng(11), 0, n - 1);
    const c = counts(n, draws, () => g.next());
    const sorted = [...c].sort((a, b) => b - a);
    // The hottest item is rank 0 of the 10^10-item zipfian (1/zetan ~ 3.8%) plus a share of the tail.
    expect(sorted[0]! / draws).toBeGreaterThan(1 / SCRAMBLED_ZETAN - 0.005);
    expect(sorted[0]! / draws).toBeLessThan(1 / SCRAMBLED_ZETAN + 0.02);
    // Skew: the top 1% of items take at least what the 100 hottest ranks of the zipfian carry
    // (zeta(100) / zeta(10^10) ~ 0.195), i.e. twenty times their uniform share.
    const top1 = sorted.slice(0, n / 100).reduce((s, x) => s + x, 0) / draws;
    expect(top1).toBeGreaterThan(zetaStatic(0, 100, 0.99, 0) / SCRAMBLED_ZETAN - 0.01);
    expect(top1).toBeLessThan(0.3);
    // Scattered: the hottest items are not the lowest item numbers.
    const hottest = c.indexOf(sorted[0]!);
    expect(hottest).toBe(fnvhash64Mod(0, n));
    const firstDecile = c.slice(0, n / 10).reduce((s, x) => s + x, 0) / draws;
    expect(firstDecile).toBeGreaterThan(0.03);
    expect(firstDecile).toBeLessThan(0.3);
    // Every item stays reachable in principle; most are drawn at least once here.
    expect(c.filter((x) => x > 0).length).toBeGreaterThan(n * 0.5);
  });

  it('maps into [min, max]', () => {
    const g = new ScrambledZipfianGenerator(seededRng(3), 500, 599);
    for (let i = 0; i < 10_000; i++) {
      const v = g.next();
      expect(v >= 500 && v <= 599).toBe(true);
    }
  });
});

describe('SkewedLatestGenerator (workload D)', () => {
  it('favours the newest items and follows a growing population', () => {
    let latest = 999;
    const g = new SkewedLatestGenerator(seededRng(4), () => latest);
    const c = counts(1000, 100_000, () => g.next());
    expect(c[999]! / 100_000).toBeGreaterThan(0.1);
    expect(c[999]!).toBeGreaterThan(c[998]!);
    expect(c.slice(900).reduce((s, x) => s + x, 0)).toBeGreaterThan(c.slice(0, 900).reduce((s, x) => s + x, 0));
    latest = 1999;
    const seen = Array.from({ length: 10_000 }, () => g.next());
    expect(seen.filter((v) => v === 1999).length).toBeGreaterThan(1000);
    expect(Math.max(...seen)).toBe(1999);
  });
});

describe('UniformGenerator', () => {
  it('covers [min, max] evenly', () => {
    const g = new UniformGenerator(seededRng(8), 0, 9);
    const c = counts(10, 100_000, () => g.next());
    for (const x of c) expect(Math.abs(x / 100_000 - 0.1)).toBeLessThan(0.01);
  });
});
