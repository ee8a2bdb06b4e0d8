/**
 * The replicated suite's plumbing on a tiny run: a real 3-node KeyVa cluster (RF 3) and a real
 * 3-member etcd cluster, one after the other, each loaded and driven through two client
 * processes for well under a second per phase.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeHistogram } from './histogram.ts';
import { REPLICATED_DEFAULTS, runReplicated } from './replicated.ts';
import { renderReplicatedMarkdown } from './replicated-report.ts';

const REPO = resolve(import.meta.dirname, '..', '..');

describe('replicated suite against real clusters', () => {
  let etcd = '';
  beforeAll(() => {
    // Builds etcd from Go modules on a fresh machine (cached in ~/.cache/keyva afterwards).
    etcd = execFileSync('bash', [resolve(REPO, 'scripts', 'go-tools.sh'), 'path', 'etcd'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  }, 1_200_000);

  it('runs KeyVa 3 nodes RF 3 and etcd 3 members one at a time, and reports puts, gets and ratios', { timeout: 180_000 }, async () => {
    const partitions = 4;
    const report = await runReplicated(
      {
        ...REPLICATED_DEFAULTS,
        rounds: 1,
        keyvaPartitions: partitions,
        keyvaEngine: 'memory',
        etcdBinary: etcd,
        records: 200,
        tags: 200,
        valueSize: 64,
        clients: 2,
        concurrency: 8,
        durationMs: 600,
        warmupMs: 200,
      },
      () => undefined,
    );
    const json = JSON.parse(JSON.stringify(report)) as typeof report;
    expect(json.benchmark).toBe('replicated');
    expect(json.targets.map((t) => t.name)).toEqual(['keyva', 'etcd']);
    const [k, e] = json.targets;
    expect(k).toMatchObject({ nodes: 3, serverProcesses: 3, clients: 2, load: { records: 200, errors: 0 } });
    expect(k?.label).toBe('KeyVa 3 nodes RF 3 (stream)');
    expect(Object.values(k?.leadersPerNode ?? {}).reduce((s, x) => s + x, 0)).toBe(partitions);
    expect(Object.keys(k?.leadersPerNode ?? {}).every((id) => /^node-[123]$/.test(id))).toBe(true);
    expect(e).toMatchObject({ nodes: 3, serverProcesses: 3, load: { records: 200, errors: 0 }, leadersPerNode: null });
    // Never both at once: etcd starts after KeyVa's nodes are stopped.
    expect(e?.span.from).toBeGreaterThanOrEqual(k?.span.to ?? Number.POSITIVE_INFINITY);

    expect(json.results.map((r) => `${r.target}:${r.workload}`)).toEqual(['keyva:put', 'keyva:get', 'etcd:put', 'etcd:get']);
    for (const r of json.results) {
      expect(r.round).toBe(1);
      expect(r.ops).toBeGreaterThan(0);
      expect(r.errors).toBe(0);
      expect(r.notFound).toBe(0);
      expect(Object.keys(r.byOp)).toEqual([r.workload === 'put' ? 'update' : 'read']);
      expect(r.serverCpu?.cores).toBeGreaterThan(0);
      if (r.target === 'keyva') expect(r.leaderChanges).toBeGreaterThanOrEqual(0);
      else expect(r.leaderChanges).toBeNull();
    }
    expect(json.summary).toHaveLength(4);
    for (const s of json.summary) {
      const r = json.results.find((x) => x.target === s.target && x.workload === s.phase);
      expect(s.ops).toBe(r?.ops);
      expect(decodeHistogram(s.histogram).totalCount).toBe(s.ops);
      expect(s.p50Us).toBeGreaterThan(0);
      expect(s.p50Us).toBeLessThanOrEqual(s.p99Us);
    }
    expect(json.comparisons.map((c) => c.phase)).toEqual(['put', 'get']);
    for (const c of json.comparisons) {
      const ks = json.summary.find((s) => s.target === 'keyva' && s.phase === c.phase);
      const es = json.summary.find((s) => s.target === 'etcd' && s.phase === c.phase);
      expect(c.throughputRatio).toBeCloseTo((ks?.opsPerSec ?? 0) / (es?.opsPerSec ?? 1), 9);
      expect(c.throughputRatioByRound).toHaveLength(1);
      expect(c.p99Ratio).toBeCloseTo((ks?.p99Us ?? 0) / (es?.p99Us ?? 1), 9);
    }
    const md = renderReplicatedMarkdown(json);
    expect(md).toContain('| put (majority) |');
    expect(md).toContain('| linearizable get |');
    expect(md).toContain('KeyVa 3 nodes RF 3 (stream)');
  });
});
