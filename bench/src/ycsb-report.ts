/** Markdown tables of a YCSB report: throughput with ratios to peers and ceilings, latency, CPU, memory. */
import type { WorkloadResult, YcsbReport } from './ycsb.ts';
import type { ScalingReport } from './ycsb-scaling.ts';
import { OP_TYPES, WORKLOADS } from './ycsb-workloads.ts';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (us: number) => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;

/** KeyVa's figure (the streamed client if it ran, else the unary one) over another target's. */
export function ratios(r: YcsbReport): { workload: string; against: string; ratio: number }[] {
  const keyva = r.targets.find((t) => t.name === 'keyva') ?? r.targets.find((t) => t.name === 'keyva-unary');
  if (!keyva) return [];
  const out: { workload: string; against: string; ratio: number }[] = [];
  for (const w of new Set(r.results.map((x) => x.workload))) {
    const k = r.results.find((x) => x.target === keyva.name && x.workload === w);
    if (!k) continue;
    for (const t of r.targets) {
      if (t.name === keyva.name) continue;
      const o = r.results.find((x) => x.target === t.name && x.workload === w);
      if (o && o.opsPerSec > 0) out.push({ workload: w, against: t.name, ratio: k.opsPerSec / o.opsPerSec });
    }
  }
  return out;
}

export function renderMarkdown(r: YcsbReport): string {
  const o = r.options;
  const workloads = [...new Set([...r.results.map((x) => x.workload), ...r.skipped.map((x) => x.workload)])];
  const res = (t: string, w: string): WorkloadResult | undefined => r.results.find((x) => x.target === t && x.workload === w);
  const keyva = r.targets.find((t) => t.name === 'keyva') ?? r.targets.find((t) => t.name === 'keyva-unary');
  const others = r.targets.filter((t) => t !== keyva);
  const lines: string[] = [];

  lines.push(
    `YCSB, ${o.distribution} key choice, ${int(o.records)} records of ${o.valueSize} B, ${o.clients} client processes, ${o.concurrency} operations in flight, ` +
      `${o.durationMs / 1000} s per workload after ${o.warmupMs / 1000} s warm-up. Machine: ${r.machine.nproc} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ` +
      `load average at start ${r.machine.loadAvgAtStart.join(' / ')}; ${r.date}.`,
    '',
  );
  if (r.scaling) return [...lines, renderScaling(r.scaling)].join('\n');

  lines.push("**Throughput (operations/s) and KeyVa's ratio to each peer and ceiling**", '');
  const head = ['workload', ...r.targets.map((t) => t.label), ...(keyva ? others.map((t) => `KeyVa / ${t.label}`) : [])];
  lines.push(
    `| ${head.join(' | ')} |`,
    `| --- | ${head
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
  );
  for (const w of workloads) {
    const cells = [`${w} (${WORKLOADS[w].title.split(':')[0]})`];
    for (const t of r.targets) {
      const x = res(t.name, w);
      cells.push(x ? int(x.opsPerSec) : 'n/a');
    }
    if (keyva) {
      const k = res(keyva.name, w);
      for (const t of others) {
        const x = res(t.name, w);
        cells.push(k && x && x.opsPerSec > 0 ? `${(k.opsPerSec / x.opsPerSec).toFixed(2)}x` : '');
      }
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');

  lines.push('**Latency per operation type (ms)**', '');
  lines.push(
    '| workload | target | operation | count | p50 | p95 | p99 | p99.9 | max | errors |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const w of workloads)
    for (const t of r.targets) {
      const x = res(t.name, w);
      if (!x) continue;
      for (const op of OP_TYPES) {
        const s = x.byOp[op];
        if (!s) continue;
        lines.push(
          `| ${w} | ${t.label} | ${op} | ${int(s.count)} | ${ms(s.p50Us)} | ${ms(s.p95Us)} | ${ms(s.p99Us)} | ${ms(s.p999Us)} | ${ms(s.maxUs)} | ${s.errors} |`,
        );
      }
    }
  lines.push('');

  lines.push(`**CPU (cores busy; the machine has ${r.machine.nproc}) and server memory**`, '');
  lines.push(
    '| workload | target | client CPU (all processes) | busiest client process | server CPU | other load on the machine | server RSS peak | server RSS end | not found |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const w of workloads)
    for (const t of r.targets) {
      const x = res(t.name, w);
      if (!x) continue;
      lines.push(
        `| ${w} | ${t.label} | ${x.clientCpu.cores.toFixed(2)} | ${x.clientCpu.perProcessMaxCores.toFixed(2)}${x.clientCpu.perProcessMaxCores > 0.9 ? ' (client-bound?)' : ''} | ${x.serverCpu ? x.serverCpu.cores.toFixed(2) : 'in client'} | ${x.machineCpu ? x.machineCpu.otherCores.toFixed(2) : ''} | ${x.serverRss ? mib(x.serverRss.maxBytes) : ''} | ${x.serverRss ? mib(x.serverRss.endBytes) : ''} | ${x.notFound} |`,
      );
    }
  lines.push('');

  const perProcess = r.results.filter((x) => (x.serverRssByProcess?.length ?? 0) > 0);
  if (perProcess.length > 0) {
    lines.push('**Server RSS per process (peak / end of each workload window; node-1 first)**', '');
    lines.push(
      ...rssPerProcessTable(perProcess.map((x) => ({ workload: x.workload, label: r.targets.find((t) => t.name === x.target)?.label ?? x.target, result: x }))),
    );
    lines.push('');
  }

  lines.push('**Targets and the durability in force for every figure**', '');
  lines.push(
    '| target | version | durability | nodes | client processes | load (records/s) | RSS after load | notes |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | --- |',
  );
  for (const t of r.targets)
    lines.push(
      `| ${t.label} | ${t.version} | ${t.durability} | ${t.nodes} | ${t.clients} | ${int(t.load.recordsPerSec)} | ${t.rssAfterLoadBytes === null ? '' : mib(t.rssAfterLoadBytes)} | ${t.notes} |`,
    );
  if (r.skipped.length > 0) {
    lines.push('', `Skipped: ${r.skipped.map((s) => `${s.workload} on ${s.target} (${s.reason})`).join('; ')}.`);
  }
  const errs = r.results.filter((x) => x.errors > 0);
  if (errs.length > 0) lines.push('', `Errors: ${errs.map((x) => `${x.workload} ${x.target}: ${x.errors} (${x.errorSamples[0] ?? ''})`).join('; ')}.`);
  return lines.join('\n');
}

/** Rows of per-process RSS: one per workload run, one cell per server process, then the largest peak. */
function rssPerProcessTable(
  rows: readonly { workload: string; label: string; result: WorkloadResult }[],
  column = (i: number) => `process ${i + 1}`,
): string[] {
  const width = Math.max(...rows.map((x) => x.result.serverRssByProcess?.length ?? 0));
  const cols = Array.from({ length: width }, (_, i) => column(i));
  const out = [`| workload | target | ${cols.join(' | ')} | largest peak |`, `| --- | --- | ${[...cols, ''].map(() => '---:').join(' | ')} |`];
  for (const { workload, label, result } of rows) {
    const ps = result.serverRssByProcess ?? [];
    const cells = Array.from({ length: width }, (_, i) => {
      const p = ps[i];
      return p === undefined ? '' : `${mib(p.maxBytes)} / ${Number.isFinite(p.endBytes) ? mib(p.endBytes) : 'exited'}`;
    });
    const peak = Math.max(0, ...ps.map((p) => p.maxBytes).filter(Number.isFinite));
    out.push(`| ${workload} | ${label} | ${cells.join(' | ')} | ${mib(peak)} |`);
  }
  return out;
}

/** The scaling run's tables: throughput per node count with ratios, and each node's RSS per workload. */
export function renderScaling(s: ScalingReport): string {
  const lines: string[] = [];
  const runs = s.runs;
  const head = (n: { nodes: number; replicationFactor: number }) => `${n.nodes} node${n.nodes === 1 ? '' : 's'} (RF ${n.replicationFactor})`;
  lines.push('**Scaling: KeyVa throughput (operations/s) by node count, one cluster at a time, same load**', '');
  const ratioCols: string[] = [];
  for (let i = 1; i < runs.length; i++) {
    ratioCols.push(`${runs[i]?.nodes} / ${runs[0]?.nodes}`);
    if (i > 1) ratioCols.push(`${runs[i]?.nodes} / ${runs[i - 1]?.nodes}`);
  }
  const cols = ['workload', ...runs.map(head), ...ratioCols];
  lines.push(
    `| ${cols.join(' | ')} |`,
    `| --- | ${cols
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
  );
  const x = (v: number | null | undefined) => (v === null || v === undefined ? '' : `${v.toFixed(2)}x`);
  for (const w of [...new Set(s.throughput.map((t) => t.workload))]) {
    const at = (nodes: number | undefined) => s.throughput.find((t) => t.workload === w && t.nodes === nodes);
    const cells = [`${w} (${WORKLOADS[w].title.split(':')[0]})`, ...runs.map((r) => (at(r.nodes) ? int(at(r.nodes)?.opsPerSec ?? 0) : 'n/a'))];
    for (let i = 1; i < runs.length; i++) {
      cells.push(x(at(runs[i]?.nodes)?.vsFirst));
      if (i > 1) cells.push(x(at(runs[i]?.nodes)?.vsPrevious));
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  lines.push('**Scaling: RSS of each node process per workload (peak / end of the window)**', '');
  lines.push(
    ...rssPerProcessTable(
      runs.flatMap((r) => r.results.map((result) => ({ workload: result.workload, label: head(r), result }))),
      (i) => `node-${i + 1}`,
    ),
  );
  lines.push('');
  const bounds = runs.map((r) => `${head(r)}: ${r.nodeRssBoundBytes === null ? 'n/a' : mib(r.nodeRssBoundBytes)}`);
  lines.push(
    `Every node process stayed within ${s.nodeRssBoundBytes === null ? 'n/a' : mib(s.nodeRssBoundBytes)} RSS (the largest peak of any node in any workload; ${bounds.join('; ')}).`,
  );
  lines.push(
    '',
    '| nodes | RF | durability | load (records/s) | load errors | RSS after load (all nodes) | workload errors |',
    '| ---: | ---: | --- | ---: | ---: | ---: | ---: |',
  );
  for (const r of runs)
    lines.push(
      `| ${r.nodes} | ${r.replicationFactor} | ${r.target.durability} | ${int(r.target.load.recordsPerSec)} | ${r.target.load.errors} | ${r.target.rssAfterLoadBytes === null ? '' : mib(r.target.rssAfterLoadBytes)} | ${r.results.reduce((n, y) => n + y.errors, 0)} |`,
    );
  if (s.skipped.length > 0) lines.push('', `Skipped: ${s.skipped.map((k) => `${k.workload} at ${k.nodes} nodes (${k.reason})`).join('; ')}.`);
  const errs = runs.flatMap((r) =>
    r.results.filter((y) => y.errors > 0).map((y) => `${y.workload} at ${r.nodes} nodes: ${y.errors} (${y.errorSamples[0] ?? ''})`),
  );
  if (errs.length > 0) lines.push('', `Errors: ${errs.join('; ')}.`);
  return lines.join('\n');
}
