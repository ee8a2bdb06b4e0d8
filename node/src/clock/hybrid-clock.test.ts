import { describe, expect, it } from 'vitest';
import { HybridClock, msFromTs } from './hybrid-clock.ts';

describe('HybridClock', () => {
  it('is strictly increasing when the wall clock stalls or steps back', () => {
    let wall = 1_000_000;
    const c = new HybridClock({ nowMs: () => wall });
    const a = c.now();
    const b = c.now();
    wall -= 500;
    const d = c.now();
    expect(b).toBeGreaterThan(a);
    expect(d).toBeGreaterThan(b);
    expect(msFromTs(a)).toBe(1_000_000);
  });

  it('follows the wall clock when it moves forward', () => {
    let wall = 5;
    const c = new HybridClock({ nowMs: () => wall });
    c.now();
    wall = 10;
    expect(msFromTs(c.now())).toBe(10);
  });

  it('moves past observed timestamps', () => {
    const c = new HybridClock({ nowMs: () => 1 });
    c.observe(1n << 40n);
    expect(c.now()).toBe((1n << 40n) + 1n);
  });
});
