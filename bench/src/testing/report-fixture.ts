/** A small synthetic YCSB report for the plot and report tests (no servers). */
import { encodeHistogram, newHistogram } from '../histogram.ts';
import { mergeWorkerResults, YCSB_DEFAULTS, type YcsbReport } from '../ycsb.ts';
import { describeTarget, type TargetName } from '../ycsb-targets.ts';
import type { WorkerResult } from '../ycsb-worker.ts';
import type { OpType, WorkloadName } from '../ycsb-workloads.ts';

export function workerResult(i: number, ops: number, latencyUs: number, opTypes: readonly OpType[], seconds = 3): WorkerResult {
  const h = newHistogram();
  const byOp: WorkerResult['byOp'] = {};
  for (const t of opTypes) {
    const oh = newHistogram();
    for (let k = 0; k < ops / opTypes.length; k++) oh.recordValue(latencyUs + (k % 50));
    byOp[t] = { count: Math.floor(ops / opTypes.length), errors: 0, histogram: encodeHistogram(oh) };
  }
  for (let k = 0; k < ops; k++) h.recordValue(latencyUs + (k % 50));
  const perSec = Math.floor(ops / seconds);
  return {
    workerIndex: i,
    seconds,
    ops,
    errors: 0,
    notFound: 0,
    insertsIssued: 0,
    byOp,
    all: { count: ops, errors: 0, histogram: encodeHistogram(h) },
    series: {
      ops: Array.from({ length: seconds }, (_, s) => (s === seconds - 1 ? ops - perSec * (seconds - 1) : perSec)),
      errors: new Array<number>(seconds).fill(0),
    },
    cpuSec: 0.5 * seconds,
    errorSamples: [],
  };
}

export function fixtureReport(scale = 1, names: readonly TargetName[] = ['keyva', 'etcd', 'redis-always']): YcsbReport {
  const o = {
    ...YCSB_DEFAULTS,
    targets: [...names],
    workloads: ['A', 'C', 'E'] as WorkloadName[],
    records: 1000,
    durationMs: 3000,
  };
  const targets = o.targets.map((name, i) => ({
    ...describeTarget(name, o),
    version: 'test',
    clients: 2,
    serverProcesses: name === 'etcd' || name === 'keyva-3' ? 3 : 1,
    load: { records: 1000, errors: 0, seconds: 1, recordsPerSec: 1000 },
    rssAfterLoadBytes: (100 + i) * 2 ** 20,
  }));
  const speed: Record<string, number> = { keyva: 3000 * scale, 'keyva-3': 1200 * scale, etcd: 1500, 'redis-always': 6000, echo: 12_000 };
  const results = [];
  const skipped = [];
  for (const t of o.targets)
    for (const w of o.workloads) {
      if (t === 'redis-always' && w === 'E') {
        skipped.push({ target: t, workload: w, reason: 'no scan' });
        continue;
      }
      const ops: OpType[] = w === 'A' ? ['read', 'update'] : w === 'C' ? ['read'] : ['scan', 'insert'];
      const parts = [0, 1].map((i) => workerResult(i, Math.round(speed[t]! * 1.5), t === 'etcd' ? 20_000 : 2_000, ops));
      results.push({
        ...mergeWorkerResults(
          {
            target: t,
            workload: w,
            distribution: 'zipfian',
            clients: 2,
            concurrency: 64,
            serverCpu: { cpuSec: 3, cores: 1 },
            serverRss: { maxBytes: 200 * 2 ** 20, endBytes: 190 * 2 ** 20 },
            machineCpu: null,
          },
          parts,
        ),
        machineCpu: { cores: 2, otherCores: 0 },
      });
    }
  return {
    benchmark: 'ycsb',
    schema: 1,
    date: '2026-01-01T00:00:00.000Z',
    machine: { nproc: 2, memoryGiB: 24, cpuModel: 'test', node: 'v24.21.0', kernel: 'test', loadAvgAtStart: [0, 0, 0] },
    options: o,
    targets,
    results,
    skipped,
  };
}
