/** Markdown tables of a YCSB report: throughput with ratios to peers and ceilings, latency, CPU, memory. */
import type { WorkloadResult, YcsbReport } from './ycsb.ts';
import type { ScalingReport } from './ycsb-scaling.ts';
import type { TargetName } from './ycsb-targets.ts';
import { OP_TYPES, WORKLOADS } from './ycsb-workloads.ts';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (us: number) => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;

/** One ratio column: `keyva`'s throughput over `against`'s. */
export interface RatioPair {
  readonly keyva: TargetName;
  readonly against: TargetName;
}

/**
 * Which ratios a report shows. With KeyVa 1 node (`keyva`, else `keyva-unary`) and KeyVa 3 nodes
 * RF 3 (`keyva-3`) both in the run, each is compared with its like: KeyVa 3 nodes with the 3-member
 * etcd cluster (both replicate every write to 3 fsynced logs) and with KeyVa 1 node (the cost of
 * replication), KeyVa 1 node with the single-process peers and ceilings (Redis, echo, raw RocksDB,
 * the other KeyVa client). Cross pairs (1 node vs etcd, 3 nodes vs Redis) would mix replication
 * with the system and are left out to keep the table readable; the throughput table has every
 * figure. With one KeyVa target only, it is compared with every other target (older reports).
 */
export function ratioPairs(targets: readonly { readonly name: TargetName }[]): RatioPair[] {
  const names = targets.map((t) => t.name);
  const one = names.includes('keyva') && keyvaShapeOf(targets, 'keyva') === 1 ? 'keyva' : names.includes('keyva-unary') ? 'keyva-unary' : undefined;
  const three = names.includes('keyva-3') ? 'keyva-3' : undefined;
  if (one !== undefined && three !== undefined) {
    const out: RatioPair[] = [];
    if (names.includes('etcd')) out.push({ keyva: three, against: 'etcd' });
    out.push({ keyva: three, against: one });
    for (const n of names) if (n !== one && n !== three && n !== 'etcd') out.push({ keyva: one, against: n });
    return out;
  }
  const keyva = names.includes('keyva') ? 'keyva' : names.includes('keyva-unary') ? 'keyva-unary' : three;
  if (keyva === undefined) return [];
  return names.filter((n) => n !== keyva).map((n) => ({ keyva, against: n }));
}

/** Nodes of a KeyVa target as the report says (1 when unknown). */
function keyvaShapeOf(targets: readonly { readonly name: TargetName; readonly nodes?: number }[], name: TargetName): number {
  return targets.find((t) => t.name === name)?.nodes ?? 1;
}

/** A KeyVa target's label without the client kind, for ratio headers ("KeyVa 3 nodes RF 3"). */
export function shortLabel(t: { readonly label: string }): string {
  return t.label.replace(/ \((stream|unary)\)$/, '');
}

/** Each ratio pair's figure per workload both ran (`ratioPairs`). */
export function ratios(r: YcsbReport): { workload: string; keyva: TargetName; against: TargetName; ratio: number }[] {
  const out: { workload: string; keyva: TargetName; against: TargetName; ratio: number }[] = [];
  const pairs = ratioPairs(r.targets);
  for (const w of new Set(r.results.map((x) => x.workload)))
    for (const p of pairs) {
      const k = r.results.find((x) => x.target === p.keyva && x.workload === w);
      const o = r.results.find((x) => x.target === p.against && x.workload === w);
      if (k && o && o.opsPerSec > 0) out.push({ workload: w, keyva: p.keyva, against: p.against, ratio: k.opsPerSec / o.opsPerSec });
    }
  return out;
}

export function renderMarkdown(r: YcsbReport): string {
  const o = r.options;
  const workloads = [...new Set([...r.results.map((x) => x.workload), ...r.skipped.map((x) => x.workload)])];
  const res = (t: string, w: string): WorkloadResult | undefined => r.results.find((x) => x.target === t && x.workload === w);
  const label = (name: TargetName) => r.targets.find((t) => t.name === name) ?? { label: name };
  const pairs = ratioPairs(r.targets);
  const lines: string[] = [];

  lines.push(
    `YCSB, ${o.distribution} key choice, ${int(o.records)} records of ${o.valueSize} B, ${o.clients} client processes, ${o.concurrency} operations in flight, ` +
      `${o.durationMs / 1000} s per workload after ${o.warmupMs / 1000} s warm-up. Machine: ${r.machine.nproc} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ` +
      `load average at start ${r.machine.loadAvgAtStart.join(' / ')}; ${r.date}.`,
    '',
  );
  if (r.scaling) return [...lines, renderScaling(r.scaling)].join('\n');

  const table = (head: readonly string[], rows: readonly (readonly string[])[]) => [
    `| ${head.join(' | ')} |`,
    `| --- | ${head
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
    ...rows.map((cells) => `| ${cells.join(' | ')} |`),
    '',
  ];
  const title = (w: (typeof workloads)[number]) => `${w} (${WORKLOADS[w].title.split(':')[0]})`;
  lines.push('**Throughput (operations/s)**', '');
  lines.push(
    ...table(
      ['workload', ...r.targets.map((t) => t.label)],
      workloads.map((w) => [title(w), ...r.targets.map((t) => (res(t.name, w) ? int(res(t.name, w)?.opsPerSec ?? 0) : 'n/a'))]),
    ),
  );
  if (pairs.length > 0) {
    const twoKeyvas = new Set(pairs.map((p) => p.keyva)).size > 1;
    lines.push(
      twoKeyvas
        ? '**Throughput ratios: KeyVa 3 nodes against etcd (like for like) and KeyVa 1 node; KeyVa 1 node against the single-process peers and ceilings**'
        : "**Throughput ratios: KeyVa's figure over each peer's and ceiling's**",
      '',
    );
    lines.push(
      ...table(
        ['workload', ...pairs.map((p) => `${shortLabel(label(p.keyva))} / ${label(p.against).label}`)],
        workloads.map((w) => [
          title(w),
          ...pairs.map((p) => {
            const k = res(p.keyva, w);
            const x = res(p.against, w);
            return k && x && x.opsPerSec > 0 ? `${(k.opsPerSec / x.opsPerSec).toFixed(2)}x` : '';
          }),
        ]),
      ),
    );
  }

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
