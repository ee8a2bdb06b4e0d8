import { describe, expect, it } from 'vitest';
import { PartitionLoad } from './partition-load.ts';

describe('partition load', () => {
  it('converges to the offered rate and decays when the load stops', () => {
    let now = 0;
    const load = new PartitionLoad(10_000, () => now);
    // 200 ops/s on partition 3 for 60 s (one hit every 5 ms), nothing on partition 4.
    for (let i = 0; i < 12_000; i++) {
      now += 5;
      load.hit(3);
    }
    expect(load.rate(3)).toBeGreaterThan(190);
    expect(load.rate(3)).toBeLessThan(210);
    expect(load.rate(4)).toBe(0);
    now += 30_000; // three time constants later: e^-3 of it is left
    expect(load.rate(3)).toBeGreaterThan(8);
    expect(load.rate(3)).toBeLessThan(12);
  });

  it('counts batches by their size', () => {
    let now = 0;
    const load = new PartitionLoad(1000, () => now);
    for (let i = 0; i < 100; i++) {
      now += 100;
      load.hit(1, 10);
    }
    expect(load.rate(1)).toBeGreaterThan(90);
    expect(load.rate(1)).toBeLessThan(110);
  });
});
