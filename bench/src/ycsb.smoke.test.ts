/** The smoke test with servers: the YCSB driver for ~2 s per workload against a real KeyVa node and a real 3-node RF 3 cluster (memory engine). */
import { describe, expect, it } from 'vitest';
import { decodeHistogram } from './histogram.ts';
import { chartsFromReport, embeddedHash, renderSvg } from './plot.ts';
import { runYcsb, YCSB_DEFAULTS } from './ycsb.ts';
import { renderMarkdown } from './ycsb-report.ts';

describe('ycsb against a real KeyVa node and a real 3-node cluster in the same run', () => {
  it('loads, runs A and E through two client processes on each, and reports histograms, series, CPU, RSS and the ratio', { timeout: 180_000 }, async () => {
    const report = await runYcsb(
      {
        ...YCSB_DEFAULTS,
        targets: ['keyva', 'keyva-3'],
        keyvaPartitions: 8,
        workloads: ['A', 'E'],
        keyvaEngine: 'memory',
        records: 500,
        valueSize: 100,
        clients: 2,
        concurrency: 8,
        durationMs: 1000,
        warmupMs: 200,
        tags: 8,
      },
      () => undefined,
    );
    const json = JSON.parse(JSON.stringify(report)) as typeof report;
    expect(json.benchmark).toBe('ycsb');
    expect(json.machine.nproc).toBeGreaterThan(0);
    expect(json.targets).toHaveLength(2);
    expect(json.targets[0]).toMatchObject({ name: 'keyva', role: 'system', clients: 2, serverProcesses: 1, nodes: 1, load: { records: 500, errors: 0 } });
    expect(json.targets[1]).toMatchObject({ name: 'keyva-3', role: 'system', clients: 2, serverProcesses: 3, nodes: 3, load: { records: 500, errors: 0 } });
    expect(json.targets[0]?.durability).toMatch(/memory engine/);
    // Each workload on every target in turn.
    expect(json.results.map((r) => `${r.workload} ${r.target}`)).toEqual(['A keyva', 'A keyva-3', 'E keyva', 'E keyva-3']);
    for (const r of json.results) {
      expect(r.ops).toBeGreaterThan(0);
      expect(r.errors).toBe(0);
      expect(r.opsPerSec).toBeGreaterThan(0);
      expect(r.series.length).toBe(1);
      expect(r.series.reduce((s, x) => s + x.ops, 0)).toBe(r.ops);
      expect(decodeHistogram(r.all.histogram).totalCount).toBe(r.ops);
      expect(r.all.p50Us).toBeGreaterThan(0);
      expect(r.all.p50Us).toBeLessThanOrEqual(r.all.p99Us);
      expect(r.clientCpu.cpuSec).toBeGreaterThan(0);
      expect(r.serverCpu?.cores).toBeGreaterThan(0);
      expect(r.serverRss?.maxBytes).toBeGreaterThan(10 * 2 ** 20);
    }
    for (const a of json.results.filter((r) => r.workload === 'A')) {
      expect(Object.keys(a.byOp).sort()).toEqual(['read', 'update']);
      expect(a.notFound).toBe(0);
    }
    for (const e of json.results.filter((r) => r.workload === 'E')) expect(e.byOp.scan?.count).toBeGreaterThan(0);
    expect(json.results.find((r) => r.target === 'keyva-3')?.serverRssByProcess).toHaveLength(3);
    const md = renderMarkdown(json);
    expect(md).toContain('| workload | KeyVa 1 node (stream) | KeyVa 3 nodes RF 3 (stream) |');
    expect(md).toMatch(/\| A \(update heavy\) \| \d\.\d\dx \|/);
    for (const c of chartsFromReport(json)) expect(embeddedHash(renderSvg(c))).toMatch(/^[0-9a-f]{64}$/);
  });
});
