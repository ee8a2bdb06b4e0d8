import { describe, expect, it } from 'vitest';
import { seededRng } from './prng.ts';
import {
  keyChooser,
  keyOf,
  OP_TYPES,
  type OpType,
  opChooser,
  parseWorkloads,
  tagEnd,
  tagOf,
  valueSource,
  WORKLOAD_NAMES,
  WORKLOADS,
} from './ycsb-workloads.ts';

describe('YCSB workload operation mix', () => {
  const expected: Record<string, Partial<Record<OpType, number>>> = {
    A: { read: 0.5, update: 0.5 },
    B: { read: 0.95, update: 0.05 },
    C: { read: 1 },
    D: { read: 0.95, insert: 0.05 },
    E: { scan: 0.95, insert: 0.05 },
    F: { read: 0.5, rmw: 0.5 },
  };
  for (const name of WORKLOAD_NAMES) {
    it(`workload ${name} draws operations in its YCSB proportions`, () => {
      const next = opChooser(WORKLOADS[name], seededRng(100));
      const n = 100_000;
      const c: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const t = next();
        c[t] = (c[t] ?? 0) + 1;
      }
      for (const t of OP_TYPES) expect(Math.abs((c[t] ?? 0) / n - (expected[name]?.[t] ?? 0))).toBeLessThan(0.006);
    });
  }

  it('parses workload lists', () => {
    expect(parseWorkloads('a,B, c')).toEqual(['A', 'B', 'C']);
    expect(() => parseWorkloads('A,G')).toThrow(/unknown workload/);
  });
});

describe('key layout', () => {
  const layout = { tags: 16 };
  it('puts a record in its hash tag, ordered by record number inside the tag', () => {
    expect(keyOf(17, layout)).toBe('{t1}:user000000000017');
    expect(tagOf(17, layout)).toBe('t1');
    const inTag = [1, 17, 33, 49].map((k) => keyOf(k, layout));
    expect([...inTag].sort()).toEqual(inTag);
    for (const k of inTag) {
      expect(k > `{t1}:`).toBe(true);
      expect(k < tagEnd('t1')).toBe(true);
    }
    // Tag t10 is not inside the range of tag t1.
    const other = keyOf(10, layout);
    expect(other >= '{t1}:' && other < tagEnd('t1')).toBe(false);
  });

  it('key choice: zipfian and uniform stay inside the loaded records, D reads the latest inserts', () => {
    const rng = seededRng(1);
    for (const d of ['zipfian', 'uniform'] as const) {
      const g = keyChooser(WORKLOADS.A, d, 1000, () => 5000, rng);
      for (let i = 0; i < 10_000; i++) expect(g.next()).toBeLessThan(1000);
    }
    const latest = keyChooser(WORKLOADS.D, 'uniform', 1000, () => 1500, rng);
    const xs = Array.from({ length: 10_000 }, () => latest.next());
    expect(Math.max(...xs)).toBe(1500);
    expect(xs.filter((x) => x > 1400).length).toBeGreaterThan(5000);
  });

  it('values are the asked size and differ from each other', () => {
    const v = valueSource(100, seededRng(2), 1 << 16);
    const a = v();
    const b = v();
    expect(a.length).toBe(100);
    expect(a.equals(b)).toBe(false);
  });
});
