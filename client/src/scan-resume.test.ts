import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { comparePositions, keySuccessor, positionOf, ScanProgress } from './scan-resume.ts';

const bytes = fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => Buffer.from(a));

describe('keySuccessor', () => {
  test('property: the smallest key greater than k (b > k exactly when b >= succ(k))', () => {
    fc.assert(
      fc.property(bytes, bytes, (k, b) => {
        const s = keySuccessor(k);
        return Buffer.compare(b, k) > 0 === Buffer.compare(b, s) >= 0;
      }),
    );
  });
});

describe('ScanProgress', () => {
  test('property: replaying from any earlier point never repeats or loses an entry', () => {
    fc.assert(
      fc.property(fc.uniqueArray(bytes, { selector: (b) => b.toString('hex'), maxLength: 40 }), fc.array(fc.nat(), { maxLength: 5 }), (keys, restarts) => {
        const order = keys.map(positionOf).sort(comparePositions);
        const p = new ScanProgress({ limit: 0 });
        const delivered: Buffer[] = [];
        let i = 0;
        // Each failure restarts the stream from an earlier position (a cursor, or the beginning).
        for (const r of restarts) {
          const stopAt = Math.min(order.length, i + (r % 7));
          for (; i < stopAt; i++) if (p.accept((order[i] as { key: Buffer }).key)) delivered.push((order[i] as { key: Buffer }).key);
          i = Math.max(0, i - (r % 5));
        }
        for (; i < order.length; i++) if (p.accept((order[i] as { key: Buffer }).key)) delivered.push((order[i] as { key: Buffer }).key);
        expect(delivered).toEqual(order.map((o) => o.key));
        return p.delivered === order.length;
      }),
    );
  });

  test('asks only for what remains and continues from the newest cursor', () => {
    const p = new ScanProgress({ tag: Buffer.from('t'), limit: 10, cursor: 'c0' });
    expect(p.request()).toMatchObject({ cursor: 'c0', limit: 10 });
    p.accept(Buffer.from('{t}a'));
    p.observe({ items: [], nextCursor: 'c1', readTs: '77' });
    expect(p.request()).toMatchObject({ cursor: 'c1', limit: 9 });
    expect(p.done).toBe(false);
    p.afterFailure();
    // With a cursor, the request is unchanged (the node binds cursors to the scan's parameters).
    expect(p.request().start).toBeUndefined();
  });

  test('a tag scan without cursor resumes after the last key, at the first snapshot', () => {
    const p = new ScanProgress({ tag: Buffer.from('t'), start: Buffer.from('{t}0'), limit: 0 });
    p.observe({ items: [], nextCursor: '', readTs: '123' });
    p.accept(Buffer.from('{t}5'));
    p.afterFailure();
    const r = p.request();
    expect(Buffer.from(r.start as Uint8Array).toString()).toBe('{t}5\u0000');
    expect(r.read).toEqual({ consistency: 'SNAPSHOT', snapshotTs: '123' });
    expect(r.limit).toBe(0);
  });

  test('a whole-keyspace scan without cursor restarts from the beginning at the first snapshot', () => {
    const p = new ScanProgress({ limit: 5 });
    p.observe({ items: [], nextCursor: '', readTs: '9' });
    p.accept(Buffer.from('x'));
    p.afterFailure();
    expect(p.request()).toMatchObject({ cursor: '', limit: 4, read: { consistency: 'SNAPSHOT', snapshotTs: '9' } });
    expect(p.request().start).toBeUndefined();
  });
});
