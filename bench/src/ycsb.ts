/**
 * The YCSB suite's coordinator: for each target, start it (loopback, temp dirs), fork the
 * client processes, load the records, run the workloads one after the other on the same data
 * (inserts of D and E accumulate, as in YCSB's A,B,C,F,D,E order), and collect one report:
 * merged HDR histograms per operation type, a per-second throughput series, client CPU beside
 * server CPU, and the servers' resident memory.
 *
 *   npm run bench -- ycsb [--targets keyva,etcd,...] [--workloads A,B,C,D,E,F] [--duration-ms 10000] ...
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { encodeHistogram, type FullLatencySummary, mergeHistograms, summarizeFull } from './histogram.ts';
import { processCpuSec } from './proc-cpu.ts';
import { machineBusyCpuSec, type ProcessRss, sampleRss, sampleRssByProcess } from './proc-mem.ts';
import { progressBar } from './progress.ts';
import type { ScalingReport } from './ycsb-scaling.ts';
import {
  DEFAULT_TARGETS,
  etcdBinary,
  redisBinary,
  type StartedTarget,
  startTarget,
  type TargetInfo,
  type TargetName,
  type TargetOptions,
} from './ycsb-targets.ts';
import type { RunParams, WorkerResult } from './ycsb-worker.ts';
import { type Distribution, OP_TYPES, type OpType, type RunnableWorkload, WORKLOADS, type WorkloadName } from './ycsb-workloads.ts';

export interface YcsbOptions extends TargetOptions {
  readonly targets: readonly TargetName[];
  readonly workloads: readonly WorkloadName[];
  readonly distribution: Distribution;
  /** Records loaded before the workloads run. */
  readonly records: number;
  readonly valueSize: number;
  /** Operations in flight in total, split over the client processes. */
  readonly concurrency: number;
  /** Client processes. */
  readonly clients: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  /** Bound on measured operations per workload (all client processes together). */
  readonly opsMax: number;
  readonly scanLengthMax: number;
  /** Hash tags the records are spread over. */
  readonly tags: number;
  readonly seed: number;
  /** Load batches in flight per client process. */
  readonly loadConcurrency: number;
  /** `--scaling 1,3,5`: run KeyVa alone at each node count instead of the targets (bench/src/ycsb-scaling.ts). */
  readonly scaling?: readonly number[] | undefined;
}

export const YCSB_DEFAULTS: YcsbOptions = {
  targets: DEFAULT_TARGETS,
  workloads: ['A', 'B', 'C', 'F', 'D', 'E'],
  distribution: 'zipfian',
  records: 100_000,
  valueSize: 1000,
  concurrency: 64,
  clients: 2,
  durationMs: 10_000,
  warmupMs: 1000,
  opsMax: 10_000_000,
  scanLengthMax: 100,
  tags: 64,
  seed: 1,
  loadConcurrency: 4,
  keyvaNodes: 1,
  keyvaEngine: 'rocksdb',
  etcdMembers: 3,
};

export interface OpSummary extends FullLatencySummary {
  readonly errors: number;
  /** HDR compressed base64 (merged over the client processes). */
  readonly histogram: string;
}

export interface WorkloadResult<W extends RunnableWorkload = WorkloadName> {
  readonly target: TargetName;
  readonly workload: W;
  readonly distribution: Distribution;
  readonly seconds: number;
  readonly ops: number;
  readonly errors: number;
  readonly opsPerSec: number;
  /** Reads of a key that was not there (D may read a key another client has not inserted yet). */
  readonly notFound: number;
  readonly byOp: Partial<Record<OpType, OpSummary>>;
  readonly all: OpSummary;
  /** Per second of the measured window, all client processes together. */
  readonly series: readonly { readonly t: number; readonly ops: number; readonly errors: number }[];
  readonly clients: number;
  readonly concurrency: number;
  readonly clientCpu: { readonly cpuSec: number; readonly cores: number; readonly perProcessMaxCores: number };
  readonly serverCpu: { readonly cpuSec: number; readonly cores: number } | null;
  readonly serverRss: { readonly maxBytes: number; readonly endBytes: number } | null;
  /** Each server process's own RSS peak and last sample during the window (one per node, node-1 first); absent in older reports. */
  readonly serverRssByProcess?: readonly ProcessRss[] | null;
  /** The whole machine's busy cores during the window, and what neither the clients nor the servers used (other jobs: noise). */
  readonly machineCpu: { readonly cores: number; readonly otherCores: number } | null;
  readonly errorSamples: readonly string[];
}

export interface TargetReport extends TargetInfo {
  readonly version: string;
  readonly clients: number;
  readonly serverProcesses: number;
  readonly load: { readonly records: number; readonly errors: number; readonly seconds: number; readonly recordsPerSec: number };
  readonly rssAfterLoadBytes: number | null;
}

export interface YcsbReport {
  readonly benchmark: 'ycsb';
  readonly schema: 1;
  readonly date: string;
  readonly machine: {
    readonly nproc: number;
    readonly memoryGiB: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly kernel: string;
    readonly loadAvgAtStart: readonly number[];
  };
  readonly options: YcsbOptions;
  readonly targets: TargetReport[];
  readonly results: WorkloadResult[];
  readonly skipped: { readonly target: TargetName; readonly workload: WorkloadName; readonly reason: string }[];
  /** `--scaling`: KeyVa at several node counts (bench/src/ycsb-scaling.ts); then targets/results stay empty. */
  readonly scaling?: ScalingReport;
}

const WORKER = resolve(import.meta.dirname, 'ycsb-worker.ts');

type Reply = { type: string; [k: string]: unknown };

/** The client processes of one target. */
export class Clients {
  readonly procs: ChildProcess[];
  private constructor(procs: ChildProcess[]) {
    this.procs = procs;
  }

  static async start(n: number, target: StartedTarget, valueSize: number): Promise<Clients> {
    const procs = Array.from({ length: n }, () => fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const c = new Clients(procs);
    try {
      await c.all((p) => c.ask(p, { type: 'init', spec: target.spec, valueSize }, 'ready', 60_000));
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  all<T>(fn: (p: ChildProcess, i: number) => Promise<T>): Promise<T[]> {
    return Promise.all(this.procs.map(fn));
  }

  /** Sends `msg`, resolves with the reply of `replyType`; kills the process if none comes within `timeoutMs`. */
  ask(p: ChildProcess, msg: object, replyType: string, timeoutMs: number, onOther?: (m: Reply) => void): Promise<Reply> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        cleanup();
        p.kill('SIGKILL');
        rej(new Error(`client process gave no '${replyType}' within ${timeoutMs} ms (killed)`));
      }, timeoutMs);
      const onMsg = (m: Reply) => {
        if (m.type === replyType) {
          cleanup();
          res(m);
        } else if (m.type === 'error') {
          cleanup();
          rej(new Error(`client process: ${String(m.message)}`));
        } else onOther?.(m);
      };
      const onExit = (code: number | null) => {
        cleanup();
        rej(new Error(`client process exited (${code}) before '${replyType}'`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        p.off('message', onMsg);
        p.off('exit', onExit);
      };
      p.on('message', onMsg);
      p.once('exit', onExit);
      p.send(msg);
    });
  }

  close(): void {
    for (const p of this.procs) {
      if (p.connected) p.send({ type: 'close' });
      const t = setTimeout(() => p.kill('SIGKILL'), 5000);
      p.once('exit', () => clearTimeout(t));
    }
  }
}

function versionOf(name: TargetName, o: TargetOptions): string {
  try {
    if (name === 'etcd') return execFileSync(etcdBinary(o.etcdBinary), ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
    if (name.startsWith('redis')) return execFileSync(redisBinary(o.redisBinary), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
  if (name.startsWith('keyva')) return 'KeyVa 0.1.0 (this checkout)';
  if (name === 'echo') return `grpc-js (bench/src/echo-service.ts) on Node ${process.version}`;
  return `@nxtedition/rocksdb (KeyVa's binding) on Node ${process.version}`;
}

function sumSeries(parts: readonly WorkerResult[]): { t: number; ops: number; errors: number }[] {
  const n = Math.max(0, ...parts.map((p) => p.series.ops.length));
  return Array.from({ length: n }, (_, t) => ({
    t,
    ops: parts.reduce((s, p) => s + (p.series.ops[t] ?? 0), 0),
    errors: parts.reduce((s, p) => s + (p.series.errors[t] ?? 0), 0),
  }));
}

function mergeOp(parts: readonly { count: number; errors: number; histogram: string }[]): OpSummary {
  const h = mergeHistograms(parts.map((p) => p.histogram));
  return { ...summarizeFull(h), errors: parts.reduce((s, p) => s + p.errors, 0), histogram: h.totalCount === 0 ? '' : encodeHistogram(h) };
}

/** Merges the client processes' results of one workload run. */
export function mergeWorkerResults<W extends RunnableWorkload>(
  base: Pick<WorkloadResult<W>, 'target' | 'workload' | 'distribution' | 'clients' | 'concurrency' | 'serverCpu' | 'serverRss' | 'machineCpu'> &
    Partial<Pick<WorkloadResult<W>, 'serverRssByProcess'>>,
  parts: readonly WorkerResult[],
): WorkloadResult<W> {
  const seconds = Math.max(0, ...parts.map((p) => p.seconds));
  const ops = parts.reduce((s, p) => s + p.ops, 0);
  const byOp: Partial<Record<OpType, OpSummary>> = {};
  for (const t of OP_TYPES) {
    const ps = parts.map((p) => p.byOp[t]).filter((x) => x !== undefined);
    if (ps.length > 0) byOp[t] = mergeOp(ps);
  }
  const cpuSec = parts.reduce((s, p) => s + p.cpuSec, 0);
  return {
    ...base,
    seconds,
    ops,
    errors: parts.reduce((s, p) => s + p.errors, 0),
    opsPerSec: seconds > 0 ? ops / seconds : 0,
    notFound: parts.reduce((s, p) => s + p.notFound, 0),
    byOp,
    all: mergeOp(parts.map((p) => p.all)),
    series: sumSeries(parts),
    clientCpu: {
      cpuSec,
      cores: seconds > 0 ? cpuSec / seconds : 0,
      perProcessMaxCores: Math.max(0, ...parts.map((p) => (p.seconds > 0 ? p.cpuSec / p.seconds : 0))),
    },
    errorSamples: parts.flatMap((p) => p.errorSamples).slice(0, 5),
  };
}

/** Targets running now, so an interrupted run (SIGINT) can still stop them and remove their temp dirs. */
const running = new Set<StartedTarget>();

export async function stopRunningTargets(): Promise<void> {
  await Promise.allSettled([...running].map((t) => t.stop()));
  running.clear();
}

/** A started, loaded target with its client processes. */
export interface Live {
  readonly name: TargetName;
  readonly target: StartedTarget;
  readonly clients: Clients;
  readonly n: number;
  readonly perClient: number;
  /** The next record number inserts may use (records + every earlier insert). */
  frontier: number;
}

/** What starting, loading and running a target needs (YcsbOptions has all of it). */
export type LiveOptions = TargetOptions &
  Pick<YcsbOptions, 'records' | 'valueSize' | 'concurrency' | 'clients' | 'tags' | 'seed' | 'loadConcurrency'> &
  Pick<YcsbOptions, 'distribution' | 'durationMs' | 'warmupMs' | 'opsMax' | 'scanLengthMax'>;

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Starts `name`, forks its client processes and loads the records; on failure everything started is stopped. */
export async function startLive(name: TargetName, o: LiveOptions, log: (line: string) => void): Promise<{ live: Live; report: TargetReport }> {
  const target = await startTarget(name, o);
  running.add(target);
  let clients: Clients | undefined;
  try {
    const n = Math.max(1, Math.min(o.clients, target.clientsMax));
    const perClient = Math.max(1, Math.ceil(o.concurrency / n));
    clients = await Clients.start(n, target, o.valueSize);
    const cs = clients;
    // Load phase: each client process loads a contiguous slice of the records.
    const rssLoad = sampleRss(target.pids);
    const t0 = performance.now();
    const loading = cs.all((p, i) =>
      cs.ask(
        p,
        {
          type: 'load',
          from: Math.floor((o.records * i) / n),
          to: Math.floor((o.records * (i + 1)) / n),
          tags: o.tags,
          valueSize: o.valueSize,
          concurrency: o.loadConcurrency,
          seed: o.seed * 31 + i,
        },
        'loaded',
        // Bounded: at least 100 records/s per process, or the run is abandoned.
        60_000 + Math.ceil(o.records / n / 100) * 1000,
      ),
    );
    // The sampler's timer must stop on failure too, or it keeps the process alive.
    const loaded = await loading.finally(() => rssLoad.stop());
    const loadSec = (performance.now() - t0) / 1000;
    const rssAfterLoad = rssLoad.stop();
    const loadedRecords = loaded.reduce((s, m) => s + Number(m.records), 0);
    const loadErrors = loaded.reduce((s, m) => s + Number(m.errors), 0);
    if (loadErrors > 0) log(`  ${name}: ${loadErrors} records failed to load: ${loaded.flatMap((m) => m.errorSamples as string[]).join(' | ')}`);
    log(`  ${target.label}: loaded ${fmt(loadedRecords)} records in ${loadSec.toFixed(1)} s (${fmt(loadedRecords / loadSec)} records/s)`);
    const report: TargetReport = {
      name: target.name,
      label: target.label,
      role: target.role,
      durability: target.durability,
      nodes: target.nodes,
      notes: target.notes,
      version: versionOf(name, o),
      clients: n,
      serverProcesses: target.pids.length,
      load: { records: loadedRecords, errors: loadErrors, seconds: loadSec, recordsPerSec: loadedRecords / loadSec },
      rssAfterLoadBytes: target.pids.length > 0 ? rssAfterLoad.endBytes : null,
    };
    return { live: { name, target, clients: cs, n, perClient, frontier: o.records }, report };
  } catch (e) {
    clients?.close();
    running.delete(target);
    await target.stop();
    throw e;
  }
}

/** Closes the client processes and stops the target. */
export async function stopLive(L: Live): Promise<void> {
  L.clients.close();
  running.delete(L.target);
  await L.target.stop();
}

/** CPU per operation in µs: `cpuSec` CPU seconds spent on `ops` operations (the progress line and the replicated summary). */
export function cpuUsPerOp(cpuSec: number, ops: number): number {
  return (cpuSec / ops) * 1e6;
}

/**
 * Runs one workload on a live target through all its client processes (warm-up first, not
 * measured), with a progress bar, and merges their results with server CPU and RSS.
 */
export async function runPhase<W extends RunnableWorkload>(
  L: Live,
  wl: W,
  o: LiveOptions,
  log: (line: string) => void,
  label: string = wl,
): Promise<WorkloadResult<W>> {
  const { name, target, clients: cs, n, perClient } = L;
  const startAtMs = Date.now() + 300;
  const measureAt = startAtMs + o.warmupMs;
  const bar = progressBar(`  ${label} ${name.padEnd(14)}`);
  const rss = sampleRssByProcess(target.pids);
  let cpuStart = Number.NaN;
  let machineStart = Number.NaN;
  let cpuStartAt = 0;
  const cpuTimer = setTimeout(
    () => {
      cpuStart = target.pids.reduce((s, p) => s + processCpuSec(p), 0);
      machineStart = machineBusyCpuSec();
      cpuStartAt = performance.now();
    },
    Math.max(0, measureAt - Date.now()),
  );
  const progress = new Map<number, number>();
  const running = cs.all(async (p, i) => {
    const params: RunParams = {
      workload: wl,
      distribution: o.distribution,
      records: o.records,
      insertStart: L.frontier,
      workerIndex: i,
      workers: n,
      concurrency: perClient,
      startAtMs,
      warmupMs: o.warmupMs,
      durationMs: o.durationMs,
      opsMax: Math.ceil(o.opsMax / n),
      scanLengthMax: o.scanLengthMax,
      tags: o.tags,
      valueSize: o.valueSize,
      seed: o.seed,
    };
    const m = await cs.ask(p, { type: 'run', params }, 'done', o.warmupMs + o.durationMs + 60_000, (pm) => {
      if (pm.type !== 'progress') return;
      progress.set(i, Number(pm.ops));
      const elapsed = Math.max(0, Date.now() - measureAt);
      const opsNow = [...progress.values()].reduce((s, x) => s + x, 0);
      bar.update(
        elapsed / o.durationMs,
        Date.now() < measureAt
          ? 'warming up'
          : `${(elapsed / 1000).toFixed(1)}/${o.durationMs / 1000} s  ${fmt(opsNow / Math.max(0.001, elapsed / 1000))} ops/s`,
      );
    });
    return m.result as WorkerResult;
  });
  // Timers stop on failure too, or they keep the process alive.
  const parts = await running.finally(() => {
    clearTimeout(cpuTimer);
    bar.done();
    rss.stop();
  });
  const rssStats = rss.stop();
  const cpuEnd = target.pids.reduce((s, p) => s + processCpuSec(p), 0);
  const machineSec = machineBusyCpuSec() - machineStart;
  const windowSec = (performance.now() - cpuStartAt) / 1000;
  const cpuSec = cpuEnd - cpuStart;
  const merged = mergeWorkerResults<W>(
    {
      target: name,
      workload: wl,
      distribution: o.distribution,
      clients: n,
      concurrency: perClient * n,
      serverCpu: target.pids.length > 0 && !Number.isNaN(cpuSec) ? { cpuSec, cores: cpuSec / windowSec } : null,
      serverRss: target.pids.length > 0 ? { maxBytes: rssStats.maxBytes, endBytes: rssStats.endBytes } : null,
      serverRssByProcess: target.pids.length > 0 ? rssStats.perProcess : null,
      machineCpu: null,
    },
    parts,
  );
  const machineCores = machineSec / windowSec;
  const ours = merged.clientCpu.cores + (merged.serverCpu?.cores ?? 0);
  const result: WorkloadResult<W> = {
    ...merged,
    machineCpu: Number.isFinite(machineCores) ? { cores: machineCores, otherCores: Math.max(0, machineCores - ours) } : null,
  };
  L.frontier += n * Math.max(0, ...parts.map((p) => p.insertsIssued));
  log(
    `  ${label} ${name.padEnd(14)} ${fmt(result.opsPerSec).padStart(9)} ops/s  p50 ${(result.all.p50Us / 1000).toFixed(2)} ms  p99 ${(result.all.p99Us / 1000).toFixed(2)} ms` +
      `  client CPU ${result.clientCpu.cores.toFixed(2)}  server CPU ${result.serverCpu ? result.serverCpu.cores.toFixed(2) : 'in-process'}` +
      `${result.serverCpu && result.ops > 0 ? ` (${Math.round(cpuUsPerOp(result.serverCpu.cpuSec, result.ops))} µs/op)` : ''}` +
      `${result.machineCpu ? `  other load ${result.machineCpu.otherCores.toFixed(2)}` : ''}` +
      `${result.serverRss ? `  RSS ${(result.serverRss.maxBytes / 2 ** 20).toFixed(0)} MiB` : ''}${result.errors > 0 ? `  ERRORS ${result.errors}: ${result.errorSamples[0]}` : ''}`,
  );
  return result;
}

export function machineInfo(): YcsbReport['machine'] {
  return {
    nproc: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: release(),
    loadAvgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export async function runYcsb(o: YcsbOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<YcsbReport> {
  const report: YcsbReport = {
    benchmark: 'ycsb',
    schema: 1,
    date: new Date().toISOString(),
    machine: machineInfo(),
    options: o,
    targets: [],
    results: [],
    skipped: [],
  };
  log(
    `ycsb: ${o.records.toLocaleString('en-US')} records of ${o.valueSize} B, ${o.distribution}, ${o.clients} client processes x ${Math.ceil(o.concurrency / o.clients)} in flight, ` +
      `${o.durationMs / 1000} s per workload (+${o.warmupMs / 1000} s warm-up); targets ${o.targets.join(', ')}; workloads ${o.workloads.join(',')}`,
  );
  // Every target is started and loaded first; then each workload runs on every target in turn,
  // so drifting load from elsewhere on the machine spreads over the targets instead of hitting one.
  const live: Live[] = [];
  try {
    for (const name of o.targets) {
      const { live: L, report: tr } = await startLive(name, o, log);
      report.targets.push(tr);
      live.push(L);
    }
    for (const wl of o.workloads) {
      for (const L of live) {
        const w = WORKLOADS[wl];
        const missing = Object.keys(w.mix).filter((t) => !L.target.supports.has(t as OpType));
        if (missing.length > 0) {
          const reason = `${L.target.label} does not serve ${missing.join(', ')}`;
          report.skipped.push({ target: L.name, workload: wl, reason });
          log(`  ${wl} ${L.name}: skipped (${reason})`);
          continue;
        }
        report.results.push(await runPhase(L, wl, o, log));
      }
    }
  } finally {
    for (const L of live) await stopLive(L);
  }
  return report;
}
