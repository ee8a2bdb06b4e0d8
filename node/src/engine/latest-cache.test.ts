/**
 * The latest-row cache must be invisible: a cached read answers exactly what storage holds at
 * that moment. Pure property test over every interleaving of write submission, storage write,
 * answer, barriers and reads; then differential tests of a real RocksDB engine with the cache
 * against one without, with reads racing in-flight writes, TTL expiry, range deletes and GC.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { runEngineCompliance } from './compliance.ts';
import { CachingLatestReader, LatestRowCache } from './latest-cache.ts';
import type { KvRow, OrderedKvReader } from './ordered-kv.ts';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { HASH_SPACE_END, MAX_TS, type Mutation, type Timestamp, type VersionedValue } from './types.ts';

const L = 0x6c;

/** A store of raw rows (what RocksDB holds), read synchronously like the binding. */
class MapReader implements OrderedKvReader {
  readonly rows = new Map<string, Buffer>();
  reads = 0;
  range(): KvRow[] {
    throw new Error('not used');
  }
  get(key: Buffer): Buffer | undefined {
    this.reads++;
    return this.rows.get(key.toString('latin1'));
  }
}

type Step =
  | { kind: 'submit'; keys: number[]; del: boolean }
  | { kind: 'apply' }
  | { kind: 'answer' }
  | { kind: 'barrierBegin'; key: number }
  | { kind: 'barrierApply' }
  | { kind: 'barrierEnd' }
  | { kind: 'read'; key: number };

const KEYS = 3;
const keyArb = fc.nat(KEYS - 1);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('submit' as const), keys: fc.uniqueArray(keyArb, { minLength: 1, maxLength: 3 }), del: fc.boolean() }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('apply' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('answer' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('barrierBegin' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('barrierApply' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('barrierEnd' as const) }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('read' as const), key: keyArb }) },
);

const lkey = (k: number) => Buffer.concat([Buffer.from([L]), Buffer.from(`key-${k}`)]);

describe('LatestRowCache (pure)', () => {
  it('a cached read always equals a storage read at the same moment, whatever the interleaving', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 60 }), fc.constantFrom(200, 600, 1 << 20), (steps, bytes) => {
        const store = new MapReader();
        const cache = new LatestRowCache(bytes);
        const reader = new CachingLatestReader(store, cache, L);
        // The writer: FIFO; a write is applied (visible in storage) before it is answered.
        const submitted: { keys: string[]; rows: [string, Buffer | undefined][]; applied: boolean }[] = [];
        // A barrier (range delete) removes keys `from`..KEYS-1.
        const barriers: { from: number; applied: boolean }[] = [];
        let version = 0;
        for (const s of steps) {
          switch (s.kind) {
            case 'submit': {
              version++;
              const rows = s.keys.map((k): [string, Buffer | undefined] => [lkey(k).toString('latin1'), s.del ? undefined : Buffer.from(`v${version}`)]);
              const keys = rows.map(([k]) => k);
              cache.beginWrite(keys);
              submitted.push({ keys, rows, applied: false });
              break;
            }
            case 'apply': {
              const w = submitted.find((x) => !x.applied);
              if (w === undefined) break;
              w.applied = true;
              for (const [k, v] of w.rows) {
                if (v === undefined) store.rows.delete(k);
                else store.rows.set(k, v);
              }
              break;
            }
            case 'answer': {
              const w = submitted[0];
              if (w === undefined || !w.applied) break;
              submitted.shift();
              cache.endWrite(w.keys);
              break;
            }
            case 'barrierBegin':
              cache.beginBarrier();
              barriers.push({ from: s.key, applied: false });
              break;
            case 'barrierApply': {
              const b = barriers.find((x) => !x.applied);
              if (b === undefined) break;
              b.applied = true;
              for (let k = b.from; k < KEYS; k++) store.rows.delete(lkey(k).toString('latin1'));
              break;
            }
            case 'barrierEnd': {
              const b = barriers[0];
              if (b === undefined || !b.applied) break;
              barriers.shift();
              cache.endBarrier();
              break;
            }
            case 'read': {
              const key = lkey(s.key);
              const want = store.rows.get(key.toString('latin1'));
              expect(reader.get(key)?.toString()).toBe(want?.toString());
              break;
            }
          }
        }
        expect(cache.stats().bytes).toBeLessThanOrEqual(bytes);
      }),
      {
        numRuns: 3000,
        examples: [
          // A read during a range delete, before and after storage dropped the row.
          [
            [
              { kind: 'submit', keys: [1], del: false },
              { kind: 'apply' },
              { kind: 'answer' },
              { kind: 'barrierBegin', key: 0 },
              { kind: 'read', key: 1 },
              { kind: 'barrierApply' },
              { kind: 'read', key: 1 },
            ],
            1 << 20,
          ],
          // A read racing a write, before and after storage has it (not answered yet).
          [
            [
              { kind: 'read', key: 2 },
              { kind: 'submit', keys: [2], del: false },
              { kind: 'read', key: 2 },
              { kind: 'apply' },
              { kind: 'read', key: 2 },
              { kind: 'answer' },
              { kind: 'read', key: 2 },
            ],
            1 << 20,
          ],
        ],
      },
    );
  });

  it('serves repeated reads without touching storage, and keys outside the latest space never', () => {
    const store = new MapReader();
    store.rows.set(lkey(1).toString('latin1'), Buffer.from('a'));
    store.rows.set('m-raw', Buffer.from('raw'));
    const cache = new LatestRowCache(1 << 20);
    const reader = new CachingLatestReader(store, cache, L);
    for (let i = 0; i < 5; i++) {
      expect(reader.get(lkey(1))?.toString()).toBe('a');
      expect(reader.get(lkey(2))).toBeUndefined(); // "no row" is cached too
      expect(reader.get(Buffer.from('m-raw'))?.toString()).toBe('raw');
    }
    expect(store.reads).toBe(2 + 5);
    expect(cache.stats()).toMatchObject({ hits: 8, misses: 2, entries: 2 });
  });

  it('stays within its byte bound, keeping recently read rows', () => {
    const store = new MapReader();
    for (let k = 0; k < 1000; k++) store.rows.set(lkey(k).toString('latin1'), Buffer.alloc(100, k));
    const cache = new LatestRowCache(20_000);
    const reader = new CachingLatestReader(store, cache, L);
    for (let k = 0; k < 1000; k++) {
      reader.get(lkey(k));
      reader.get(lkey(0)); // hot
      expect(cache.stats().bytes).toBeLessThanOrEqual(20_000);
    }
    const before = store.reads;
    reader.get(lkey(0));
    reader.get(lkey(999));
    expect(store.reads).toBe(before);
  });

  it('refuses a bad size', () => {
    expect(() => new LatestRowCache(0)).toThrow(/positive integer/);
    expect(() => new LatestRowCache(1.5)).toThrow(/positive integer/);
  });
});

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function openEngine(cacheBytes: number): Promise<RocksDbEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-latest-cache-'));
  dirs.push(dir);
  const e = new RocksDbEngine(
    { path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 },
    { latestCacheBytes: cacheBytes, groupLimits: { gcChunkRowsMax: 3 } },
  );
  await e.open();
  return e;
}

const NOW = 1_000_000;
const hashOf = (k: number) => BigInt(k % 3) * (1n << 62n);
const keyOf = (k: number) => Buffer.from(`k${k}`);
const show = (v: VersionedValue | undefined) => (v === undefined ? 'absent' : `${v.value.toString()}@${v.version}/${v.expiresAtMs}`);

type EStep =
  | { kind: 'write'; ops: { key: number; del: boolean; ttl: number }[]; pipelined: boolean }
  | { kind: 'gc'; back: number }
  | { kind: 'deleteRange'; part: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'read'; key: number; back: number };

const E_KEYS = 6;
const eStepArb: fc.Arbitrary<EStep> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      ops: fc.array(fc.record({ key: fc.nat(E_KEYS - 1), del: fc.boolean(), ttl: fc.constantFrom(0, 0, 5, 20) }), { minLength: 1, maxLength: 3 }),
      pipelined: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gc' as const), back: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteRange' as const), part: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(15) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('read' as const), key: fc.nat(E_KEYS - 1), back: fc.nat(3) }) },
);

// Every engine guarantee holds with the cache on (a small one, so rows are also evicted).
runEngineCompliance('rocksdb with the latest-row cache', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-latest-cache-'));
  const engine = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 }, { latestCacheBytes: 4096 });
  await engine.open();
  return {
    engine,
    cleanup: async () => {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('RocksDbEngine with the latest-row cache', () => {
  it('answers every read like the engine without the cache (writes, pipelined writes, TTL, GC, range deletes)', { timeout: 120_000 }, async () => {
    const cached = await openEngine(1 << 20);
    const plain = await openEngine(0);
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(eStepArb, { minLength: 1, maxLength: 30 }), async (steps) => {
          // Both databases are reused across runs (opening is slow): each run starts empty, above the previous runs' timestamps.
          run++;
          await Promise.all([cached.deleteRange(0n, HASH_SPACE_END), plain.deleteRange(0n, HASH_SPACE_END)]);
          let ts = BigInt(run) * 1_000_000n;
          const commits: Timestamp[] = [];
          let now = NOW;
          let inFlight: Promise<unknown>[] = [];
          const compareAll = async () => {
            for (let k = 0; k < E_KEYS; k++)
              for (const readTs of [MAX_TS, ...commits.slice(-3)]) {
                if (readTs < cached.gcWatermark) continue;
                const [a, b] = await Promise.all([cached.get(hashOf(k), keyOf(k), readTs, now), plain.get(hashOf(k), keyOf(k), readTs, now)]);
                expect(show(a), `key ${k} at ${readTs}`).toBe(show(b));
              }
          };
          for (const s of steps) {
            if (s.kind !== 'write' || !s.pipelined) {
              await Promise.all(inFlight);
              inFlight = [];
            }
            switch (s.kind) {
              case 'write': {
                ts += 10n;
                const seen = new Set<number>();
                const mutations: Mutation[] = [];
                for (const op of s.ops) {
                  if (seen.has(op.key)) continue;
                  seen.add(op.key);
                  mutations.push(
                    op.del
                      ? { type: 'delete', hash: hashOf(op.key), key: keyOf(op.key) }
                      : { type: 'put', hash: hashOf(op.key), key: keyOf(op.key), value: Buffer.from(`v${ts}`), expiresAtMs: op.ttl === 0 ? 0 : now + op.ttl },
                  );
                }
                const batch = { commitTs: ts, mutations, nowMs: now, sync: false };
                commits.push(ts);
                const w = Promise.all([cached.write(batch), plain.write(batch)]);
                if (s.pipelined) {
                  // A read racing the write: whatever it sees, it must never be cached past the write's answer.
                  void cached.get(hashOf(s.ops[0]!.key), keyOf(s.ops[0]!.key), MAX_TS, now);
                  inFlight.push(w);
                } else await w;
                break;
              }
              case 'gc': {
                const wm = commits[Math.max(0, commits.length - 1 - s.back)] ?? 0n;
                await Promise.all([cached.gc(wm, now), plain.gc(wm, now)]);
                break;
              }
              case 'deleteRange': {
                const start = BigInt(s.part) * (1n << 62n);
                await Promise.all([cached.deleteRange(start, start + (1n << 62n)), plain.deleteRange(start, start + (1n << 62n))]);
                break;
              }
              case 'advance':
                now += s.ms;
                break;
              case 'read': {
                const readTs = s.back === 0 ? MAX_TS : (commits[commits.length - s.back] ?? MAX_TS);
                if (readTs < cached.gcWatermark) break;
                const [a, b] = await Promise.all([cached.get(hashOf(s.key), keyOf(s.key), readTs, now), plain.get(hashOf(s.key), keyOf(s.key), readTs, now)]);
                expect(show(a), `key ${s.key} at ${readTs}`).toBe(show(b));
                break;
              }
            }
          }
          await Promise.all(inFlight);
          await compareAll();
          now += 30; // everything with a TTL has expired, cached or not
          await compareAll();
        }),
        { numRuns: 30 },
      );
      expect(cached.latestCacheStats?.hits).toBeGreaterThan(0);
      expect(plain.latestCacheStats).toBeUndefined();
    } finally {
      await Promise.all([cached.close(), plain.close()]);
    }
  });

  it('never answers an older value once a write is acknowledged, with reads racing pipelined writes', async () => {
    const e = await openEngine(1 << 20);
    try {
      const h = 7n;
      const key = Buffer.from('hot');
      let acked = 0n;
      const writes: Promise<void>[] = [];
      for (let i = 1; i <= 300; i++) {
        const ts = BigInt(i);
        writes.push(
          e
            .write({ commitTs: ts, mutations: [{ type: 'put', hash: h, key, value: Buffer.from(`v${i}`), expiresAtMs: 0 }], nowMs: NOW, sync: i % 50 === 0 })
            .then(() => {
              if (ts > acked) acked = ts;
            }),
        );
        // Reads in between: never below what was acknowledged when the read started.
        for (let j = 0; j < 3; j++) {
          const floor = acked;
          const v = await e.get(h, key, MAX_TS, NOW);
          expect(v === undefined ? 0n : v.version).toBeGreaterThanOrEqual(floor);
        }
      }
      await Promise.all(writes);
      for (let j = 0; j < 3; j++) expect((await e.get(h, key, MAX_TS, NOW))?.value.toString()).toBe('v300');
      const stats = e.latestCacheStats;
      expect(stats?.hits).toBeGreaterThan(0);
    } finally {
      await e.close();
    }
  });

  it('a get never answers older than a scan that already saw an unacknowledged write or range delete', async () => {
    const e = await openEngine(1 << 20);
    try {
      const key = Buffer.from('k');
      const put = (ts: bigint, v: string) =>
        e.write({ commitTs: ts, mutations: [{ type: 'put', hash: 3n, key, value: Buffer.from(v), expiresAtMs: 0 }], nowMs: NOW, sync: false });
      await put(1n, 'old');
      expect((await e.get(3n, key, MAX_TS, NOW))?.value.toString()).toBe('old'); // now cached
      const w = put(2n, 'new');
      // Only microtasks run in this loop, so the writer's answer cannot be processed meanwhile:
      // the write is in storage (the scan sees it) but not acknowledged yet.
      const until = Date.now() + 10_000;
      for (;;) {
        const page = await e.scan({ startHash: 3n, endHash: 4n }, MAX_TS, NOW, 10);
        if (page.items[0]?.value.toString() === 'new') break;
        if (Date.now() > until) throw new Error('the write never became visible');
      }
      expect((await e.get(3n, key, MAX_TS, NOW))?.value.toString()).toBe('new');
      await w;
      // The same for a range delete.
      expect((await e.get(3n, key, MAX_TS, NOW))?.value.toString()).toBe('new'); // cached again
      const d = e.deleteRange(3n, 4n);
      for (;;) {
        const page = await e.scan({ startHash: 3n, endHash: 4n }, MAX_TS, NOW, 10);
        if (page.items.length === 0) break;
        if (Date.now() > until) throw new Error('the range delete never became visible');
      }
      expect(await e.get(3n, key, MAX_TS, NOW)).toBeUndefined();
      await d;
    } finally {
      await e.close();
    }
  });

  it('honours TTL on cached rows and forgets range-deleted keys', async () => {
    const e = await openEngine(1 << 20);
    try {
      const key = Buffer.from('ttl');
      await e.write({ commitTs: 5n, mutations: [{ type: 'put', hash: 1n, key, value: Buffer.from('x'), expiresAtMs: NOW + 10 }], nowMs: NOW, sync: false });
      expect((await e.get(1n, key, MAX_TS, NOW))?.value.toString()).toBe('x');
      expect((await e.get(1n, key, MAX_TS, NOW + 9))?.value.toString()).toBe('x'); // cached
      expect(await e.get(1n, key, MAX_TS, NOW + 10)).toBeUndefined();
      await e.write({ commitTs: 6n, mutations: [{ type: 'put', hash: 1n, key, value: Buffer.from('y'), expiresAtMs: 0 }], nowMs: NOW, sync: false });
      expect((await e.get(1n, key, MAX_TS, NOW))?.value.toString()).toBe('y');
      await e.deleteRange(0n, 2n);
      expect(await e.get(1n, key, MAX_TS, NOW)).toBeUndefined();
      // The value handed out is a copy: changing it changes nothing cached.
      await e.write({ commitTs: 7n, mutations: [{ type: 'put', hash: 1n, key, value: Buffer.from('z'), expiresAtMs: 0 }], nowMs: NOW, sync: false });
      const got = await e.get(1n, key, MAX_TS, NOW);
      got?.value.fill(0x21);
      expect((await e.get(1n, key, MAX_TS, NOW))?.value.toString()).toBe('z');
    } finally {
      await e.close();
    }
  });
});
