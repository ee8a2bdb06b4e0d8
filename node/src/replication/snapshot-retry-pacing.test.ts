import { describe, expect, it } from 'vitest';
import { SNAPSHOT_RETRY_MAX_MS, SNAPSHOT_RETRY_MIN_MS, SnapshotRetryPacing } from './snapshot-retry-pacing.ts';

describe('SnapshotRetryPacing', () => {
  it('a key that never failed waits for nothing', () => {
    expect(new SnapshotRetryPacing().waitMs('1/n2', 1000)).toBe(0);
  });

  it('failures double the wait from the minimum up to the maximum; the wait runs down with time', () => {
    const p = new SnapshotRetryPacing();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) delays.push(p.failed('1/n2', 10_000 * i));
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 8000, 8000, 8000].map((d) => Math.min(d, SNAPSHOT_RETRY_MAX_MS)));
    expect(delays[0]).toBe(SNAPSHOT_RETRY_MIN_MS);
    const at = 70_000; // the last failure
    expect(p.waitMs('1/n2', at)).toBe(SNAPSHOT_RETRY_MAX_MS);
    expect(p.waitMs('1/n2', at + 3_000)).toBe(SNAPSHOT_RETRY_MAX_MS - 3_000);
    expect(p.waitMs('1/n2', at + SNAPSHOT_RETRY_MAX_MS + 1)).toBe(0);
  });

  it('keys are paced apart, and a success starts the key over', () => {
    const p = new SnapshotRetryPacing();
    p.failed('1/n2', 0);
    p.failed('1/n2', 0);
    expect(p.waitMs('2/n2', 0)).toBe(0);
    expect(p.waitMs('1/n3', 0)).toBe(0);
    p.succeeded('1/n2');
    expect(p.waitMs('1/n2', 0)).toBe(0);
    expect(p.failed('1/n2', 0)).toBe(SNAPSHOT_RETRY_MIN_MS);
  });
});
