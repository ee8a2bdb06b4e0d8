import { describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { ClockGuard } from './clock-guard.ts';
import { HybridClock } from './hybrid-clock.ts';

describe('ClockGuard', () => {
  it('keeps timestamps increasing across a restart whose wall clock stepped back', async () => {
    const engine = new MemoryEngine();
    await engine.open();
    let wall = 1_000_000;
    const before = new HybridClock({ nowMs: () => wall });
    const g1 = new ClockGuard(engine, before, 10_000);
    await g1.start();
    let last = 0n;
    for (let i = 0; i < 100; i++) {
      await g1.ensure();
      last = before.now();
      wall += 50; // 5 s of wall time pass while the node runs
    }
    // "Restart" on the same data with a wall clock an hour behind.
    wall = 1_000_000 - 3_600_000;
    const after = new HybridClock({ nowMs: () => wall });
    await new ClockGuard(engine, after, 10_000).start();
    expect(after.now()).toBeGreaterThan(last);
    await engine.close();
  });

  it('extends the persisted mark before timestamps reach it', async () => {
    const engine = new MemoryEngine();
    await engine.open();
    let wall = 5_000;
    const clock = new HybridClock({ nowMs: () => wall });
    const g = new ClockGuard(engine, clock, 1000);
    await g.start();
    for (let i = 0; i < 50; i++) {
      wall += i % 10 === 9 ? 2500 : 300; // now and then a stall longer than the whole window
      await g.ensure();
      const ts = clock.now();
      expect(g.covers(ts)).toBe(true);
    }
    await engine.close();
  });
});
