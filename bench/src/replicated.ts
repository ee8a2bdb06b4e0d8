/**
 * The replicated suite: KeyVa on 3 nodes with RF 3 against a 3-member etcd cluster, both on
 * loopback with every write fsync'd on a majority before it is acknowledged, driven by the
 * same closed-loop load generator (the YCSB client processes) at the same concurrency and
 * value size. Two phases per system: puts (etcd Put vs KeyVa put, write concern majority) and
 * linearizable gets (etcd Range with serializable=false vs KeyVa get, consistency
 * linearizable). Only one system runs at a time: each round starts one, loads it, runs the
 * phases, stops it, then does the same for the other; the order alternates from round to
 * round so drifting outside load spreads over both.
 *
 *   npm run bench -- replicated [--rounds 2] [--duration-ms 10000] [--json bench/results/replicated.json] ...
 */

import { encodeHistogram, type FullLatencySummary, mergeHistograms, summarizeFull } from './histogram.ts';
import { countLeaders, leaderChanges } from './keyva-cluster.ts';
import {
  cpuUsPerOp,
  type Live,
  type LiveOptions,
  machineInfo,
  runPhase,
  startLive,
  stopLive,
  type TargetReport,
  type WorkloadResult,
  type YcsbReport,
} from './ycsb.ts';
import type { TargetName } from './ycsb-targets.ts';
import type { MicroWorkloadName } from './ycsb-workloads.ts';

export type Phase = MicroWorkloadName;
export const PHASES: readonly Phase[] = ['put', 'get'];
/** The two systems compared, in the order of the first round. */
export const SYSTEMS: readonly TargetName[] = ['keyva', 'etcd'];

/** KeyVa's targets against etcd (KeyVa issue #3 item 9): throughput ratio at least, p99 ratio at most. */
export const TARGETS: Readonly<Record<Phase, { readonly throughputMin: number; readonly p99RatioMax: number }>> = {
  put: { throughputMin: 1.0, p99RatioMax: 1.0 },
  get: { throughputMin: 1.5, p99RatioMax: 1.0 },
};

export interface ReplicatedOptions extends LiveOptions {
  /** Each round runs every system once; the order alternates. */
  readonly rounds: number;
  readonly phases: readonly Phase[];
  /** The systems to run (default both; one alone is for profiling, and then no ratios come out). */
  readonly systems: readonly TargetName[];
}

export const REPLICATED_DEFAULTS: ReplicatedOptions = {
  rounds: 2,
  phases: PHASES,
  systems: SYSTEMS,
  keyvaNodes: 3,
  keyvaReplicationFactor: 3,
  keyvaPartitions: 64,
  keyvaEngine: 'rocksdb',
  etcdMembers: 3,
  records: 10_000,
  valueSize: 256,
  concurrency: 64,
  clients: 2,
  durationMs: 10_000,
  warmupMs: 2000,
  distribution: 'uniform',
  opsMax: 10_000_000,
  scanLengthMax: 1,
  // One hash tag per record at most: keys spread over every partition (no scans here).
  tags: 10_000,
  seed: 1,
  loadConcurrency: 4,
};

export interface RoundTarget extends TargetReport {
  readonly round: number;
  /** Partitions led by each KeyVa node when the measured phases began (replicated KeyVa only). */
  readonly leadersPerNode: Record<string, number> | null;
  /** Wall-clock ms (Date.now) from before the system's start to after its stop: no two systems' spans overlap. */
  readonly span: { readonly from: number; readonly to: number };
}

export type RoundResult = WorkloadResult<Phase> & {
  readonly round: number;
  /** Replicated KeyVa: partitions whose leader changed (or had none) between the start and the end of the phase. */
  readonly leaderChanges: number | null;
  /** Replicated KeyVa, put phase: Raft work of the whole cluster per write proposal (warm-up included), from the nodes' keyva_raft_* metrics. */
  readonly raftPerWrite: RaftWorkPerWrite | null;
};

export interface RaftWorkPerWrite {
  readonly messages: number;
  /** Frames written to peers' Raft streams (each one gRPC message carrying a batch of Raft messages). */
  readonly batches: number;
  readonly readies: number;
  readonly syncedWrites: number;
  readonly turns: number;
}

function raftPerWrite(before: Record<string, number> | undefined, after: Record<string, number> | undefined): RaftWorkPerWrite | null {
  if (before === undefined || after === undefined) return null;
  const delta = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
  const writes = delta('proposals');
  if (writes <= 0) return null;
  const per = (k: string): number => Math.round((delta(k) / writes) * 100) / 100;
  return { messages: per('messages_sent'), batches: per('batches_sent'), readies: per('readies'), syncedWrites: per('synced_writes'), turns: per('turns') };
}

export interface PhaseSummary extends FullLatencySummary {
  readonly target: TargetName;
  readonly label: string;
  readonly phase: Phase;
  readonly rounds: number;
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  /** All rounds' operations over all rounds' measured seconds. */
  readonly opsPerSec: number;
  readonly opsPerSecByRound: readonly number[];
  readonly p99UsByRound: readonly number[];
  /** Means over the rounds, in cores. */
  readonly clientCores: number;
  readonly serverCores: number | null;
  /** Server CPU per operation (µs): the rounds' server CPU seconds over their operations; null without server CPU figures. */
  readonly serverCpuUsPerOp: number | null;
  readonly otherCores: number | null;
  /** HDR compressed base64 of every round's latencies. */
  readonly histogram: string;
}

export interface Comparison {
  readonly phase: Phase;
  /** KeyVa ops/s over etcd ops/s, all rounds together. */
  readonly throughputRatio: number;
  /** The same per round (one round's KeyVa figure over the same round's etcd figure). */
  readonly throughputRatioByRound: readonly number[];
  readonly p50Ratio: number;
  /** KeyVa p99 over etcd p99: at most 1.0 means "no worse". */
  readonly p99Ratio: number;
  readonly target: { readonly throughputMin: number; readonly p99RatioMax: number };
  readonly throughputMet: boolean;
  readonly p99Met: boolean;
}

export interface ReplicatedReport {
  readonly benchmark: 'replicated';
  readonly schema: 1;
  readonly date: string;
  readonly machine: YcsbReport['machine'];
  readonly options: ReplicatedOptions;
  readonly targets: RoundTarget[];
  readonly results: RoundResult[];
  readonly summary: PhaseSummary[];
  readonly comparisons: Comparison[];
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length);

/** One summary per system and phase over every round (histograms merged). */
export function summarize(targets: readonly RoundTarget[], results: readonly RoundResult[]): PhaseSummary[] {
  const out: PhaseSummary[] = [];
  for (const name of [...new Set(results.map((r) => r.target))]) {
    for (const phase of [...new Set(results.map((r) => r.workload))]) {
      const rs = results.filter((r) => r.target === name && r.workload === phase).sort((a, b) => a.round - b.round);
      if (rs.length === 0) continue;
      const h = mergeHistograms(rs.map((r) => r.all.histogram).filter((x) => x !== ''));
      const seconds = rs.reduce((s, r) => s + r.seconds, 0);
      const ops = rs.reduce((s, r) => s + r.ops, 0);
      // Rounds with server CPU figures (none when benching a node started elsewhere).
      const withCpu = rs.flatMap((r) => (r.serverCpu ? [{ ops: r.ops, cpu: r.serverCpu }] : []));
      const server = withCpu.map((r) => r.cpu.cores);
      const cpuOps = withCpu.reduce((n, r) => n + r.ops, 0);
      const cpuSec = withCpu.reduce((n, r) => n + r.cpu.cpuSec, 0);
      const other = rs.map((r) => r.machineCpu?.otherCores).filter((x) => x !== undefined);
      out.push({
        target: name,
        label: targets.find((t) => t.name === name)?.label ?? name,
        phase,
        rounds: rs.length,
        ops,
        errors: rs.reduce((s, r) => s + r.errors, 0),
        seconds,
        opsPerSec: seconds > 0 ? ops / seconds : 0,
        opsPerSecByRound: rs.map((r) => r.opsPerSec),
        p99UsByRound: rs.map((r) => r.all.p99Us),
        ...summarizeFull(h),
        clientCores: mean(rs.map((r) => r.clientCpu.cores)),
        serverCores: server.length > 0 ? mean(server) : null,
        serverCpuUsPerOp: cpuOps > 0 ? cpuUsPerOp(cpuSec, cpuOps) : null,
        otherCores: other.length > 0 ? mean(other) : null,
        histogram: h.totalCount === 0 ? '' : encodeHistogram(h),
      });
    }
  }
  return out;
}

/** KeyVa against etcd per phase, with the targets and whether they were met. */
export function compare(summary: readonly PhaseSummary[], results: readonly RoundResult[]): Comparison[] {
  const out: Comparison[] = [];
  for (const phase of PHASES) {
    const k = summary.find((s) => s.target === 'keyva' && s.phase === phase);
    const e = summary.find((s) => s.target === 'etcd' && s.phase === phase);
    if (!k || !e || e.opsPerSec <= 0 || e.p99Us <= 0 || e.p50Us <= 0) continue;
    const byRound: number[] = [];
    for (const round of [...new Set(results.map((r) => r.round))].sort((a, b) => a - b)) {
      const kr = results.find((r) => r.round === round && r.target === 'keyva' && r.workload === phase);
      const er = results.find((r) => r.round === round && r.target === 'etcd' && r.workload === phase);
      if (kr && er && er.opsPerSec > 0) byRound.push(kr.opsPerSec / er.opsPerSec);
    }
    const target = TARGETS[phase];
    const throughputRatio = k.opsPerSec / e.opsPerSec;
    const p99Ratio = k.p99Us / e.p99Us;
    out.push({
      phase,
      throughputRatio,
      throughputRatioByRound: byRound,
      p50Ratio: k.p50Us / e.p50Us,
      p99Ratio,
      target,
      throughputMet: throughputRatio >= target.throughputMin,
      p99Met: p99Ratio <= target.p99RatioMax,
    });
  }
  return out;
}

/** The systems of round `r` (0-based) in the order they run: alternating, so neither always goes first. */
export function roundOrder(r: number, systems: readonly TargetName[] = SYSTEMS): TargetName[] {
  return r % 2 === 0 ? [...systems] : [...systems].reverse();
}

let current: Live | undefined;

/** Stops the system running now (an interrupted run): its servers and temp dirs go. */
export async function stopCurrent(): Promise<void> {
  const L = current;
  current = undefined;
  if (L) await stopLive(L);
}

export async function runReplicated(o: ReplicatedOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<ReplicatedReport> {
  const machine = machineInfo();
  const date = new Date().toISOString();
  const targets: RoundTarget[] = [];
  const results: RoundResult[] = [];
  const who = {
    keyva: `KeyVa ${o.keyvaNodes} nodes RF ${o.keyvaReplicationFactor ?? Math.min(3, o.keyvaNodes)} (${o.keyvaPartitions ?? 'default'} partitions)`,
    etcd: `etcd ${o.etcdMembers} members`,
  } as Partial<Record<TargetName, string>>;
  log(
    `replicated: ${o.systems.map((s) => who[s] ?? s).join(' vs ')}; ` +
      `${o.records.toLocaleString('en-US')} records of ${o.valueSize} B, ${o.distribution}, ${o.clients} client processes x ${Math.ceil(o.concurrency / o.clients)} in flight; ` +
      `phases ${o.phases.join(', ')}, ${o.durationMs / 1000} s each (+${o.warmupMs / 1000} s warm-up); ${o.rounds} round(s); load average ${machine.loadAvgAtStart.join(' / ')}`,
  );
  for (let r = 0; r < o.rounds; r++) {
    for (const name of roundOrder(r, o.systems)) {
      log(` round ${r + 1}/${o.rounds}: ${name}`);
      const from = Date.now();
      const { live, report } = await startLive(name, o, log);
      current = live;
      let leaders: Record<string, number> | null = null;
      try {
        const sample = live.target.leaders;
        let before = sample ? await sample() : undefined;
        if (before) {
          leaders = countLeaders(before);
          log(`  partitions led per node: ${JSON.stringify(leaders)}`);
        }
        const totals = live.target.raftTotals;
        for (const phase of o.phases) {
          const raftBefore = totals ? await totals() : undefined;
          const res = await runPhase(live, phase, o, log, phase.padEnd(3));
          const raftAfter = totals ? await totals() : undefined;
          const after = sample ? await sample() : undefined;
          const changes = before && after ? leaderChanges(before, after) : null;
          if (changes) log(`  ${phase}: ${changes} partition(s) changed leader or were leaderless during the phase`);
          const work = phase === 'put' ? raftPerWrite(raftBefore, raftAfter) : null;
          if (work) log(`  ${phase}: Raft work per write, whole cluster: ${JSON.stringify(work)}`);
          results.push({ ...res, round: r + 1, leaderChanges: changes, raftPerWrite: work });
          before = after;
        }
      } finally {
        current = undefined;
        await stopLive(live);
      }
      targets.push({ ...report, round: r + 1, leadersPerNode: leaders, span: { from, to: Date.now() } });
    }
  }
  const summary = summarize(targets, results);
  return {
    benchmark: 'replicated',
    schema: 1,
    date,
    machine,
    options: o,
    targets,
    results,
    summary,
    comparisons: compare(summary, results),
  };
}
