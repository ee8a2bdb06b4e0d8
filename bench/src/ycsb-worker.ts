/**
 * One YCSB client process. The coordinator (ycsb.ts) forks several of these so the load
 * generator is not the bottleneck; each runs a closed loop of `concurrency` operations in
 * flight against one target, records HDR histograms per operation type and a per-second
 * series, and sends them back encoded. Protocol (IPC messages):
 *
 *   -> {type:'init', spec, valueSize, seed, workerIndex}      <- {type:'ready'} | {type:'error'}
 *   -> {type:'load', from, to, tags, concurrency}             <- {type:'loaded', records, errors, seconds}
 *   -> {type:'run', params: RunParams}                        <- {type:'progress', ops, errors}* then {type:'done', result}
 *   -> {type:'close'}                                         (exits)
 */
import type * as hdr from 'hdr-histogram-js';
import { encodeHistogram, newHistogram } from './histogram.ts';
import { seededRng } from './prng.ts';
import { type Driver, openDriver } from './ycsb-drivers.ts';
import type { TargetSpec } from './ycsb-targets.ts';
import { type Distribution, keyChooser, keyOf, type OpType, opChooser, type RunnableWorkload, tagOf, valueSource, workloadOf } from './ycsb-workloads.ts';

export interface RunParams {
  readonly workload: RunnableWorkload;
  readonly distribution: Distribution;
  /** Records loaded (key choice is over these). */
  readonly records: number;
  /** The first record number of this run's inserts (records plus earlier runs' inserts). */
  readonly insertStart: number;
  readonly workerIndex: number;
  readonly workers: number;
  /** Operations in flight in this process. */
  readonly concurrency: number;
  /** Wall-clock ms (Date.now) at which every process starts its warm-up, so windows line up. */
  readonly startAtMs: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Bound on operations measured by this process. */
  readonly opsMax: number;
  readonly scanLengthMax: number;
  readonly tags: number;
  readonly valueSize: number;
  readonly seed: number;
}

export interface OpStats {
  readonly count: number;
  readonly errors: number;
  readonly histogram: string;
}

export interface WorkerResult {
  readonly workerIndex: number;
  readonly seconds: number;
  readonly ops: number;
  readonly errors: number;
  readonly notFound: number;
  /** Inserts this process issued (measured or not), so the next run's inserts do not reuse numbers. */
  readonly insertsIssued: number;
  readonly byOp: Partial<Record<OpType, OpStats>>;
  /** Every operation (a read-modify-write counts once). */
  readonly all: OpStats;
  /** Per second of the measured window: operations completed and errors. */
  readonly series: { readonly ops: number[]; readonly errors: number[] };
  readonly cpuSec: number;
  readonly errorSamples: string[];
}

export async function runWorkload(driver: Driver, p: RunParams, onProgress?: (ops: number, errors: number) => void): Promise<WorkerResult> {
  const w = workloadOf(p.workload);
  const rng = seededRng(p.seed * 1000 + p.workerIndex * 7 + p.workload.charCodeAt(0));
  const nextOp = opChooser(w, rng);
  const layout = { tags: p.tags };
  // Inserts of this process are record numbers insertStart + workerIndex + workers * j. `acked`
  // counts the j's acknowledged without a gap (YCSB's AcknowledgedCounterGenerator), so
  // 'latest' (D) never reads an insert still in flight.
  let insertsIssued = 0;
  let acked = 0;
  const ackedSet = new Set<number>();
  const ownKey = (j: number) => p.insertStart + p.workerIndex + p.workers * j;
  const latest = () => p.insertStart - 1 + p.workers * acked;
  const latestChooser = keyChooser(w, p.distribution, p.records, latest, rng);
  // A record number past the loaded ones maps to this process's own insert of the same rank,
  // so reads of new records hit records that exist (other processes' inserts may lag).
  const chooser = {
    next: () => {
      const k = latestChooser.next();
      return k < p.insertStart ? k : ownKey(Math.min(acked - 1, Math.floor((k - p.insertStart) / p.workers)));
    },
  };
  const value = valueSource(p.valueSize, rng);

  const hists = new Map<OpType, { h: hdr.Histogram; count: number; errors: number }>();
  const stat = (t: OpType) => {
    let s = hists.get(t);
    if (!s) {
      s = { h: newHistogram(), count: 0, errors: 0 };
      hists.set(t, s);
    }
    return s;
  };
  const all = { h: newHistogram(), count: 0, errors: 0 };
  const buckets = Math.max(1, Math.ceil(p.durationMs / 1000));
  const seriesOps = new Array<number>(buckets).fill(0);
  const seriesErr = new Array<number>(buckets).fill(0);
  let notFound = 0;
  const errorSamples: string[] = [];

  const now = () => performance.timeOrigin + performance.now();
  const measureFrom = p.startAtMs + p.warmupMs;
  const end = measureFrom + p.durationMs;
  let measuring = false;
  let started = 0;

  const timed = async <T>(t: OpType, fn: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    try {
      const r = await fn();
      if (measuring) {
        const st = stat(t);
        st.count++;
        st.h.recordValue(Math.max(1, Math.round((performance.now() - s) * 1000)));
      }
      return r;
    } catch (e) {
      if (measuring) stat(t).errors++;
      throw e;
    }
  };

  const doOp = async (t: OpType): Promise<void> => {
    switch (t) {
      case 'read': {
        const k = chooser.next();
        if (!(await timed('read', () => driver.read(keyOf(k, layout)))) && measuring) notFound++;
        return;
      }
      case 'update':
        await timed('update', () => driver.update(keyOf(chooser.next(), layout), value()));
        return;
      case 'insert': {
        const j = insertsIssued++;
        await timed('insert', () => driver.insert(keyOf(ownKey(j), layout), value()));
        ackedSet.add(j);
        while (ackedSet.delete(acked)) acked++;
        return;
      }
      case 'scan': {
        const k = chooser.next();
        const len = 1 + rng.nextInt(p.scanLengthMax);
        await timed('scan', () => driver.scan(tagOf(k, layout), keyOf(k, layout), len));
        return;
      }
      case 'rmw': {
        const key = keyOf(chooser.next(), layout);
        await timed('rmw', async () => {
          if (!(await timed('read', () => driver.read(key))) && measuring) notFound++;
          await timed('update', () => driver.update(key, value()));
        });
        return;
      }
    }
  };

  const wait = p.startAtMs - now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  const progress = onProgress ? setInterval(() => onProgress(all.count, all.errors), 250) : undefined;

  await Promise.all(
    Array.from({ length: p.concurrency }, async () => {
      for (;;) {
        const at = now();
        if (at >= end) return;
        if (!measuring && at >= measureFrom) {
          measuring = true;
          cpu0 = process.cpuUsage();
          t0 = performance.now();
        }
        if (measuring && started >= p.opsMax) return;
        const wasMeasuring = measuring;
        if (wasMeasuring) started++;
        const s = performance.now();
        try {
          await doOp(nextOp());
          if (wasMeasuring) {
            all.count++;
            all.h.recordValue(Math.max(1, Math.round((performance.now() - s) * 1000)));
            seriesOps[Math.min(buckets - 1, Math.floor((now() - measureFrom) / 1000))]! += 1;
          }
        } catch (e) {
          if (wasMeasuring) {
            all.errors++;
            seriesErr[Math.min(buckets - 1, Math.max(0, Math.floor((now() - measureFrom) / 1000)))]! += 1;
            if (errorSamples.length < 3) errorSamples.push(String((e as Error).message ?? e).slice(0, 300));
          }
        }
      }
    }),
  );
  if (progress) clearInterval(progress);
  const seconds = measuring ? (performance.now() - t0) / 1000 : 0;
  const cpu = process.cpuUsage(cpu0);
  const byOp: Partial<Record<OpType, OpStats>> = {};
  for (const [t, s] of hists) byOp[t] = { count: s.count, errors: s.errors, histogram: encodeHistogram(s.h) };
  return {
    workerIndex: p.workerIndex,
    seconds,
    ops: all.count,
    errors: all.errors,
    notFound,
    insertsIssued,
    byOp,
    all: { count: all.count, errors: all.errors, histogram: encodeHistogram(all.h) },
    series: { ops: seriesOps, errors: seriesErr },
    cpuSec: measuring ? (cpu.user + cpu.system) / 1e6 : 0,
    errorSamples,
  };
}

/** Loads records [from, to) in batches, `concurrency` batches in flight. */
export async function loadRecords(
  driver: Driver,
  o: { from: number; to: number; tags: number; valueSize: number; concurrency: number; seed: number },
): Promise<{ records: number; errors: number; seconds: number; errorSamples: string[] }> {
  const value = valueSource(o.valueSize, seededRng(o.seed));
  const layout = { tags: o.tags };
  let next = o.from;
  let records = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < o.to) {
        const from = next;
        const to = Math.min(o.to, from + driver.loadBatch);
        next = to;
        const entries = [];
        for (let k = from; k < to; k++) entries.push([keyOf(k, layout), value()] as const);
        // A failed batch is retried a few times: the run phase needs the records there.
        for (let attempt = 0; ; attempt++) {
          try {
            await driver.load(entries);
            records += entries.length;
            break;
          } catch (e) {
            if (errorSamples.length < 3) errorSamples.push(String((e as Error).message ?? e).slice(0, 300));
            if (attempt >= 4) {
              errors += entries.length;
              break;
            }
            await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
          }
        }
      }
    }),
  );
  return { records, errors, seconds: (performance.now() - t0) / 1000, errorSamples };
}

type Msg =
  | { type: 'init'; spec: TargetSpec; valueSize: number }
  | { type: 'load'; from: number; to: number; tags: number; valueSize: number; concurrency: number; seed: number }
  | { type: 'run'; params: RunParams }
  | { type: 'close' };

if (import.meta.main && process.send) {
  let driver: Driver | undefined;
  // The coordinator may be gone (interrupted): then there is no one to answer, and no error to raise.
  const send = (m: unknown) => {
    if (process.connected) process.send?.(m, undefined, undefined, () => undefined);
  };
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: Msg) => {
    const handle = async () => {
      switch (m.type) {
        case 'init':
          driver = await openDriver(m.spec, m.valueSize);
          send({ type: 'ready' });
          return;
        case 'load':
          if (!driver) throw new Error('not initialised');
          send({ type: 'loaded', ...(await loadRecords(driver, m)) });
          return;
        case 'run':
          if (!driver) throw new Error('not initialised');
          send({ type: 'done', result: await runWorkload(driver, m.params, (ops, errors) => send({ type: 'progress', ops, errors })) });
          return;
        case 'close':
          await driver?.close().catch(() => undefined);
          process.exit(0);
      }
    };
    handle().catch((e: unknown) => send({ type: 'error', message: (e as Error).stack ?? String(e) }));
  });
}
