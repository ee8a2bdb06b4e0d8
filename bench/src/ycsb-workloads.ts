/**
 * The YCSB core workloads (A-F) as data, the per-operation chooser, and the key layout.
 *
 * Keys: record `k` is `{t<k mod tags>}:user<k, 12 digits>`. The hash tag spreads records over
 * `tags` tags (so over the partitions), and inside a tag records sort by number, so workload
 * E's short scans (a start key, then up to `scanLengthMax` records in key order) stay inside
 * one tag, which is one partition in KeyVa (DESIGN §3) and one key prefix in etcd.
 */
import type { Rng } from './prng.ts';
import { type NumberGenerator, ScrambledZipfianGenerator, SkewedLatestGenerator, UniformGenerator } from './zipfian.ts';

export type OpType = 'read' | 'update' | 'insert' | 'scan' | 'rmw';
export const OP_TYPES: readonly OpType[] = ['read', 'update', 'insert', 'scan', 'rmw'];
export type WorkloadName = 'A' | 'B' | 'C' | 'D' | 'E' | 'F';
export const WORKLOAD_NAMES: readonly WorkloadName[] = ['A', 'B', 'C', 'D', 'E', 'F'];
/** Single-operation workloads of the replicated suite (not YCSB's): only puts, only gets. */
export type MicroWorkloadName = 'put' | 'get';
/** Anything a client process can run. */
export type RunnableWorkload = WorkloadName | MicroWorkloadName;
export type Distribution = 'zipfian' | 'uniform';

export interface Workload {
  readonly name: RunnableWorkload;
  readonly title: string;
  readonly mix: Readonly<Partial<Record<OpType, number>>>;
  /** The request distribution YCSB specifies; `latest` (D) is kept even when uniform is asked for. */
  readonly distribution: 'default' | 'latest';
}

export const WORKLOADS: Readonly<Record<WorkloadName, Workload>> = {
  A: { name: 'A', title: 'update heavy: 50% read, 50% update', mix: { read: 0.5, update: 0.5 }, distribution: 'default' },
  B: { name: 'B', title: 'read mostly: 95% read, 5% update', mix: { read: 0.95, update: 0.05 }, distribution: 'default' },
  C: { name: 'C', title: 'read only: 100% read', mix: { read: 1 }, distribution: 'default' },
  D: { name: 'D', title: 'read latest: 95% read, 5% insert', mix: { read: 0.95, insert: 0.05 }, distribution: 'latest' },
  E: { name: 'E', title: 'short ranges: 95% scan (1-100 records, inside a hash tag), 5% insert', mix: { scan: 0.95, insert: 0.05 }, distribution: 'default' },
  F: { name: 'F', title: 'read-modify-write: 50% read, 50% read-modify-write', mix: { read: 0.5, rmw: 0.5 }, distribution: 'default' },
};

export const MICRO_WORKLOADS: Readonly<Record<MicroWorkloadName, Workload>> = {
  put: { name: 'put', title: 'puts: 100% update of a loaded record', mix: { update: 1 }, distribution: 'default' },
  get: { name: 'get', title: 'gets: 100% read of a loaded record', mix: { read: 1 }, distribution: 'default' },
};

export function workloadOf(name: RunnableWorkload): Workload {
  return name === 'put' || name === 'get' ? MICRO_WORKLOADS[name] : WORKLOADS[name];
}

export function parseWorkloads(s: string): WorkloadName[] {
  const out = s
    .toUpperCase()
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  for (const w of out) if (!(WORKLOAD_NAMES as readonly string[]).includes(w)) throw new Error(`unknown workload '${w}' (A-F)`);
  return out as WorkloadName[];
}

/** Picks the next operation type by the workload's proportions (YCSB DiscreteGenerator). */
export function opChooser(w: Workload, rng: Rng): () => OpType {
  const entries = OP_TYPES.filter((t) => (w.mix[t] ?? 0) > 0).map((t) => [t, w.mix[t] as number] as const);
  const total = entries.reduce((s, [, p]) => s + p, 0);
  return () => {
    let u = rng.nextDouble() * total;
    for (const [t, p] of entries) {
      if (u < p) return t;
      u -= p;
    }
    return (entries[entries.length - 1] as readonly [OpType, number])[0];
  };
}

export interface KeyLayout {
  readonly tags: number;
}

export function tagOf(k: number, layout: KeyLayout): string {
  return `t${k % layout.tags}`;
}

export function keyOf(k: number, layout: KeyLayout): string {
  return `{${tagOf(k, layout)}}:user${String(k).padStart(12, '0')}`;
}

/** The first key after every key of `tag` (the prefix `{tag}:` with its last byte incremented). */
export function tagEnd(tag: string): string {
  return `{${tag}};`;
}

/**
 * Key choice for one client: `distribution` over the `records` loaded records (YCSB's key
 * chooser), or `latest` over everything inserted so far (workload D).
 */
export function keyChooser(w: Workload, distribution: Distribution, records: number, latest: () => number, rng: Rng): NumberGenerator {
  if (w.distribution === 'latest') return new SkewedLatestGenerator(rng, latest);
  return distribution === 'uniform' ? new UniformGenerator(rng, 0, records - 1) : new ScrambledZipfianGenerator(rng, 0, records - 1);
}

/** Incompressible values (RocksDB compresses blocks): slices of a random buffer at random offsets. */
export function valueSource(valueSize: number, rng: Rng, poolBytes = 4 << 20): () => Buffer {
  const pool = Buffer.alloc(Math.max(poolBytes, valueSize * 4));
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE(rng.nextUint32(), i);
  const span = pool.length - valueSize;
  return () => {
    const o = rng.nextInt(span + 1);
    return pool.subarray(o, o + valueSize);
  };
}
