/**
 * The scaling run's plumbing against real KeyVa processes, tiny: 1 node (RF 1) then 4 nodes
 * (RF 3, so each partition lives on a subset of the nodes), workload A for under a second each.
 */
import { describe, expect, it } from 'vitest';
import { YCSB_DEFAULTS } from './ycsb.ts';
import { renderMarkdown } from './ycsb-report.ts';
import { runYcsbScaling } from './ycsb-scaling.ts';

describe('ycsb --scaling against real KeyVa clusters', () => {
  it('runs each node count in turn and reports throughput ratios and every node RSS', { timeout: 180_000 }, async () => {
    const report = await runYcsbScaling(
      {
        ...YCSB_DEFAULTS,
        scaling: [1, 4],
        workloads: ['A'],
        keyvaEngine: 'memory',
        keyvaPartitions: 8,
        records: 300,
        valueSize: 100,
        clients: 1,
        concurrency: 8,
        durationMs: 800,
        warmupMs: 200,
        tags: 64,
      },
      () => undefined,
    );
    const json = JSON.parse(JSON.stringify(report)) as typeof report;
    const s = json.scaling;
    expect(s?.nodeCounts).toEqual([1, 4]);
    expect(s?.runs.map((r) => [r.nodes, r.replicationFactor, r.target.serverProcesses])).toEqual([
      [1, 1, 1],
      [4, 3, 4],
    ]);
    for (const run of s?.runs ?? []) {
      expect(run.target.load).toMatchObject({ records: 300, errors: 0 });
      const [a] = run.results;
      expect(a?.workload).toBe('A');
      expect(a?.errors).toBe(0);
      expect(a?.ops).toBeGreaterThan(0);
      expect(a?.serverRssByProcess).toHaveLength(run.nodes);
      for (const p of a?.serverRssByProcess ?? []) {
        expect(p.maxBytes).toBeGreaterThan(10 * 2 ** 20);
        expect(p.endBytes).toBeLessThanOrEqual(p.maxBytes);
      }
      expect(run.nodeRssBoundBytes).toBe(Math.max(...(a?.serverRssByProcess ?? []).map((p) => p.maxBytes)));
    }
    const [one, four] = s?.throughput ?? [];
    expect(one).toMatchObject({ workload: 'A', nodes: 1, vsFirst: 1, vsPrevious: null });
    expect(four?.nodes).toBe(4);
    expect(four?.vsFirst).toBeCloseTo((four?.opsPerSec ?? 0) / (one?.opsPerSec ?? 1), 6);
    const md = renderMarkdown(json);
    expect(md).toContain('| workload | 1 node (RF 1) | 4 nodes (RF 3) | 4 / 1 |');
    expect(md).toMatch(/Every node process stayed within \d+ MiB RSS/);
  });
});
