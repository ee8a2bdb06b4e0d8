/** The replicated suite's pure parts: round order, merging rounds, ratios against the targets, and the markdown. */
import { describe, expect, it } from 'vitest';
import { encodeHistogram, newHistogram } from './histogram.ts';
import { compare, type Phase, REPLICATED_DEFAULTS, type ReplicatedReport, type RoundResult, type RoundTarget, roundOrder, summarize } from './replicated.ts';
import { parseReplicatedArgs } from './replicated-cli.ts';
import { renderReplicatedMarkdown } from './replicated-report.ts';
import { describeTarget, keyvaShape, type TargetName } from './ycsb-targets.ts';

/** A round result of `ops` operations in `seconds`, every latency `latencyUs` (plus one outlier). */
function result(target: TargetName, workload: Phase, round: number, ops: number, seconds: number, latencyUs: number, outlierUs = latencyUs): RoundResult {
  const h = newHistogram();
  for (let i = 0; i < ops - 1; i++) h.recordValue(latencyUs);
  h.recordValue(outlierUs);
  const all = {
    count: ops,
    meanUs: latencyUs,
    p50Us: latencyUs,
    p95Us: latencyUs,
    p99Us: latencyUs,
    p999Us: outlierUs,
    maxUs: outlierUs,
    errors: 0,
    histogram: encodeHistogram(h),
  };
  return {
    target,
    workload,
    round,
    leaderChanges: target === 'keyva' ? round - 1 : null,
    raftPerWrite: target === 'keyva' && workload === 'put' ? { messages: 5 + round, batches: 0.6, readies: 3.5, syncedWrites: 0.2, turns: 0.2 } : null,
    distribution: 'uniform',
    seconds,
    ops,
    errors: 0,
    opsPerSec: ops / seconds,
    notFound: 0,
    byOp: {},
    all,
    series: [],
    clients: 2,
    concurrency: 64,
    clientCpu: { cpuSec: 1, cores: 0.5, perProcessMaxCores: 0.3 },
    serverCpu: { cpuSec: 2, cores: 1 },
    serverRss: null,
    machineCpu: { cores: 2, otherCores: round === 1 ? 0.2 : 0.4 },
    errorSamples: [],
  };
}

function target(name: TargetName, round: number): RoundTarget {
  return {
    name,
    label: name === 'keyva' ? 'KeyVa 3 nodes RF 3 (stream)' : 'etcd 3-member cluster',
    role: name === 'keyva' ? 'system' : 'peer',
    durability: 'fsync',
    nodes: 3,
    notes: '',
    version: 'test',
    clients: 2,
    serverProcesses: 3,
    load: { records: 10, errors: 0, seconds: 1, recordsPerSec: 10 },
    rssAfterLoadBytes: null,
    round,
    leadersPerNode: name === 'keyva' ? { 'node-1': 2, 'node-2': 1, 'node-3': 1 } : null,
    span: { from: round * 100, to: round * 100 + 50 },
  };
}

describe('replicated suite reporting', () => {
  it('alternates the order of the systems from round to round', () => {
    expect(roundOrder(0)).toEqual(['keyva', 'etcd']);
    expect(roundOrder(1)).toEqual(['etcd', 'keyva']);
    expect(roundOrder(2)).toEqual(['keyva', 'etcd']);
  });

  it('merges rounds (ops over seconds, histograms together) and compares KeyVa with etcd against the targets', () => {
    const results = [
      // puts: KeyVa 2,000 + 1,000 ops in 2 s + 1 s; etcd 1,000 + 1,000 in 1 s + 1 s.
      result('keyva', 'put', 1, 2000, 2, 5000, 900_000),
      result('etcd', 'put', 1, 1000, 1, 8000),
      result('etcd', 'put', 2, 1000, 1, 8000),
      result('keyva', 'put', 2, 1000, 1, 5000),
      // gets: KeyVa 1.2x etcd, p99 worse.
      result('keyva', 'get', 1, 1200, 1, 20_000),
      result('etcd', 'get', 1, 1000, 1, 10_000),
    ];
    const targets = [target('keyva', 1), target('etcd', 1), target('etcd', 2), target('keyva', 2)];
    const summary = summarize(targets, results);
    const kput = summary.find((s) => s.target === 'keyva' && s.phase === 'put');
    expect(kput).toMatchObject({
      rounds: 2,
      ops: 3000,
      seconds: 3,
      opsPerSec: 1000,
      opsPerSecByRound: [1000, 1000],
      count: 3000,
      label: 'KeyVa 3 nodes RF 3 (stream)',
    });
    expect(kput?.otherCores).toBeCloseTo(0.3, 9);
    // 2 CPU seconds per round over 3,000 operations in two rounds.
    expect(kput?.serverCpuUsPerOp).toBeCloseTo((4 / 3000) * 1e6, 6);
    // The one outlier of 3,000 is above p99.9 of the merged histogram only.
    expect(kput?.p99Us).toBeLessThan(5100);
    expect(kput?.maxUs).toBeGreaterThan(800_000);

    const [put, get] = compare(summary, results);
    expect(put).toMatchObject({ phase: 'put', throughputRatioByRound: [1, 1], throughputMet: true, p99Met: true });
    expect(put?.throughputRatio).toBeCloseTo(1, 9);
    expect(put?.p99Ratio).toBeLessThan(0.7);
    expect(get).toMatchObject({ phase: 'get', throughputMet: false, p99Met: false, target: { throughputMin: 1.5, p99RatioMax: 1 } });
    expect(get?.throughputRatio).toBeCloseTo(1.2, 9);
    expect(get?.p99Ratio).toBeGreaterThan(1.9);

    const report: ReplicatedReport = {
      benchmark: 'replicated',
      schema: 1,
      date: '2026-11-26T00:00:00.000Z',
      machine: { nproc: 2, memoryGiB: 24, cpuModel: 'x', node: 'v24', kernel: 'k', loadAvgAtStart: [0, 0, 0] },
      options: REPLICATED_DEFAULTS,
      targets,
      results,
      summary,
      comparisons: [put, get].filter((c) => c !== undefined),
    };
    const md = renderReplicatedMarkdown(report);
    expect(md).toContain('| put (majority) | 1,000 | 1,000 | 1.00x | >= 1.00x met |');
    expect(md).toMatch(/\| linearizable get \| 1,200 \| 1,000 \| 1\.20x \| >= 1\.50x NOT met \|.*\| <= 1\.00x NOT met \|/);
    expect(md).toContain('round 1 {"node-1":2,"node-2":1,"node-3":1}');
    expect(md).toContain('| put (majority) | 2 | 1,000 (p99 5.00) | 1,000 (p99 8.00) | 1.00x | 1 |');
    expect(md).toContain('KeyVa Raft work per write, whole cluster');
    expect(md).toContain('| put (majority) | KeyVa 3 nodes RF 3 (stream) | 0.50 | 1.00 | 0.30 | 1,333 µs |');
    expect(md).toContain('round 2 {"messages":7,"batches":0.6,"readies":3.5,"syncedWrites":0.2,"turns":0.2}');
  });

  it('makes no comparison for a phase one of the systems did not run', () => {
    const results = [result('keyva', 'put', 1, 100, 1, 1000)];
    expect(compare(summarize([target('keyva', 1)], results), results)).toEqual([]);
  });
});

describe('replicated command line', () => {
  it('keeps the SDK default of request ids on, switches them off on request, and refuses another value', () => {
    expect(parseReplicatedArgs([]).options.keyvaExactlyOnce).toBe(true);
    expect(parseReplicatedArgs(['--keyva-exactly-once', 'off']).options.keyvaExactlyOnce).toBe(false);
    expect(() => parseReplicatedArgs(['--keyva-exactly-once', 'no'])).toThrow(/--keyva-exactly-once must be on or off, got 'no'/);
  });

  it('runs one node lone unless --keyva-lone off asks for a one-voter Raft cluster', () => {
    const lone = parseReplicatedArgs(['--keyva-nodes', '1']).options;
    expect(keyvaShape('keyva', lone)).toMatchObject({ nodes: 1, replicationFactor: 1, replicated: false });
    expect(describeTarget('keyva', lone).label).toBe('KeyVa 1 node (stream)');
    const raft = parseReplicatedArgs(['--keyva-nodes', '1', '--keyva-lone', 'off']).options;
    expect(keyvaShape('keyva', raft)).toMatchObject({ nodes: 1, replicationFactor: 1, replicated: true });
    expect(describeTarget('keyva', raft).label).toBe('KeyVa 1 node Raft RF 1 (stream)');
    expect(describeTarget('keyva', raft).notes).toContain('partitions (one Raft group each)');
    // More nodes are always a cluster.
    expect(keyvaShape('keyva', parseReplicatedArgs(['--keyva-lone', 'on']).options).replicated).toBe(true);
    expect(() => parseReplicatedArgs(['--keyva-lone', 'maybe'])).toThrow(/--keyva-lone must be on or off, got 'maybe'/);
  });
});
