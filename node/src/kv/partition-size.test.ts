import { keyHash } from '@keyva/client/keyspace';
import { describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { estimatePartitionSize, PartitionSizer } from './partition-size.ts';

const END = 1n << 64n;

async function filled(n: number, valueBytes: number): Promise<MemoryEngine> {
  const e = new MemoryEngine();
  await e.open();
  const mutations = Array.from({ length: n }, (_, i) => {
    const key = Buffer.from(`key-${String(i).padStart(5, '0')}`);
    return { type: 'put' as const, hash: keyHash(key), key, value: Buffer.alloc(valueBytes, 1), expiresAtMs: 0 };
  });
  await e.write({ mutations, commitTs: 10n, nowMs: 0, sync: false });
  // A newer version of some keys: only the newest counts.
  await e.write({ mutations: mutations.slice(0, 10), commitTs: 20n, nowMs: 0, sync: false });
  return e;
}

describe('partition size estimate', () => {
  it('is exact within the row budget, with the hash at half the bytes as split hint', async () => {
    const e = await filled(400, 100);
    const s = await estimatePartitionSize(e, { start: 0n, end: END }, 1000);
    expect(s).toMatchObject({ exact: true, keys: 400, bytes: 400 * (9 + 100) });
    expect(s.splitHint).toBeDefined();
    const left = await estimatePartitionSize(e, { start: 0n, end: s.splitHint as bigint }, 1000);
    expect(Math.abs(left.bytes - s.bytes / 2)).toBeLessThanOrEqual(109);
  });

  it('extrapolates from the covered share of the hash range beyond the budget (no split hint)', async () => {
    const e = await filled(4000, 100);
    const s = await estimatePartitionSize(e, { start: 0n, end: END }, 500);
    expect(s.exact).toBe(false);
    expect(s.splitHint).toBeUndefined();
    // Uniform hashes: within 25% of the truth.
    expect(s.keys).toBeGreaterThan(3000);
    expect(s.keys).toBeLessThan(5000);
    expect(s.bytes / (4000 * 109)).toBeGreaterThan(0.75);
    expect(s.bytes / (4000 * 109)).toBeLessThan(1.25);
  });

  it('an empty range is zero; the sizer caches per group and range for its ttl', async () => {
    const e = await filled(50, 10);
    expect(await estimatePartitionSize(e, { start: 0n, end: 1n }, 100)).toMatchObject({ bytes: 0, keys: 0, exact: true, splitHint: undefined });
    let now = 0;
    const sizer = new PartitionSizer(e, 1000, () => now);
    const a = await sizer.sizeOf(1, { start: 0n, end: END });
    await e.write({
      mutations: [{ type: 'put', hash: keyHash(Buffer.from('new')), key: Buffer.from('new'), value: Buffer.alloc(10), expiresAtMs: 0 }],
      commitTs: 30n,
      nowMs: 0,
      sync: false,
    });
    expect((await sizer.sizeOf(1, { start: 0n, end: END })).keys).toBe(a.keys);
    now = 1000;
    expect((await sizer.sizeOf(1, { start: 0n, end: END })).keys).toBe(a.keys + 1);
  });
});
