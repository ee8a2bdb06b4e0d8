/**
 * The rebalancing benchmark's client side: the records (load phase), then a steady closed-loop
 * load through the streamed SDK (a fixed number of operations in flight, reads and updates of
 * loaded records, uniform key choice) whose latencies go into one HDR histogram per phase
 * (`steady`, `move`; none while warming up), and the check that no acknowledged write was lost.
 *
 * Every in-flight slot owns its own keys (index ≡ slot mod concurrency), so writes to a key are
 * sequential and the last acknowledged value of each key is known exactly. A write that failed
 * (outcome unknown) may or may not be there: the value read back must be the last acknowledged
 * one or one of the failed writes issued after it. Values carry `<index>:<sequence>;` first.
 */
import type { KeyVa } from '@keyva/client';
import { keyHash } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import type * as hdr from 'hdr-histogram-js';
import { encodeHistogram, type FullLatencySummary, newHistogram, summarizeFull } from './histogram.ts';
import { type Rng, seededRng } from './prng.ts';

export type LoadPhase = 'warmup' | 'steady' | 'move' | 'after' | 'idle';

export interface PhaseStats extends FullLatencySummary {
  readonly phase: LoadPhase;
  readonly seconds: number;
  readonly ops: number;
  readonly opsPerSec: number;
  readonly reads: number;
  readonly updates: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** HDR compressed base64 of every operation's latency in this phase. */
  readonly histogram: string;
}

export interface SecondSample {
  readonly t: number;
  readonly phase: LoadPhase;
  readonly ops: number;
  readonly errors: number;
  readonly p99Us: number;
}

export interface LoadOptions {
  readonly records: number;
  readonly valueSize: number;
  readonly concurrency: number;
  /** Share of reads (the rest are updates). */
  readonly readFraction: number;
  readonly seed: number;
}

export function recordKey(i: number): string {
  return `rb-${i.toString().padStart(9, '0')}`;
}

/** A value of `size` bytes: `<index>:<seq>;` then filler from `noise` (incompressible, so the bytes moved are the bytes stored). */
export function recordValue(i: number, seq: number, size: number, noise: Buffer): Buffer {
  const head = Buffer.from(`${i}:${seq};`);
  const v = Buffer.allocUnsafe(Math.max(size, head.length));
  head.copy(v, 0);
  const off = (i * 7919 + seq * 104_729) % Math.max(1, noise.length - v.length);
  noise.copy(v, head.length, off, off + v.length - head.length);
  return v;
}

export function parseValue(v: Uint8Array): { index: number; seq: number } | undefined {
  const s = Buffer.from(v.subarray(0, 32)).toString('latin1');
  const m = /^(\d+):(\d+);/.exec(s);
  return m ? { index: Number(m[1]), seq: Number(m[2]) } : undefined;
}

export function noiseBlock(seed: number, bytes = 1 << 20): Buffer {
  const rng = seededRng(seed ^ 0x5eed);
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i + 4 <= bytes; i += 4) b.writeUInt32LE(rng.nextUint32(), i);
  return b;
}

const errText = (e: unknown) => (e instanceof KeyVaError ? `${e.code}: ${e.message}` : (e as Error).message);

/**
 * Loads records [0, records) with `concurrency` writes in flight, `batch` records per write
 * (grouped per partition: a batch is atomic within one partition only). Returns the stored
 * (key + value) bytes per partition id. Retries a write a few times (a load write is idempotent).
 */
export async function loadRecords(
  kv: KeyVa,
  o: { records: number; valueSize: number; batch: number; concurrency: number; noise: Buffer },
  progress?: (done: number) => void,
): Promise<Map<number, number>> {
  const map = await kv.partitionMap();
  const bytesByPartition = new Map<number, number>();
  const batches: number[][] = [];
  const pending = new Map<number, number[]>();
  for (let i = 0; i < o.records; i++) {
    const key = recordKey(i);
    const p = map.locate(keyHash(Buffer.from(key))).id;
    bytesByPartition.set(p, (bytesByPartition.get(p) ?? 0) + key.length + o.valueSize);
    const b = pending.get(p) ?? [];
    b.push(i);
    if (b.length >= o.batch) {
      batches.push(b);
      pending.delete(p);
    } else pending.set(p, b);
  }
  batches.push(...pending.values());
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (;;) {
      const b = batches[next++];
      if (b === undefined) return;
      for (let attempt = 1; ; attempt++) {
        try {
          if (b.length === 1) await kv.put(recordKey(b[0] as number), recordValue(b[0] as number, 0, o.valueSize, o.noise));
          else await kv.batchWrite(b.map((i) => ({ type: 'put' as const, key: recordKey(i), value: recordValue(i, 0, o.valueSize, o.noise) })));
          break;
        } catch (e) {
          if (attempt >= 8) throw new Error(`loading records ${b[0]}..: ${errText(e)}`);
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
      }
      done += b.length;
      progress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker));
  return bytesByPartition;
}

interface KeyState {
  acked: number;
  unknown: number[];
}

interface PhaseAcc {
  startMs: number;
  endMs: number;
  h: hdr.Histogram;
  reads: number;
  updates: number;
  errors: number;
  errorSamples: string[];
}

/** The steady client load (see the file comment). */
export class SteadyLoad {
  private readonly kv: KeyVa;
  private readonly o: LoadOptions;
  private readonly noise: Buffer;
  private readonly keys = new Map<number, KeyState>();
  private readonly phases = new Map<LoadPhase, PhaseAcc>();
  private phase: LoadPhase = 'warmup';
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;
  private readonly t0 = performance.now();
  private second = { index: 0, ops: 0, errors: 0, h: newHistogram() };
  readonly seconds: SecondSample[] = [];
  /** Reads whose value named another key (never expected). */
  badReads = 0;

  constructor(kv: KeyVa, o: LoadOptions, noise: Buffer) {
    this.kv = kv;
    this.o = o;
    this.noise = noise;
  }

  start(): void {
    this.running = true;
    this.enter('warmup');
    this.loops = Array.from({ length: this.o.concurrency }, (_, slot) => this.loop(slot, seededRng(this.o.seed * 1000 + slot)));
  }

  /** From now on, latencies go to `phase`'s histogram. */
  enter(phase: LoadPhase): void {
    const now = performance.now();
    const cur = this.phases.get(this.phase);
    if (cur) cur.endMs = now;
    this.phase = phase;
    this.phases.set(phase, { startMs: now, endMs: Number.NaN, h: newHistogram(), reads: 0, updates: 0, errors: 0, errorSamples: [] });
  }

  async stop(): Promise<void> {
    this.enter('idle');
    this.running = false;
    await Promise.all(this.loops);
    this.flushSecond(Number.POSITIVE_INFINITY);
  }

  stats(phase: LoadPhase): PhaseStats {
    const a = this.phases.get(phase);
    if (a === undefined) throw new Error(`no ${phase} phase ran`);
    const seconds = ((Number.isNaN(a.endMs) ? performance.now() : a.endMs) - a.startMs) / 1000;
    const ops = a.h.totalCount;
    return {
      phase,
      seconds,
      ops,
      opsPerSec: seconds > 0 ? ops / seconds : 0,
      reads: a.reads,
      updates: a.updates,
      errors: a.errors,
      errorSamples: a.errorSamples,
      ...summarizeFull(a.h),
      histogram: ops === 0 ? '' : encodeHistogram(a.h),
    };
  }

  /** Keys written at least once by the load. */
  get writtenKeys(): number {
    return this.keys.size;
  }

  private flushSecond(nowSec: number): void {
    while (this.second.index < Math.floor(nowSec) || (nowSec === Number.POSITIVE_INFINITY && this.second.ops + this.second.errors > 0)) {
      const s = this.second;
      this.seconds.push({
        t: s.index,
        phase: this.phaseAt(s.index),
        ops: s.ops,
        errors: s.errors,
        p99Us: s.h.totalCount > 0 ? s.h.getValueAtPercentile(99) : 0,
      });
      this.second = { index: s.index + 1, ops: 0, errors: 0, h: newHistogram() };
      if (nowSec === Number.POSITIVE_INFINITY) break;
    }
  }

  private phaseAt(sec: number): LoadPhase {
    const ms = this.t0 + sec * 1000 + 500;
    for (const [p, a] of this.phases) if (a.startMs <= ms && (Number.isNaN(a.endMs) || ms < a.endMs)) return p;
    return 'idle';
  }

  private record(us: number, read: boolean, error?: unknown): void {
    const a = this.phases.get(this.phase);
    this.flushSecond((performance.now() - this.t0) / 1000);
    if (error !== undefined) {
      this.second.errors++;
      if (a && this.phase !== 'idle') {
        a.errors++;
        if (a.errorSamples.length < 5) a.errorSamples.push(errText(error));
      }
      return;
    }
    this.second.ops++;
    this.second.h.recordValue(Math.max(1, Math.round(us)));
    if (a === undefined || this.phase === 'idle') return;
    a.h.recordValue(Math.max(1, Math.round(us)));
    if (read) a.reads++;
    else a.updates++;
  }

  private async loop(slot: number, rng: Rng): Promise<void> {
    const c = this.o.concurrency;
    const owned = Math.floor((this.o.records - 1 - slot) / c) + 1;
    if (owned <= 0) return;
    while (this.running) {
      const index = slot + c * rng.nextInt(owned);
      const read = rng.nextDouble() < this.o.readFraction;
      const t = performance.now();
      if (read) {
        try {
          const e = await this.kv.get(recordKey(index));
          const v = e === undefined ? undefined : parseValue(e.value);
          if (v === undefined || v.index !== index) this.badReads++;
          this.record((performance.now() - t) * 1000, true);
        } catch (err) {
          this.record(0, true, err);
        }
        continue;
      }
      const seq = ++this.seq;
      const st = this.keys.get(index) ?? { acked: 0, unknown: [] };
      this.keys.set(index, st);
      try {
        await this.kv.put(recordKey(index), recordValue(index, seq, this.o.valueSize, this.noise));
        st.acked = seq;
        st.unknown = [];
        this.record((performance.now() - t) * 1000, false);
      } catch (err) {
        st.unknown.push(seq);
        this.record(0, false, err);
      }
    }
  }

  /**
   * Reads back every key the load wrote (at most `writtenMax`, evenly spread) and `loadedSample`
   * other loaded records: each must hold its last acknowledged value (or a later write whose
   * outcome was unknown). Returns what was checked and the keys that were not as acknowledged.
   */
  async verify(
    loadedSample: number,
    writtenMax: number,
    seed: number,
  ): Promise<{ writtenChecked: number; loadedChecked: number; lost: string[]; unknownOutcomes: number }> {
    const written = [...this.keys.keys()].sort((a, b) => a - b);
    const step = Math.max(1, written.length / writtenMax);
    const check: number[] = [];
    for (let i = 0; i < written.length && check.length < writtenMax; i += step) check.push(written[Math.floor(i)] as number);
    const rng = seededRng(seed);
    const loaded = new Set<number>();
    const untouched = this.o.records - written.length;
    for (let tries = 0; loaded.size < Math.min(loadedSample, untouched) && tries < loadedSample * 20; tries++) {
      const i = rng.nextInt(this.o.records);
      if (!this.keys.has(i)) loaded.add(i);
    }
    const lost: string[] = [];
    const all = [...check, ...loaded];
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = all[next++];
        if (i === undefined) return;
        const st = this.keys.get(i) ?? { acked: 0, unknown: [] };
        let e: Awaited<ReturnType<KeyVa['get']>>;
        for (let attempt = 1; ; attempt++) {
          try {
            e = await this.kv.get(recordKey(i));
            break;
          } catch (err) {
            if (attempt >= 5) throw new Error(`read-back of ${recordKey(i)}: ${errText(err)}`);
            await new Promise((r) => setTimeout(r, 200 * attempt));
          }
        }
        const v = e === undefined ? undefined : parseValue(e.value);
        const ok = v !== undefined && v.index === i && (v.seq === st.acked || st.unknown.includes(v.seq));
        if (!ok) lost.push(`${recordKey(i)} (acknowledged seq ${st.acked}, read ${v === undefined ? 'nothing' : `${v.index}:${v.seq}`})`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const unknownOutcomes = [...this.keys.values()].reduce((n, s) => n + s.unknown.length, 0);
    return { writtenChecked: check.length, loadedChecked: loaded.size, lost, unknownOutcomes };
  }
}
