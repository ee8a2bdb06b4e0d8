import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chartHash, chartsFromReport, embeddedHash, renderSvg } from './plot.ts';
import { fixtureReport } from './testing/report-fixture.ts';
import type { YcsbReport } from './ycsb.ts';

describe('SVG plots from a report', () => {
  const report = fixtureReport();
  const charts = chartsFromReport(report);

  it('draws throughput, p99 latency, server RSS and one timeline per workload', () => {
    expect(charts.map((c) => c.file)).toEqual([
      'throughput.svg',
      'latency-p99.svg',
      'ratios.svg',
      'server-rss.svg',
      'timeline-A.svg',
      'timeline-C.svg',
      'timeline-E.svg',
    ]);
    const ratio = charts[2];
    if (ratio?.kind !== 'bar') throw new Error('bar chart expected');
    expect(ratio.series.find((s) => s.name.includes('etcd'))?.values[1]).toBeCloseTo(2, 5);
    const tp = charts[0];
    if (tp?.kind !== 'bar') throw new Error('bar chart expected');
    expect(tp.categories).toEqual(['A', 'C', 'E']);
    const keyva = tp.series.find((s) => s.name.startsWith('KeyVa'));
    const r = report.results.find((x) => x.target === 'keyva' && x.workload === 'C');
    expect(keyva?.values[1]).toBeCloseTo(r?.opsPerSec ?? 0, 0);
    // Redis has no E: a gap, not a zero.
    expect(tp.series.find((s) => s.name.startsWith('Redis'))?.values[2]).toBeNull();
  });

  it('embeds the SHA-256 of exactly the data it draws, and renders deterministically', () => {
    for (const c of charts) {
      const svg = renderSvg(c);
      expect(svg.startsWith('<svg ')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(embeddedHash(svg)).toBe(createHash('sha256').update(JSON.stringify(c)).digest('hex'));
      expect(embeddedHash(svg)).toBe(chartHash(c));
      expect(renderSvg(c)).toBe(svg);
    }
  });

  it('a different report gives different plots (the hash follows the data)', () => {
    const other = chartsFromReport(fixtureReport(2));
    expect(embeddedHash(renderSvg(other[0]!))).not.toBe(embeddedHash(renderSvg(charts[0]!)));
    // Charts that do not depend on the changed figure keep their hash (server RSS).
    expect(chartHash(other[3]!)).toBe(chartHash(charts[3]!));
  });

  it('the committed plots match the committed JSON they were generated from', () => {
    const dir = resolve(import.meta.dirname, '..', 'results');
    const reports = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
    for (const f of reports) {
      const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as YcsbReport;
      if (r.benchmark !== 'ycsb') continue;
      const plots = join(dir, f.replace(/\.json$/, ''));
      if (!existsSync(plots)) continue;
      const expected = chartsFromReport(r);
      expect(
        readdirSync(plots)
          .filter((x) => x.endsWith('.svg'))
          .sort(),
      ).toEqual(expected.map((c) => c.file).sort());
      for (const c of expected) {
        const svg = readFileSync(join(plots, c.file), 'utf8');
        expect(embeddedHash(svg), `${f} -> ${c.file}: regenerate with npm run bench -- plot bench/results/${f}`).toBe(chartHash(c));
        expect(svg).toBe(renderSvg(c));
      }
    }
  });
});
