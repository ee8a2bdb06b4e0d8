/** Markdown tables of a replicated-suite report: KeyVa vs etcd per phase, ratios against the targets, rounds, CPU. */
import type { ReplicatedReport } from './replicated.ts';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (us: number) => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
const x = (r: number) => `${r.toFixed(2)}x`;
const cores = (c: number | null) => (c === null ? 'n/a' : c.toFixed(2));

const PHASE_TITLE = { put: 'put (majority)', get: 'linearizable get' } as const;

export function renderReplicatedMarkdown(r: ReplicatedReport): string {
  const o = r.options;
  const lines: string[] = [];
  const keyva = r.summary.find((s) => s.target === 'keyva');
  const etcd = r.summary.find((s) => s.target === 'etcd');
  const kLabel = keyva?.label ?? 'KeyVa';
  const eLabel = etcd?.label ?? 'etcd';
  lines.push(
    `${kLabel} vs ${eLabel}: ${int(o.records)} records of ${o.valueSize} B, ${o.distribution} key choice, ${o.clients} client processes, ` +
      `${o.concurrency} operations in flight, ${o.durationMs / 1000} s per phase after ${o.warmupMs / 1000} s warm-up, ${o.rounds} round(s) ` +
      `(one system running at a time, order alternating). KeyVa: ${o.keyvaPartitions ?? 'default'} partitions, engine ${o.keyvaEngine}${o.keyvaExactlyOnce === false ? ', SDK request ids OFF (exactlyOnce: false)' : ''}. ` +
      `Machine: ${r.machine.nproc} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, load average at start ${r.machine.loadAvgAtStart.join(' / ')}; ${r.date}.`,
    '',
    `| phase | ${kLabel} ops/s | ${eLabel} ops/s | KeyVa / etcd | target | KeyVa p50 / p99 (ms) | etcd p50 / p99 (ms) | p99 KeyVa / etcd | target |`,
    '| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |',
  );
  for (const c of r.comparisons) {
    const k = r.summary.find((s) => s.target === 'keyva' && s.phase === c.phase);
    const e = r.summary.find((s) => s.target === 'etcd' && s.phase === c.phase);
    if (!k || !e) continue;
    lines.push(
      `| ${PHASE_TITLE[c.phase]} | ${int(k.opsPerSec)} | ${int(e.opsPerSec)} | ${x(c.throughputRatio)} | >= ${x(c.target.throughputMin)} ${c.throughputMet ? 'met' : 'NOT met'} ` +
        `| ${ms(k.p50Us)} / ${ms(k.p99Us)} | ${ms(e.p50Us)} / ${ms(e.p99Us)} | ${x(c.p99Ratio)} | <= ${x(c.target.p99RatioMax)} ${c.p99Met ? 'met' : 'NOT met'} |`,
    );
  }
  lines.push(
    '',
    'Per round (ops/s, p99 ms; the ratio is KeyVa over etcd within the round; KeyVa partitions that changed leader or were leaderless during the phase):',
    '',
    `| phase | round | ${kLabel} | ${eLabel} | KeyVa / etcd | KeyVa leader changes |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const c of r.comparisons) {
    const k = r.summary.find((s) => s.target === 'keyva' && s.phase === c.phase);
    const e = r.summary.find((s) => s.target === 'etcd' && s.phase === c.phase);
    if (!k || !e) continue;
    c.throughputRatioByRound.forEach((ratio, i) => {
      const changes = r.results.find((res) => res.target === 'keyva' && res.workload === c.phase && res.round === i + 1)?.leaderChanges;
      lines.push(
        `| ${PHASE_TITLE[c.phase]} | ${i + 1} | ${int(k.opsPerSecByRound[i] ?? 0)} (p99 ${ms(k.p99UsByRound[i] ?? 0)}) | ${int(e.opsPerSecByRound[i] ?? 0)} (p99 ${ms(e.p99UsByRound[i] ?? 0)}) | ${x(ratio)} | ${changes ?? 'n/a'} |`,
      );
    });
  }
  lines.push(
    '',
    'CPU, cores busy (mean over rounds): clients / servers (all processes of the system) / other load on the machine; server CPU per operation (all rounds); latency p99.9 and max (ms):',
    '',
    '| phase | system | clients | servers | other load | server CPU per op | p99.9 | max | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const s of r.summary)
    lines.push(
      `| ${PHASE_TITLE[s.phase]} | ${s.label} | ${s.clientCores.toFixed(2)} | ${cores(s.serverCores)} | ${cores(s.otherCores)} | ${s.serverCpuUsPerOp === null ? 'n/a' : `${int(s.serverCpuUsPerOp)} µs`} | ${ms(s.p999Us)} | ${ms(s.maxUs)} | ${s.errors} |`,
    );
  const leaders = r.targets.filter((t) => t.leadersPerNode !== null);
  if (leaders.length > 0)
    lines.push('', `KeyVa partitions led per node when measuring: ${leaders.map((t) => `round ${t.round} ${JSON.stringify(t.leadersPerNode)}`).join('; ')}.`);
  const work = r.results.filter((res) => res.target === 'keyva' && res.raftPerWrite !== null && res.raftPerWrite !== undefined);
  if (work.length > 0) {
    const w = work.map((res) => `round ${res.round} ${JSON.stringify(res.raftPerWrite)}`).join('; ');
    lines.push(
      '',
      `KeyVa Raft work per write, whole cluster (messages sent, frames of messages sent, Readys persisted, fsync'd engine writes, Ready turns; from the nodes' keyva_raft_* metrics, warm-up included): ${w}.`,
    );
  }
  const durability = [...new Map(r.targets.map((t) => [t.name, `${t.label}: ${t.durability}`])).values()];
  lines.push('', `Durability in force: ${durability.join('; ')}.`);
  return lines.join('\n');
}
