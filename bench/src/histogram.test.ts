import { describe, expect, it } from 'vitest';
import { decodeHistogram, encodeHistogram, mergeHistograms, newHistogram, summarizeFull } from './histogram.ts';
import { seededRng } from './prng.ts';

describe('HDR histogram encode/decode/merge (client processes -> one report)', () => {
  it('round-trips through the compressed encoding', () => {
    const h = newHistogram();
    for (let i = 1; i <= 10_000; i++) h.recordValue(i);
    const d = decodeHistogram(encodeHistogram(h));
    expect(d.totalCount).toBe(10_000);
    expect(d.getValueAtPercentile(50)).toBe(h.getValueAtPercentile(50));
    expect(d.getValueAtPercentile(99.9)).toBe(h.getValueAtPercentile(99.9));
    expect(d.getValueAtPercentile(100)).toBe(h.getValueAtPercentile(100));
  });

  it('merging the parts equals recording everything in one histogram', () => {
    const rng = seededRng(3);
    const all = newHistogram();
    const parts = [newHistogram(), newHistogram(), newHistogram()];
    for (let i = 0; i < 30_000; i++) {
      // Long-tailed latencies, 50 us .. ~100 ms.
      const v = Math.max(1, Math.round(50 * Math.exp(rng.nextDouble() * 7.6)));
      all.recordValue(v);
      parts[i % 3]!.recordValue(v);
    }
    const merged = mergeHistograms(parts.map(encodeHistogram));
    const a = summarizeFull(all);
    const m = summarizeFull(merged);
    expect(m).toEqual(a);
    expect(m.count).toBe(30_000);
    expect(m.p50Us).toBeLessThanOrEqual(m.p95Us);
    expect(m.p95Us).toBeLessThanOrEqual(m.p99Us);
    expect(m.p99Us).toBeLessThanOrEqual(m.p999Us);
    expect(m.p999Us).toBeLessThanOrEqual(m.maxUs);
  });

  it('merging nothing gives an empty histogram', () => {
    expect(mergeHistograms([]).totalCount).toBe(0);
  });
});
