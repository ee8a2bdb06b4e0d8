/**
 * The apply-path micro-benchmark's plumbing on a short run (real RocksDB): both cases run, the
 * table has per-thread figures and the ratio against raw RocksDB in the same round, and bad
 * arguments get the usage line.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, 'apply-bench.ts');

describe('apply-bench', () => {
  it('measures the engine against raw RocksDB writes of the same rows, per thread', { timeout: 120_000 }, () => {
    const out = execFileSync(process.execPath, [SCRIPT, '--seconds', '0.5', '--rounds', '1'], { encoding: 'utf8' });
    const rows = out.split('\n').filter((l) => /^\| 1 \| (raw|engine) \|/.test(l));
    expect(rows).toHaveLength(2);
    const cells = (name: string) => (rows.find((r) => r.startsWith(`| 1 | ${name} |`)) ?? '').split('|').map((c) => c.trim());
    const raw = cells('raw');
    const engine = cells('engine');
    // applies/s, main, writer, GC, total, vs raw
    expect(Number(raw[3]?.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(raw[5]).toBe('0'); // raw writes on the calling thread: no writer thread
    expect(raw[8]).toBe('1.00x');
    expect(Number(engine[5])).toBeGreaterThan(0); // the engine writes on its writer thread
    expect(Number(engine[7])).toBeGreaterThan(0);
    expect(engine[8]).toMatch(/^\d+\.\d\dx$/);
  });

  it('refuses a bad argument with the usage line and exit code 2', () => {
    const r = spawnSync(process.execPath, [SCRIPT, '--rounds', '0'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^usage: node bench\/src\/apply-bench\.ts/);
  });
});
