/**
 * YCSB's key-choice generators, ported from the YCSB reference implementation
 * (site.ycsb.generator.*; the algorithm is Gray et al., "Quickly Generating Billion-Record
 * Synthetic Databases", SIGMOD 1994), driven by a seeded PRNG:
 *
 * - `ZipfianGenerator`: ranks in [min, max], rank 0 most popular, P(i) ~ 1/(i+1)^theta.
 *   The item count may grow between calls (zeta is extended incrementally), as YCSB does.
 * - `ScrambledZipfianGenerator`: YCSB's default "zipfian" request distribution. Draws a rank
 *   from a zipfian over 10^10 items (zeta precomputed, constant 0.99) and scatters it with
 *   FNV-1a 64 modulo the item count, so popular items are spread over the keyspace.
 * - `SkewedLatestGenerator`: "latest" (workload D): the newest records are the most popular.
 * - `UniformGenerator`.
 */
import type { Rng } from './prng.ts';

export const ZIPFIAN_CONSTANT = 0.99;
/** YCSB ScrambledZipfianGenerator.ITEM_COUNT and ZETAN (zeta(10^10, 0.99)). */
export const SCRAMBLED_ITEM_COUNT = 10_000_000_000;
export const SCRAMBLED_ZETAN = 26.46902820178302;

export interface NumberGenerator {
  next(): number;
}

/** zeta(st..n) added to `initialSum`: sum over i in [st, n) of 1/(i+1)^theta (YCSB zetastatic). */
export function zetaStatic(st: number, n: number, theta: number, initialSum: number): number {
  let sum = initialSum;
  for (let i = st; i < n; i++) sum += 1 / (i + 1) ** theta;
  return sum;
}

export class ZipfianGenerator implements NumberGenerator {
  readonly base: number;
  readonly items: number;
  readonly theta: number;
  readonly #rng: Rng;
  readonly #zeta2theta: number;
  readonly #alpha: number;
  #zetan: number;
  #eta: number;
  #countForZeta: number;

  /** Ranks in [min, max]; `zetan` may be given when known (it is expensive for large counts). */
  constructor(rng: Rng, min: number, max: number, theta = ZIPFIAN_CONSTANT, zetan?: number) {
    this.#rng = rng;
    this.base = min;
    this.items = max - min + 1;
    this.theta = theta;
    this.#zeta2theta = zetaStatic(0, 2, theta, 0);
    this.#alpha = 1 / (1 - theta);
    this.#zetan = zetan ?? zetaStatic(0, this.items, theta, 0);
    this.#countForZeta = this.items;
    this.#eta = this.#etaFor(this.items);
  }

  #etaFor(n: number): number {
    return (1 - (2 / n) ** (1 - this.theta)) / (1 - this.#zeta2theta / this.#zetan);
  }

  /** A rank for a population of `itemCount` items (YCSB nextLong(itemcount)). */
  nextFor(itemCount: number): number {
    if (itemCount !== this.#countForZeta) {
      // YCSB: extend zeta incrementally when the population grows, recompute when it shrinks.
      this.#zetan =
        itemCount > this.#countForZeta ? zetaStatic(this.#countForZeta, itemCount, this.theta, this.#zetan) : zetaStatic(0, itemCount, this.theta, 0);
      this.#countForZeta = itemCount;
      this.#eta = this.#etaFor(itemCount);
    }
    const u = this.#rng.nextDouble();
    const uz = u * this.#zetan;
    if (uz < 1) return this.base;
    if (uz < 1 + 0.5 ** this.theta) return this.base + 1;
    return this.base + Math.floor(itemCount * (this.#eta * u - this.#eta + 1) ** this.#alpha);
  }

  next(): number {
    return this.nextFor(this.items);
  }
}

const FNV_OFFSET_HI = 0xcbf29ce4;
const FNV_OFFSET_LO = 0x84222325;

/**
 * YCSB Utils.fnvhash64: FNV-1a over the 8 little-endian bytes of `val`, as a signed 64-bit
 * long, then Math.abs. Exact for 0 <= val < 2^53; returns the result modulo `mod`
 * (1 <= mod < 2^37) without BigInt.
 */
export function fnvhash64Mod(val: number, mod: number): number {
  let lo = FNV_OFFSET_LO;
  let hi = FNV_OFFSET_HI;
  let vlo = val % 0x100000000;
  let vhi = Math.floor(val / 0x100000000);
  for (let i = 0; i < 8; i++) {
    const octet = vlo & 0xff;
    vlo = ((vlo >>> 8) | ((vhi & 0xff) << 24)) >>> 0;
    vhi = vhi >>> 8;
    lo = (lo ^ octet) >>> 0;
    // hash * 0x100000001b3 (mod 2^64) = hash * 0x1b3 + (hash << 40)
    const l = lo * 0x1b3;
    const carry = Math.floor(l / 0x100000000);
    const newLo = l % 0x100000000;
    const newHi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) % 0x100000000;
    lo = newLo;
    hi = newHi;
  }
  if (hi >= 0x80000000) {
    // Math.abs of a negative long: two's complement (Long.MIN_VALUE stays as is, as in Java;
    // its magnitude 2^63 is what the modulo below sees in both cases).
    lo = (0x100000000 - lo) % 0x100000000;
    hi = (0xffffffff - hi + (lo === 0 ? 1 : 0)) % 0x100000000;
  }
  // (hi * 2^32 + lo) mod m, keeping every product below 2^53.
  let r = hi % mod;
  r = (r * 0x10000) % mod;
  r = (r * 0x10000) % mod;
  return (r + (lo % mod)) % mod;
}

/** Reference implementation in BigInt, for tests (Java long semantics). */
export function fnvhash64Reference(val: bigint): bigint {
  const M = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  let v = val;
  for (let i = 0; i < 8; i++) {
    const octet = v & 0xffn;
    v >>= 8n;
    h ^= octet;
    h = (h * 1099511628211n) & M;
  }
  const signed = BigInt.asIntN(64, h);
  return signed < 0n ? -signed : signed;
}

export class ScrambledZipfianGenerator implements NumberGenerator {
  readonly min: number;
  readonly itemCount: number;
  readonly #gen: ZipfianGenerator;

  /** Items in [min, max]; YCSB's constant 0.99 uses the precomputed zeta of 10^10 items. */
  constructor(rng: Rng, min: number, max: number, theta = ZIPFIAN_CONSTANT) {
    this.min = min;
    this.itemCount = max - min + 1;
    this.#gen =
      theta === ZIPFIAN_CONSTANT
        ? new ZipfianGenerator(rng, 0, SCRAMBLED_ITEM_COUNT, theta, SCRAMBLED_ZETAN)
        : new ZipfianGenerator(rng, 0, SCRAMBLED_ITEM_COUNT, theta);
  }

  next(): number {
    return this.min + fnvhash64Mod(this.#gen.next(), this.itemCount);
  }
}

/** YCSB SkewedLatestGenerator: `latest() - zipfian(latest())`, so the newest items are hottest. */
export class SkewedLatestGenerator implements NumberGenerator {
  readonly #latest: () => number;
  readonly #zipf: ZipfianGenerator;

  /** `latest()` is the highest item number that exists (YCSB: the insert counter's last value). */
  constructor(rng: Rng, latest: () => number) {
    this.#latest = latest;
    this.#zipf = new ZipfianGenerator(rng, 0, Math.max(1, latest()) - 1);
  }

  next(): number {
    const max = this.#latest();
    return max - this.#zipf.nextFor(Math.max(1, max));
  }
}

export class UniformGenerator implements NumberGenerator {
  readonly #rng: Rng;
  readonly #min: number;
  readonly #count: number;
  constructor(rng: Rng, min: number, max: number) {
    this.#rng = rng;
    this.#min = min;
    this.#count = max - min + 1;
  }
  next(): number {
    return this.#min + this.#rng.nextInt(this.#count);
  }
}
