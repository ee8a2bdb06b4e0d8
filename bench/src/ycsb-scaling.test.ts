/** The scaling run's pure parts: node counts, replication factors, ratios, RSS bound, tables. */
import { describe, expect, it } from 'vitest';
import type { WorkloadResult } from './ycsb.ts';
import { renderScaling } from './ycsb-report.ts';
import { parseScaling, rssBound, type ScalingRun, scalingReplicationFactor, scalingThroughput } from './ycsb-scaling.ts';

const MiB = 2 ** 20;
const result = (workload: 'A' | 'C', opsPerSec: number, rss: number[]): WorkloadResult =>
  ({
    workload,
    opsPerSec,
    errors: 0,
    errorSamples: [],
    serverRssByProcess: rss.map((m, i) => ({ pid: 100 + i, maxBytes: m * MiB, endBytes: (m - 1) * MiB })),
  }) as unknown as WorkloadResult;
const run = (nodes: number, results: WorkloadResult[]): ScalingRun =>
  ({
    nodes,
    replicationFactor: scalingReplicationFactor(nodes),
    target: { durability: 'd', load: { recordsPerSec: 1000, errors: 0 }, rssAfterLoadBytes: null },
    results,
    nodeRssBoundBytes: rssBound(results),
  }) as unknown as ScalingRun;

describe('scaling run', () => {
  it('parses node counts and refuses bad ones', () => {
    expect(parseScaling('1, 3,5')).toEqual([1, 3, 5]);
    expect(() => parseScaling('1,1')).toThrow(/appears twice/);
    expect(() => parseScaling('0')).toThrow(/not a node count/);
    expect(() => parseScaling('')).toThrow(/needs node counts/);
  });

  it('uses RF 1 alone and RF 3 from three nodes on', () => {
    expect([1, 2, 3, 4, 5, 7].map(scalingReplicationFactor)).toEqual([1, 1, 3, 3, 3, 3]);
  });

  it('reports throughput with ratios to the first and the previous count, and the RSS bound', () => {
    const runs = [
      run(1, [result('A', 1000, [200]), result('C', 2000, [210])]),
      run(3, [result('A', 1500, [300, 320, 310])]),
      run(5, [result('A', 2400, [280, 290, 300, 330, 295]), result('C', 5000, [300, 300, 300, 300, 300])]),
    ];
    const t = scalingThroughput(runs);
    expect(t.filter((x) => x.workload === 'A').map((x) => [x.nodes, x.vsFirst, x.vsPrevious])).toEqual([
      [1, 1, null],
      [3, 1.5, 1.5],
      [5, 2.4, 1.6],
    ]);
    // C is missing at 3 nodes: no ratio to a previous count that did not run it.
    expect(t.filter((x) => x.workload === 'C').map((x) => [x.nodes, x.vsFirst, x.vsPrevious])).toEqual([
      [1, 1, null],
      [5, 2.5, null],
    ]);
    expect(runs[2]?.nodeRssBoundBytes).toBe(330 * MiB);
    const md = renderScaling({ nodeCounts: [1, 3, 5], runs, throughput: t, skipped: [], nodeRssBoundBytes: rssBound(runs.flatMap((r) => r.results)) });
    expect(md).toContain('| workload | 1 node (RF 1) | 3 nodes (RF 3) | 5 nodes (RF 3) | 3 / 1 | 5 / 1 | 5 / 3 |');
    expect(md).toContain('| 2,400 | 1.50x | 2.40x | 1.60x |');
    expect(md).toContain(
      '| A | 5 nodes (RF 3) | 280 MiB / 279 MiB | 290 MiB / 289 MiB | 300 MiB / 299 MiB | 330 MiB / 329 MiB | 295 MiB / 294 MiB | 330 MiB |',
    );
    expect(md).toContain('Every node process stayed within 330 MiB RSS');
    expect(md).toContain('| workload | target | node-1 | node-2 | node-3 | node-4 | node-5 | largest peak |');
  });
});
