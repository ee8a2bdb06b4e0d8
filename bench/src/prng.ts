/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) so a benchmark run, its key choices
 * and its operation mix replay exactly from one seed. Not cryptographic.
 */
export interface Rng {
  /** A uniform double in [0, 1) with 53 random bits. */
  nextDouble(): number;
  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number;
  /** A uniform integer in [0, n), n <= 2^53. */
  nextInt(n: number): number;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function seededRng(seed: number): Rng {
  const init = splitmix32(seed);
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) next();
  const nextDouble = () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  return {
    nextUint32: next,
    nextDouble,
    nextInt: (n) => Math.floor(nextDouble() * n),
  };
}
