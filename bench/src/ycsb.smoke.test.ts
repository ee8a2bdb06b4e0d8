/** The one smoke test with a server: the YCSB driver for ~2 s against a real KeyVa node (memory engine). */
import { describe, expect, it } from 'vitest';
import { decodeHistogram } from './histogram.ts';
import { chartsFromReport, embeddedHash, renderSvg } from './plot.ts';
import { runYcsb, YCSB_DEFAULTS } from './ycsb.ts';
import { renderMarkdown } from './ycsb-report.ts';

describe('ycsb against a real KeyVa node', () => {
  it('loads, runs A and E through two client processes, and reports histograms, series, CPU and RSS', async () => {
    const report = await runYcsb(
      {
        ...YCSB_DEFAULTS,
        targets: ['keyva'],
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
    expect(json.targets).toHaveLength(1);
    expect(json.targets[0]).toMatchObject({ name: 'keyva', role: 'system', clients: 2, serverProcesses: 1, load: { records: 500, errors: 0 } });
    expect(json.targets[0]?.durability).toMatch(/memory engine/);
    expect(json.results.map((r) => r.workload)).toEqual(['A', 'E']);
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
    const [a, e] = json.results;
    expect(Object.keys(a?.byOp ?? {}).sort()).toEqual(['read', 'update']);
    expect(a?.notFound).toBe(0);
    expect(e?.byOp.scan?.count).toBeGreaterThan(0);
    expect(renderMarkdown(json)).toContain('KeyVa 1 node (stream)');
    for (const c of chartsFromReport(json)) expect(embeddedHash(renderSvg(c))).toMatch(/^[0-9a-f]{64}$/);
  });
});
