import { describe, expect, it } from 'vitest';
import { fixtureReport, workerResult } from './testing/report-fixture.ts';
import { mergeWorkerResults } from './ycsb.ts';
import { ratios, renderMarkdown } from './ycsb-report.ts';

describe('merging client processes', () => {
  it('adds operations, per-second series and CPU; merges histograms per operation type', () => {
    const parts = [workerResult(0, 3000, 1000, ['read', 'update']), workerResult(1, 6000, 3000, ['read', 'update'])];
    const m = mergeWorkerResults(
      { target: 'keyva', workload: 'A', distribution: 'zipfian', clients: 2, concurrency: 64, serverCpu: null, serverRss: null, machineCpu: null },
      parts,
    );
    expect(m.ops).toBe(9000);
    expect(m.opsPerSec).toBe(3000);
    expect(m.series.map((s) => s.ops)).toEqual([3000, 3000, 3000]);
    expect(m.series.reduce((s, x) => s + x.ops, 0)).toBe(m.ops);
    expect(m.all.count).toBe(9000);
    expect(m.byOp.read?.count).toBe(4500);
    expect(m.byOp.update?.count).toBe(4500);
    // Two thirds of the values are ~3 ms, one third ~1 ms.
    expect(m.all.p50Us).toBeGreaterThanOrEqual(3000);
    expect(m.all.p50Us).toBeLessThan(3100);
    expect(m.byOp.read?.p95Us).toBeGreaterThan(3000);
    expect(m.clientCpu.cpuSec).toBe(3);
    expect(m.clientCpu.cores).toBe(1);
    expect(m.clientCpu.perProcessMaxCores).toBe(0.5);
  });
});

describe('markdown report', () => {
  const r = fixtureReport();
  it("gives KeyVa's ratio to each peer for each workload it ran", () => {
    const rs = ratios(r);
    const vsEtcd = rs.find((x) => x.workload === 'C' && x.against === 'etcd');
    expect(vsEtcd?.ratio).toBeCloseTo(2, 5);
    expect(rs.find((x) => x.workload === 'E' && x.against === 'redis-always')).toBeUndefined();
  });

  it('shows every workload, the skipped ones, and the durability of every target', () => {
    const md = renderMarkdown(r);
    expect(md).toContain('| C (read only) | 3,000 | 1,500 | 6,000 | 2.00x | 0.50x |');
    expect(md).toContain('E on redis-always (no scan)');
    for (const t of r.targets) expect(md).toContain(t.durability);
  });
});
