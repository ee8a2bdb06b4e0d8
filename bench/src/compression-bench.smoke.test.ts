/**
 * The compression micro-benchmark's plumbing on a tiny run (real RocksDB, 2 MiB per setting):
 * it runs every setting on both kinds of values and prints the summary table with its ratios,
 * and it refuses bad arguments with a usage line.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, 'compression-bench.ts');

describe('compression-bench', () => {
  it('runs tiered, zstd and none on random and text values and prints the table against zstd', { timeout: 120_000 }, () => {
    const out = execFileSync(process.execPath, [SCRIPT, '--mib', '2', '--rounds', '1'], { encoding: 'utf8' });
    const rows = out.split('\n').filter((l) => /^\| (random|text) \| (tiered|zstd|none) \|/.test(l));
    expect(rows).toHaveLength(6);
    for (const row of rows) {
      const cells = row.split('|').map((c) => c.trim());
      // write s, background CPU s, vs zstd, ms per MiB, process CPU s, vs zstd, SST MiB, vs zstd
      expect(Number(cells[3])).toBeGreaterThan(0);
      expect(cells[5]).toMatch(/^(\d+\.\d\dx|n\/a)$/);
      expect(Number(cells[7])).toBeGreaterThan(0);
      expect(cells[10]).toMatch(/^\d+\.\d\dx$/);
    }
    // zstd against itself (no background CPU at all in so small a run: n/a).
    for (const row of rows.filter((r) => r.includes('| zstd |'))) expect(row).toMatch(/\| (1\.00x|n\/a) \|[^|]*\|[^|]*\| 1\.00x \|[^|]*\| 1\.00x \|$/);
    // Text compresses: tiered leaves L0 uncompressed, so it takes more disk than zstd (ADR 0015).
    const textTiered = rows
      .find((r) => r.startsWith('| text | tiered |'))
      ?.split('|')
      .map((c) => c.trim());
    expect(Number.parseFloat(textTiered?.[10] ?? '')).toBeGreaterThan(1.5);
  });

  it('refuses a bad argument with the usage line and exit code 2', () => {
    const r = spawnSync(process.execPath, [SCRIPT, '--mib', '0'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^usage: node bench\/src\/compression-bench\.ts/);
  });
});
