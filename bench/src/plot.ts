/**
 * SVG plots of a YCSB report, generated from its JSON only (no other input, no dates), so the
 * same JSON always gives byte-identical SVGs. Each SVG carries the SHA-256 of the exact data it
 * draws (`data-sha256` on the root element and in <metadata>); plot.test.ts regenerates the
 * committed plots from the committed JSON and checks both.
 *
 *   npm run bench -- plot bench/results/ycsb-zipfian.json   (writes bench/results/ycsb-zipfian/*.svg)
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { YcsbReport } from './ycsb.ts';
import { ratioPairs, ratios, shortLabel } from './ycsb-report.ts';

export interface BarChart {
  readonly kind: 'bar';
  readonly file: string;
  readonly title: string;
  readonly yLabel: string;
  readonly log: boolean;
  readonly categories: readonly string[];
  readonly series: readonly { readonly name: string; readonly color: string; readonly values: readonly (number | null)[] }[];
}

export interface LineChart {
  readonly kind: 'line';
  readonly file: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly { readonly name: string; readonly color: string; readonly points: readonly (readonly [number, number])[] }[];
}

export type Chart = BarChart | LineChart;

const round = (x: number, digits = 3) => Number(x.toPrecision(digits + 3));

/** One colour per target, the same in every chart and every report. */
export const TARGET_COLORS: Readonly<Record<string, string>> = {
  keyva: '#1f77b4',
  'keyva-3': '#2ca02c',
  'keyva-unary': '#6baed6',
  etcd: '#ff7f0e',
  'redis-always': '#d62728',
  'redis-everysec': '#e377c2',
  echo: '#7f7f7f',
  'rocksdb-raw': '#8c564b',
};
const colorOf = (t: string) => TARGET_COLORS[t] ?? '#17becf';

/** The charts of a report: pure data, extracted from the JSON. */
export function chartsFromReport(r: YcsbReport): Chart[] {
  const workloads = [...new Set(r.results.map((x) => x.workload))];
  const targets = r.targets.map((t) => t.name);
  const label = (name: string) => r.targets.find((t) => t.name === name)?.label ?? name;
  const value = (t: string, w: string, f: (x: YcsbReport['results'][number]) => number | null) => {
    const res = r.results.find((x) => x.target === t && x.workload === w);
    return res ? f(res) : null;
  };
  const bars = (
    file: string,
    title: string,
    yLabel: string,
    log: boolean,
    f: (x: YcsbReport['results'][number]) => number | null,
    only?: (t: string) => boolean,
  ): BarChart => ({
    kind: 'bar',
    file,
    title,
    yLabel,
    log,
    categories: workloads,
    series: targets.filter((t) => only?.(t) ?? true).map((t) => ({ name: label(t), color: colorOf(t), values: workloads.map((w) => value(t, w, f)) })),
  });
  const dist = r.options.distribution;
  const charts: Chart[] = [
    bars(
      'throughput.svg',
      `YCSB throughput per workload (${dist}, ${r.options.clients} client processes, ${r.options.concurrency} in flight)`,
      'operations/s',
      false,
      (x) => round(x.opsPerSec),
    ),
    bars('latency-p99.svg', `YCSB p99 latency per workload, all operations (${dist})`, 'p99 latency, ms (log scale)', true, (x) =>
      x.all.count > 0 ? x.all.p99Us / 1000 : null,
    ),
  ];
  const rs = ratios(r);
  const pairs = ratioPairs(r.targets).filter((p) => rs.some((x) => x.keyva === p.keyva && x.against === p.against));
  const twoKeyvas = new Set(pairs.map((p) => p.keyva)).size > 1;
  if (rs.length > 0)
    charts.push({
      kind: 'bar',
      file: 'ratios.svg',
      title: twoKeyvas
        ? `KeyVa throughput ratios: 3 nodes vs etcd and 1 node; 1 node vs Redis, ceilings (${dist})`
        : `KeyVa's throughput as a multiple of each peer's and ceiling's (${dist}, same run)`,
      yLabel: 'KeyVa ops/s divided by target ops/s (log scale)',
      log: true,
      categories: workloads,
      series: pairs.map((p) => ({
        // Short legend names: the target names (the throughput chart has the labels).
        name: twoKeyvas ? `${p.keyva} / ${p.against}` : `vs ${label(p.against)}`,
        color: twoKeyvas && p.against.startsWith('keyva') ? colorOf(p.keyva) : colorOf(p.against),
        values: workloads.map((w) => {
          const x = rs.find((y) => y.workload === w && y.keyva === p.keyva && y.against === p.against);
          return x ? round(x.ratio) : null;
        }),
      })),
    });
  const clusters = r.targets.filter((t) => t.serverProcesses > 1).map((t) => (t.name === 'etcd' ? 'etcd' : shortLabel(t)));
  charts.push(
    bars(
      'server-rss.svg',
      clusters.length === 0 || (clusters.length === 1 && clusters[0] === 'etcd')
        ? 'Server resident memory (peak VmRSS during the workload; etcd: 3 members summed)'
        : `Server resident memory (peak VmRSS during the workload; ${clusters.join(', ')}: processes summed)`,
      'MiB',
      false,
      (x) => (x.serverRss ? round(x.serverRss.maxBytes / 2 ** 20) : null),
      (t) => (r.targets.find((x) => x.name === t)?.serverProcesses ?? 0) > 0,
    ),
  );
  for (const w of workloads)
    charts.push({
      kind: 'line',
      file: `timeline-${w}.svg`,
      title: `Workload ${w}: throughput over time (${dist})`,
      xLabel: 'seconds into the measured window',
      yLabel: 'operations/s',
      series: targets
        .map((t) => ({ t, res: r.results.find((x) => x.target === t && x.workload === w) }))
        .filter((x) => x.res !== undefined)
        .map(({ t, res }) => ({ name: label(t), color: colorOf(t), points: (res?.series ?? []).map((s) => [s.t + 1, s.ops] as const) })),
    });
  return charts;
}

export function chartHash(c: Chart): string {
  return createHash('sha256').update(JSON.stringify(c)).digest('hex');
}

const W = 900;
const H = 400;
const M = { left: 78, right: 250, top: 44, bottom: 56 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const n2 = (x: number) => (Math.round(x * 100) / 100).toString();

function niceStep(max: number, ticks = 5): number {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

function tickLabel(v: number): string {
  if (v >= 1e6) return `${n2(v / 1e6)}M`;
  if (v >= 1e3) return `${n2(v / 1e3)}k`;
  if (v >= 1 || v === 0) return n2(v);
  return String(Number(v.toPrecision(2)));
}

interface Axis {
  y(v: number): number;
  ticks: number[];
}

function linearAxis(max: number): Axis {
  const step = niceStep(max > 0 ? max : 1);
  const top = Math.max(step, Math.ceil((max > 0 ? max : 1) / step) * step);
  const ticks: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { y: (v) => M.top + PH - (v / top) * PH, ticks };
}

function logAxis(min: number, max: number): Axis {
  const lo = Math.floor(Math.log10(min > 0 ? min : 0.001));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max > 0 ? max : 1)));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(Number((10 ** e).toPrecision(12)));
  return { y: (v) => M.top + PH - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * PH, ticks };
}

function frame(c: Chart, body: string[], axis: Axis, yLabel: string, legend: readonly { name: string; color: string }[]): string {
  const hash = chartHash(c);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12" data-sha256="${hash}">`,
    `<title>${esc(c.title)}</title>`,
    `<metadata>${esc(JSON.stringify({ generator: 'bench/src/plot.ts', dataSha256: hash }))}</metadata>`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(c.title)}</text>`,
  ];
  for (const t of axis.ticks) {
    const y = n2(axis.y(t));
    out.push(`<line x1="${M.left}" x2="${M.left + PW}" y1="${y}" y2="${y}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${M.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(tickLabel(t))}</text>`);
  }
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + PH}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left + PW}" y1="${M.top + PH}" y2="${M.top + PH}" stroke="#333"/>`);
  out.push(`<text transform="translate(18 ${M.top + PH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  out.push(...body);
  legend.forEach(({ name, color }, i) => {
    const y = M.top + 8 + i * 20;
    out.push(`<rect x="${M.left + PW + 16}" y="${y - 6}" width="12" height="12" fill="${esc(color)}"/>`);
    out.push(`<text x="${M.left + PW + 34}" y="${y}" dominant-baseline="middle">${esc(name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function renderSvg(c: Chart): string {
  if (c.kind === 'bar') {
    const vals = c.series.flatMap((s) => s.values).filter((v): v is number => v !== null && v > 0);
    const axis = c.log ? logAxis(Math.min(...vals, 1), Math.max(...vals, 1)) : linearAxis(Math.max(0, ...vals));
    const body: string[] = [];
    const groupW = PW / Math.max(1, c.categories.length);
    const barW = (groupW * 0.8) / Math.max(1, c.series.length);
    c.categories.forEach((cat, ci) => {
      const gx = M.left + ci * groupW + groupW * 0.1;
      body.push(`<text x="${n2(M.left + ci * groupW + groupW / 2)}" y="${M.top + PH + 18}" text-anchor="middle">${esc(cat)}</text>`);
      c.series.forEach((s, si) => {
        const v = s.values[ci];
        const x = n2(gx + si * barW);
        if (v === null || v === undefined) {
          const tx = n2(gx + si * barW + barW / 2);
          body.push(`<text transform="translate(${tx} ${M.top + PH - 4}) rotate(-90)" font-size="9" fill="#999" dominant-baseline="middle">n/a</text>`);
          return;
        }
        const y = axis.y(v);
        body.push(
          `<rect x="${x}" y="${n2(y)}" width="${n2(Math.max(1, barW - 1))}" height="${n2(M.top + PH - y)}" fill="${esc(s.color)}"><title>${esc(`${s.name}, ${cat}: ${tickLabel(v)}`)}</title></rect>`,
        );
      });
    });
    body.push(`<text x="${M.left + PW / 2}" y="${H - 14}" text-anchor="middle">workload</text>`);
    return frame(c, body, axis, c.yLabel, c.series);
  }
  const maxX = Math.max(1, ...c.series.flatMap((s) => s.points.map((p) => p[0])));
  const maxY = Math.max(0, ...c.series.flatMap((s) => s.points.map((p) => p[1])));
  const axis = linearAxis(maxY);
  const x = (v: number) => M.left + (v / maxX) * PW;
  const body: string[] = [];
  const xStep = Math.max(1, niceStep(maxX, 8));
  for (let v = 0; v <= maxX + xStep / 2; v += xStep)
    body.push(`<text x="${n2(x(v))}" y="${M.top + PH + 18}" text-anchor="middle">${esc(tickLabel(Number(v.toPrecision(12))))}</text>`);
  c.series.forEach((s) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${n2(x(p[0]))} ${n2(axis.y(p[1]))}`).join(' ');
    body.push(`<path d="${d}" fill="none" stroke="${esc(s.color)}" stroke-width="2"/>`);
  });
  body.push(`<text x="${M.left + PW / 2}" y="${H - 14}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  return frame(c, body, axis, c.yLabel, c.series);
}

/** The hash an SVG says it was drawn from, or undefined. */
export function embeddedHash(svg: string): string | undefined {
  return /data-sha256="([0-9a-f]{64})"/.exec(svg)?.[1];
}

export function writePlots(r: YcsbReport, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return chartsFromReport(r).map((c) => {
    const f = join(dir, c.file);
    writeFileSync(f, renderSvg(c));
    return f;
  });
}
