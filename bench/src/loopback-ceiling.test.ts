/** The loopback/disk ceiling with a real sink process and a real file (a few MiB). */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { measureCeiling } from './loopback-ceiling.ts';

describe('loopback/disk ceiling', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-ceiling-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('streams every byte to another process, into a synced file and without one, and leaves no file behind', { timeout: 60_000 }, async () => {
    const c = await measureCeiling(3 * 2 ** 20 + 12_345, dir, 2);
    for (const r of [c.loopbackDisk, c.loopback]) {
      expect(r.bytes).toBe(3 * 2 ** 20 + 12_345);
      expect(r.seconds).toBeGreaterThan(0);
      expect(r.bytesPerSec).toBeCloseTo(r.bytes / r.seconds, 6);
    }
    expect(readdirSync(dir)).toEqual([]);
    // Below 1 MiB the ceiling streams 1 MiB (a smaller run times mostly start-up).
    expect((await measureCeiling(10, dir, 1)).loopback.bytes).toBe(2 ** 20);
  });
});
