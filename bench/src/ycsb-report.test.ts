import { describe, expect, it } from 'vitest';
import { chartsFromReport } from './plot.ts';
import { fixtureReport, workerResult } from './testing/report-fixture.ts';
import { mergeWorkerResults } from './ycsb.ts';
import { ratioPairs, ratios, renderMarkdown } from './ycsb-report.ts';

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
    expect(md).toContain('| C (read only) | 3,000 | 1,500 | 6,000 |');
    expect(md).toContain('| workload | KeyVa 1 node / etcd 3-member cluster | KeyVa 1 node / Redis (AOF fsync always) |');
    expect(md).toContain('| C (read only) | 2.00x | 0.50x |');
    expect(md).toContain('E on redis-always (no scan)');
    for (const t of r.targets) expect(md).toContain(t.durability);
  });
});

describe('KeyVa 1 node and KeyVa 3 nodes RF 3 in the same run', () => {
  const r = fixtureReport(1, ['keyva', 'keyva-3', 'etcd', 'redis-always', 'echo']);

  it('compares each KeyVa configuration with its like: 3 nodes with etcd and 1 node, 1 node with Redis and the ceilings', () => {
    expect(ratioPairs(r.targets).map((p) => `${p.keyva}/${p.against}`)).toEqual(['keyva-3/etcd', 'keyva-3/keyva', 'keyva/redis-always', 'keyva/echo']);
    const rs = ratios(r);
    expect(rs.find((x) => x.workload === 'C' && x.keyva === 'keyva-3' && x.against === 'etcd')?.ratio).toBeCloseTo(0.8, 5);
    expect(rs.find((x) => x.workload === 'C' && x.keyva === 'keyva-3' && x.against === 'keyva')?.ratio).toBeCloseTo(0.4, 5);
    expect(rs.find((x) => x.workload === 'C' && x.keyva === 'keyva' && x.against === 'echo')?.ratio).toBeCloseTo(0.25, 5);
    // No cross pairs.
    expect(rs.some((x) => x.keyva === 'keyva' && x.against === 'etcd')).toBe(false);
  });

  it('renders both KeyVa columns in the throughput table and the chosen ratios in their own table', () => {
    const md = renderMarkdown(r);
    expect(md).toContain(
      '| workload | KeyVa 1 node (stream) | KeyVa 3 nodes RF 3 (stream) | etcd 3-member cluster | Redis (AOF fsync always) | grpc-js echo (transport ceiling) |',
    );
    expect(md).toContain('| C (read only) | 3,000 | 1,200 | 1,500 | 6,000 | 12,000 |');
    expect(md).toContain(
      '| workload | KeyVa 3 nodes RF 3 / etcd 3-member cluster | KeyVa 3 nodes RF 3 / KeyVa 1 node (stream) | KeyVa 1 node / Redis (AOF fsync always) | KeyVa 1 node / grpc-js echo (transport ceiling) |',
    );
    expect(md).toContain('| C (read only) | 0.80x | 0.40x | 0.50x | 0.25x |');
    expect(md).toContain('| E (short ranges) | 0.80x | 0.40x |  | 0.25x |');
    expect(md).toContain('Raft log fsync (RocksDB WAL, group commit) on a majority of the 3 replicas');
  });

  it('plots both KeyVa configurations and the chosen ratios', () => {
    const charts = chartsFromReport(r);
    const tp = charts.find((c) => c.file === 'throughput.svg');
    if (tp?.kind !== 'bar') throw new Error('bar chart expected');
    expect(tp.series.map((x) => x.name)).toContain('KeyVa 3 nodes RF 3 (stream)');
    const ratio = charts.find((c) => c.file === 'ratios.svg');
    if (ratio?.kind !== 'bar') throw new Error('bar chart expected');
    expect(ratio.series.map((x) => x.name)).toEqual(['keyva-3 / etcd', 'keyva-3 / keyva', 'keyva / redis-always', 'keyva / echo']);
    expect(ratio.series[0]?.values[1]).toBeCloseTo(0.8, 5);
    const rss = charts.find((c) => c.file === 'server-rss.svg');
    expect(rss?.title).toContain('KeyVa 3 nodes RF 3, etcd: processes summed');
  });
});
