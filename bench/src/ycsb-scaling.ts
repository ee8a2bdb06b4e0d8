/**
 * The YCSB suite's scaling run (`--scaling 1,3,5`): KeyVa alone at each node count, one count
 * after the other (never two clusters at once), on the same workloads with the same load,
 * clients and concurrency. One node runs with replication factor 1, three or more with RF 3
 * (every write on 3 replicas, as a production cluster): the throughput per node count, its
 * ratios (to the first count and to the previous one), and each node process's RSS peak and end
 * per workload with the bound every node stayed within.
 *
 *   npm run bench -- ycsb --scaling 1,3,5 --workloads A,B,C --json bench/results/scaling.json
 */
import { machineInfo, runPhase, startLive, stopLive, type TargetReport, type WorkloadResult, type YcsbOptions, type YcsbReport } from './ycsb.ts';
import { type OpType, WORKLOADS, type WorkloadName } from './ycsb-workloads.ts';

/** RF of the scaling run at `nodes` nodes: 1 alone, else 3 (node config allows RF 1, 3 or 5, at most the node count). */
export function scalingReplicationFactor(nodes: number): number {
  return nodes < 3 ? 1 : 3;
}

/** Parses `--scaling 1,3,5`: distinct positive node counts, in the order given. */
export function parseScaling(text: string): number[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const out: number[] = [];
  for (const i of items) {
    const n = Number(i);
    if (!Number.isSafeInteger(n) || n < 1 || n > 9) throw new Error(`--scaling: '${i}' is not a node count from 1 to 9`);
    if (out.includes(n)) throw new Error(`--scaling: ${n} appears twice`);
    out.push(n);
  }
  if (out.length === 0) throw new Error('--scaling needs node counts, e.g. 1,3,5');
  return out;
}

export interface ScalingRun {
  readonly nodes: number;
  readonly replicationFactor: number;
  readonly target: TargetReport;
  readonly results: WorkloadResult[];
  /** The largest RSS peak of any node process in any workload of this run: the bound every node stayed within. */
  readonly nodeRssBoundBytes: number | null;
}

export interface ScalingThroughput {
  readonly workload: WorkloadName;
  readonly nodes: number;
  readonly replicationFactor: number;
  readonly opsPerSec: number;
  /** Over the first node count's figure for the same workload (null if that one is missing). */
  readonly vsFirst: number | null;
  /** Over the previous node count's figure (null for the first). */
  readonly vsPrevious: number | null;
}

export interface ScalingReport {
  readonly nodeCounts: readonly number[];
  readonly runs: ScalingRun[];
  readonly throughput: ScalingThroughput[];
  readonly skipped: { readonly nodes: number; readonly workload: WorkloadName; readonly reason: string }[];
  /** The largest RSS peak of any node process in the whole scaling run. */
  readonly nodeRssBoundBytes: number | null;
}

/** Largest per-process RSS peak over `results` (null when no process was sampled). */
export function rssBound(results: readonly WorkloadResult[]): number | null {
  const peaks = results.flatMap((r) => (r.serverRssByProcess ?? []).map((p) => p.maxBytes)).filter((b) => Number.isFinite(b) && b > 0);
  return peaks.length === 0 ? null : Math.max(...peaks);
}

/** Throughput per workload and node count, with its ratios to the first and the previous count. */
export function scalingThroughput(runs: readonly ScalingRun[]): ScalingThroughput[] {
  const out: ScalingThroughput[] = [];
  const workloads = [...new Set(runs.flatMap((r) => r.results.map((x) => x.workload as WorkloadName)))];
  for (const w of workloads) {
    const first = runs[0]?.results.find((x) => x.workload === w);
    let previous: WorkloadResult | undefined;
    for (const [i, run] of runs.entries()) {
      const x = run.results.find((y) => y.workload === w);
      if (x === undefined) {
        previous = undefined;
        continue;
      }
      out.push({
        workload: w,
        nodes: run.nodes,
        replicationFactor: run.replicationFactor,
        opsPerSec: x.opsPerSec,
        vsFirst: first && first.opsPerSec > 0 ? x.opsPerSec / first.opsPerSec : null,
        vsPrevious: i > 0 && previous && previous.opsPerSec > 0 ? x.opsPerSec / previous.opsPerSec : null,
      });
      previous = x;
    }
  }
  return out;
}

/** Runs KeyVa at each of `o.scaling`'s node counts and returns the report (its `scaling` part; targets/results empty). */
export async function runYcsbScaling(o: YcsbOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<YcsbReport> {
  const counts = o.scaling ?? [1, 3, 5];
  const report = {
    benchmark: 'ycsb' as const,
    schema: 1 as const,
    date: new Date().toISOString(),
    machine: machineInfo(),
    options: { ...o, targets: ['keyva' as const], scaling: counts },
    targets: [],
    results: [],
    skipped: [],
  };
  log(
    `ycsb scaling: KeyVa at ${counts.join(', ')} nodes; ${o.records.toLocaleString('en-US')} records of ${o.valueSize} B, ${o.distribution}, ` +
      `${o.clients} client processes, ${o.concurrency} in flight, ${o.durationMs / 1000} s per workload; workloads ${o.workloads.join(',')}`,
  );
  const runs: ScalingRun[] = [];
  const skipped: ScalingReport['skipped'] = [];
  for (const nodes of counts) {
    const replicationFactor = scalingReplicationFactor(nodes);
    const lo = { ...o, keyvaNodes: nodes, keyvaReplicationFactor: replicationFactor, keyvaEndpoint: undefined };
    // A node count that fails (start, load or a workload) is reported as skipped; the others still run.
    const failed = (wls: readonly WorkloadName[], e: unknown) => {
      const reason = `failed: ${e instanceof Error ? e.message : String(e)}`;
      log(`  ${nodes} nodes: ${reason}`);
      for (const workload of wls) skipped.push({ nodes, workload, reason });
    };
    let started: Awaited<ReturnType<typeof startLive>>;
    try {
      started = await startLive('keyva', lo, log);
    } catch (e) {
      failed(o.workloads, e);
      continue;
    }
    const { live, report: target } = started;
    const results: WorkloadResult[] = [];
    try {
      for (const [i, wl] of o.workloads.entries()) {
        const missing = Object.keys(WORKLOADS[wl].mix).filter((t) => !live.target.supports.has(t as OpType));
        if (missing.length > 0) {
          skipped.push({ nodes, workload: wl, reason: `${live.target.label} does not serve ${missing.join(', ')}` });
          continue;
        }
        try {
          results.push(await runPhase(live, wl, lo, log, `${wl} n=${nodes}`));
        } catch (e) {
          failed(o.workloads.slice(i), e);
          break;
        }
      }
    } finally {
      await stopLive(live);
    }
    runs.push({ nodes, replicationFactor, target, results, nodeRssBoundBytes: rssBound(results) });
  }
  const scaling: ScalingReport = {
    nodeCounts: counts,
    runs,
    throughput: scalingThroughput(runs),
    skipped,
    nodeRssBoundBytes: rssBound(runs.flatMap((r) => r.results)),
  };
  return { ...report, scaling };
}
