import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HASH_SPACE_END, hashTag, keyHash, type PartitionId, PartitionMap, PartitionMapError, uniformPartitions, xxh64 } from './index.ts';

interface Vector {
  keyHex: string;
  tagHex: string | null;
  hash: string;
  partitions: Record<string, number>;
}
const file = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../../proto/testdata/hash-vectors.json'), 'utf8')) as { vectors: Vector[] };

describe('partition key hash', () => {
  it('is XXH64 with seed 0 (reference values)', () => {
    expect(xxh64(Buffer.alloc(0))).toBe(0xef46db3751d8e999n);
    expect(xxh64(Buffer.from('abc'))).toBe(0x44bc2cf5ad770999n);
  });

  it(`matches every shared test vector in proto/testdata (${file.vectors.length} keys)`, () => {
    const maps = new Map(Object.keys(file.vectors[0]?.partitions ?? {}).map((n) => [n, new PartitionMap(1n, uniformPartitions(Number(n)))]));
    for (const v of file.vectors) {
      const key = Buffer.from(v.keyHex, 'hex');
      const tag = hashTag(key);
      expect(tag ? Buffer.from(tag).toString('hex') : null, v.keyHex).toBe(v.tagHex);
      expect(keyHash(key).toString(), v.keyHex).toBe(v.hash);
      for (const [n, p] of Object.entries(v.partitions)) expect(maps.get(n)?.locate(keyHash(key)).id, `${v.keyHex} in ${n}`).toBe(p);
    }
  });

  it('hashes only the tag when a key has one', () => {
    expect(keyHash(Buffer.from('{user42}:a'))).toBe(keyHash(Buffer.from('{user42}:b')));
    expect(keyHash(Buffer.from('{user42}:a'))).toBe(xxh64(Buffer.from('user42')));
    expect(hashTag(Buffer.from('{}x'))).toBeUndefined();
    expect(Buffer.from(hashTag(Buffer.from('a{b}c{d}')) ?? []).toString()).toBe('b');
  });
});

describe('PartitionMap', () => {
  it('uniform partitions tile the hash space and route every hash to the range holding it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.bigInt({ min: 0n, max: HASH_SPACE_END - 1n }), (n, h) => {
        const m = new PartitionMap(1n, uniformPartitions(n));
        const p = m.locate(h);
        return p.start <= h && h < p.end;
      }),
    );
  });

  it('rejects maps with gaps, overlaps or a short end', () => {
    const parts = uniformPartitions(4);
    expect(() => new PartitionMap(1n, parts.slice(1))).toThrow(PartitionMapError);
    expect(() => new PartitionMap(1n, parts.slice(0, 3))).toThrow(/2\^64/);
    const overlap = [...parts];
    overlap[1] = { ...(parts[1] as (typeof parts)[number]), start: (parts[1]?.start ?? 0n) - 1n };
    expect(() => new PartitionMap(1n, overlap)).toThrow(/tile/);
    expect(() => uniformPartitions(0)).toThrow(PartitionMapError);
  });

  it('routes after a split to the half owning the hash', () => {
    const [a, b] = uniformPartitions(2);
    if (!a || !b) throw new Error('two partitions');
    const mid = a.start + (a.end - a.start) / 2n;
    const m = new PartitionMap(2n, [{ ...a, end: mid }, { ...a, id: 7 as PartitionId, start: mid }, b]);
    expect(m.locate(mid - 1n).id).toBe(a.id);
    expect(m.locate(mid).id).toBe(7);
    expect(m.byId(7)?.start).toBe(mid);
  });
});
