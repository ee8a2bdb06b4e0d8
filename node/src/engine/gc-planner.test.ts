import { describe, expect, it } from 'vitest';
import { GcPlanner } from './gc-planner.ts';
import { encodeDataKey, encodeDataValue, versionsPrefix } from './key-codec.ts';

const NOW = 1_000;
const k = (key: string, ts: bigint): Buffer => encodeDataKey(1n, Buffer.from(key), ts);
const live = encodeDataValue(Buffer.from('v'), 0);
const tomb = encodeDataValue(undefined, 0);
const expired = encodeDataValue(Buffer.from('v'), NOW - 1);
const hex = (bs: Buffer[]): string[] => bs.map((b) => b.toString('hex'));

describe('GcPlanner', () => {
  it('removes a dead base only when its key ends, after every older version', () => {
    const p = new GcPlanner(40n, NOW);
    expect(hex(p.feed(k('a', 30n), tomb))).toEqual([]);
    expect(hex(p.feed(k('a', 20n), live))).toEqual(hex([k('a', 20n)]));
    expect(hex(p.feed(k('a', 10n), live))).toEqual(hex([k('a', 10n)]));
    // The next key ends 'a': its dead base goes last.
    expect(hex(p.feed(k('b', 50n), live))).toEqual(hex([k('a', 30n)]));
    expect(hex(p.takeLatestRechecks())).toEqual(hex([versionsPrefix(1n, Buffer.from('a'))]));
    expect(hex(p.finish())).toEqual([]);
    expect(p.takeLatestRechecks()).toEqual([]);
    expect(p.removed).toBe(3);
  });

  it('reports a key for a latest recheck only when its newest seen version is removed', () => {
    const p = new GcPlanner(40n, NOW);
    // 'a': dead run above the watermark over a dead base: everything goes, newest included.
    p.feed(k('a', 60n), expired);
    p.feed(k('a', 50n), tomb);
    p.feed(k('a', 30n), tomb);
    // 'b': a live newest version above the watermark stays; only the older dead versions go.
    p.feed(k('b', 60n), live);
    p.feed(k('b', 50n), tomb);
    p.feed(k('b', 30n), tomb);
    p.feed(k('b', 20n), live);
    // 'c': a live base stays; the older version goes.
    p.feed(k('c', 30n), live);
    p.feed(k('c', 20n), live);
    p.finish();
    expect(hex(p.takeLatestRechecks())).toEqual(hex([versionsPrefix(1n, Buffer.from('a'))]));
    expect(p.removed).toBe(3 + 3 + 1);
  });
});
