#!/usr/bin/env node
/**
 * Storage-engine micro-benchmark behind ADR 0004. Run: `node bench/src/engine-bench.ts`.
 *
 * (a) raw synced `batch.write` on the calling thread, one at a time (no grouping);
 * (b) `RocksDbEngine.write` with 64 concurrent synced writers (writer thread + group commit);
 * (c) `RocksDbEngine.get` on the main thread, random keys: at MAX_TS (a latest-space point
 *     lookup), of absent keys, and snapshot reads below the newest version (plus a history seek);
 * (d) the cost of sending a batch to the writer thread: structuredClone (postMessage's copy)
 *     versus `encodeBatch` + transfer, per value size;
 * plus the memory engine for reference. Each database lives in a fresh dir under os.tmpdir().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBatch } from '../../node/src/engine/batch-wire.ts';
import { MAX_TS, MemoryEngine, RocksDbEngine, type StorageEngine, type WriteBatch } from '../../node/src/engine/index.ts';
import { createRocksLevel } from '../../node/src/engine/rocksdb-binding.ts';

const DURATION_MS = 3000;
const WRITERS = 64;
const KEYS = 10_000;
const VALUE_BYTES = 100;
const NOW = Date.now();

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function value(bytes: number): Buffer {
  return Buffer.alloc(bytes, 0x61);
}

function batchFor(i: number, commitTs: bigint, sync: boolean, valueBytes = VALUE_BYTES): WriteBatch {
  return {
    commitTs,
    nowMs: NOW,
    sync,
    mutations: [{ type: 'put', hash: BigInt(i % 1024), key: Buffer.from(`key${i % KEYS}`), value: value(valueBytes), expiresAtMs: 0 }],
  };
}

async function rawSyncedWrites(): Promise<{ opsPerSec: number; msPerWrite: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-engine-bench-'));
  const db = createRocksLevel(dir);
  await db.open({ createIfMissing: true, compression: true, cacheSize: 64 << 20, filterPolicy: 'bloomfilter:10:false' });
  const v = value(VALUE_BYTES);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < DURATION_MS) {
    const b = db.batch();
    b.put(Buffer.from(`key${n % KEYS}`), v);
    b._writeSync({ sync: true });
    b._closeSync();
    n++;
  }
  const ms = performance.now() - t0;
  await db.close();
  rmSync(dir, { recursive: true, force: true });
  return { opsPerSec: (n * 1000) / ms, msPerWrite: ms / n };
}

async function concurrentWrites(engine: StorageEngine, sync: boolean): Promise<{ opsPerSec: number; batches: number }> {
  let ts = 1_000_000n;
  let i = 0;
  let done = 0;
  const t0 = performance.now();
  const writer = async (): Promise<void> => {
    while (performance.now() - t0 < DURATION_MS) {
      const r = await engine.write(batchFor(i++, ts++, sync));
      if (!r.ok) throw new Error('unexpected condition failure');
      done++;
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  return { opsPerSec: (done * 1000) / (performance.now() - t0), batches: done };
}

type GetCase = 'hit' | 'miss' | 'history';

/**
 * Gets of random keys, one at a time. `hit`: at MAX_TS (served by the latest space); `miss`:
 * absent keys; `history`: a snapshot read below each key's newest version (latest-space lookup,
 * then a seek of the version history). Every key is written twice (versions 5+k and 20005+k).
 */
async function gets(engine: StorageEngine, kind: GetCase = 'hit'): Promise<{ opsPerSec: number }> {
  for (const base of [5n, 20_005n]) {
    for (let k = 0; k < KEYS; k += 500) {
      const mutations = [];
      for (let j = k; j < Math.min(KEYS, k + 500); j++) mutations.push(...batchFor(j, 0n, false).mutations);
      await engine.write({ commitTs: base + BigInt(k), nowMs: NOW, sync: false, mutations });
    }
  }
  const readTs = kind === 'history' ? 20_000n : MAX_TS;
  let n = 0;
  let found = 0;
  let x = 12345;
  const t0 = performance.now();
  while (performance.now() - t0 < DURATION_MS) {
    for (let j = 0; j < 1000; j++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      const i = x % KEYS;
      const v = await engine.get(BigInt(i % 1024), Buffer.from(kind === 'miss' ? `nokey${i}` : `key${i}`), readTs, NOW);
      if (v !== undefined) found++;
      n++;
    }
  }
  if (found !== (kind === 'miss' ? 0 : n)) throw new Error(`unexpected ${kind} results: ${found} found of ${n}`);
  return { opsPerSec: (n * 1000) / (performance.now() - t0) };
}

/** Cost of getting a batch to the writer thread: cloning it vs encoding it for transfer. */
function sendCost(valueBytes: number): { cloneUs: number; encodeUs: number } {
  const b = batchFor(1, 1n, true, valueBytes);
  const iters = valueBytes >= 1 << 20 ? 200 : 20_000;
  let t0 = performance.now();
  for (let i = 0; i < iters; i++) structuredClone(b);
  const cloneUs = ((performance.now() - t0) * 1000) / iters;
  t0 = performance.now();
  for (let i = 0; i < iters; i++) {
    const ab = encodeBatch(b);
    structuredClone(ab, { transfer: [ab] });
  }
  return { cloneUs, encodeUs: ((performance.now() - t0) * 1000) / iters };
}

async function withRocks<T>(fn: (e: RocksDbEngine) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-engine-bench-'));
  const e = new RocksDbEngine({ path: dir, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 64 << 20 });
  await e.open();
  try {
    return await fn(e);
  } finally {
    await e.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const out: string[] = [];
const log = (s: string): void => {
  out.push(s);
  process.stdout.write(`${s}\n`);
};

log(`# engine-bench ${new Date().toISOString()} — node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), db under ${tmpdir()}`);
log(`# ${DURATION_MS} ms per case, ${VALUE_BYTES} B values, ${KEYS} keys`);

const raw = await rawSyncedWrites();
log(`(a) raw synced batch.write, 1 at a time, main thread: ${fmt(raw.opsPerSec)} writes/s (${raw.msPerWrite.toFixed(3)} ms each, thread blocked throughout)`);

const synced = await withRocks(async (e) => {
  const r = await concurrentWrites(e, true);
  return { ...r, counters: e.writerCounters };
});
log(
  `(b) RocksDbEngine.write, ${WRITERS} concurrent synced writers: ${fmt(synced.opsPerSec)} batches/s; ` +
    `${fmt(synced.counters.groups)} group commits for ${fmt(synced.counters.batches)} batches ` +
    `(avg ${(synced.counters.batches / Math.max(1, synced.counters.groups)).toFixed(1)}, peak ${synced.counters.groupBatchesPeak} per group)`,
);

const unsynced = await withRocks(async (e) => {
  const r = await concurrentWrites(e, false);
  return { ...r, counters: e.writerCounters };
});
log(
  `    same, sync: false: ${fmt(unsynced.opsPerSec)} batches/s (avg ${(unsynced.counters.batches / Math.max(1, unsynced.counters.groups)).toFixed(1)} per group)`,
);

const rocksGets = await withRocks((e) => gets(e));
log(`(c) RocksDbEngine.get at MAX_TS, random of ${KEYS} keys (memtable-resident): ${fmt(rocksGets.opsPerSec)} gets/s`);
const rocksMisses = await withRocks((e) => gets(e, 'miss'));
log(`    same, absent keys: ${fmt(rocksMisses.opsPerSec)} gets/s`);
const rocksHistory = await withRocks((e) => gets(e, 'history'));
log(`    same, snapshot reads below the newest version (history seek): ${fmt(rocksHistory.opsPerSec)} gets/s`);

for (const bytes of [100, 4096, 65536, 1 << 20]) {
  const c = sendCost(bytes);
  log(`(d) 1-put batch with a ${bytes} B value: structuredClone ${c.cloneUs.toFixed(1)} µs vs encodeBatch+transfer ${c.encodeUs.toFixed(1)} µs`);
}

const mem = new MemoryEngine();
await mem.open();
const memWrites = await concurrentWrites(mem, true);
const memGets = await gets(mem);
await mem.close();
log(`(ref) MemoryEngine: ${fmt(memWrites.opsPerSec)} writes/s with ${WRITERS} writers, ${fmt(memGets.opsPerSec)} gets/s`);
