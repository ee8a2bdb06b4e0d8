/**
 * The partition key hash (DESIGN §3): XXH64 with seed 0 of the key's hash tag if it has one,
 * else of the whole key. Pinned by proto/testdata/hash-vectors.json so every SDK routes alike.
 */
import xxhash from 'xxhash-wasm';

const { h64Raw } = await xxhash();

const OPEN = 0x7b; // '{'
const CLOSE = 0x7d; // '}'

/**
 * The hash tag of a key (Redis Cluster convention): the bytes between the first '{' and the
 * first '}' after it, when that inside is non-empty. Otherwise undefined (the whole key hashes).
 */
export function hashTag(key: Uint8Array): Uint8Array | undefined {
  const open = key.indexOf(OPEN);
  if (open < 0) return undefined;
  const close = key.indexOf(CLOSE, open + 1);
  if (close < 0 || close === open + 1) return undefined;
  return key.subarray(open + 1, close);
}

/** XXH64(seed 0) of raw bytes, as an unsigned 64-bit bigint. */
export function xxh64(bytes: Uint8Array): bigint {
  return h64Raw(bytes, 0n);
}

/** The 64-bit position of a key on the partition hash space. */
export function keyHash(key: Uint8Array): bigint {
  return xxh64(hashTag(key) ?? key);
}

/** The hash of a tag's keys, for scans inside one hash tag. */
export function tagHash(tag: Uint8Array): bigint {
  return xxh64(tag);
}
