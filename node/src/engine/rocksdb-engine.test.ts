import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runEngineCompliance } from './compliance.ts';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { type Condition, MAX_TS, type Mutation, type RocksDbOptions, type WriteBatch } from './types.ts';

const NOW = 1_700_000_000_000;
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-rocksdb-'));
  dirs.push(dir);
  return dir;
}

function options(path: string, over: Partial<RocksDbOptions> = {}): RocksDbOptions {
  return { path, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20, ...over };
}

function put(hash: bigint, key: string, value: string): Mutation {
  return { type: 'put', hash, key: Buffer.from(key), value: Buffer.from(value), expiresAtMs: 0 };
}

function batch(commitTs: bigint, mutations: Mutation[], sync = true): WriteBatch {
  return { commitTs, mutations, nowMs: NOW, sync };
}

/** The RocksDB OPTIONS file written at open: what RocksDB actually runs with. */
async function optionsFile(path: string): Promise<string> {
  const name = (await readdir(path))
    .filter((f) => f.startsWith('OPTIONS-'))
    .sort()
    .at(-1)!;
  return readFile(join(path, name), 'utf8');
}

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

// Both write paths of the writer thread: one packed call per group commit (KeyVa's build of the
// binding, the default) and the chained batch (what the published binding always takes).
for (const packedWrites of [true, false]) {
  runEngineCompliance(packedWrites ? 'rocksdb' : 'rocksdb (chained-batch writes)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyva-rocksdb-'));
    const engine = new RocksDbEngine(options(dir), { packedWrites });
    await engine.open();
    return {
      engine,
      cleanup: async () => {
        await engine.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
}

describe('RocksDbEngine', () => {
  it('keeps data and the GC watermark across close and reopen', async () => {
    const dir = await tempDir();
    const a = new RocksDbEngine(options(dir));
    await a.open();
    await a.write(batch(10n, [put(1n, 'k', 'v1'), { type: 'rawPut', key: Buffer.from('mnode'), value: Buffer.from('n1') }]));
    await a.write(batch(20n, [put(1n, 'k', 'v2')]));
    expect(await a.gc(20n, NOW)).toBe(1);
    await a.close();
    const b = new RocksDbEngine(options(dir));
    await b.open();
    expect(b.gcWatermark).toBe(20n);
    const v = await b.get(1n, Buffer.from('k'), MAX_TS, NOW);
    expect(v?.value.toString()).toBe('v2');
    expect(v?.version).toBe(20n);
    expect((await b.getRaw(Buffer.from('mnode')))?.toString()).toBe('n1');
    await expect(b.get(1n, Buffer.from('k'), 19n, NOW)).rejects.toMatchObject({ code: 'SNAPSHOT_TOO_OLD' });
    await b.close();
  });

  it.each([
    ['zstd', 'compression=kZSTD'],
    ['none', 'compression=kNoCompression'],
    // KeyVa's build of the binding (ADR 0015): L0 and the base level uncompressed, ZSTD below.
    ['tiered', 'compression_per_level=kNoCompression:kNoCompression:kZSTD:kZSTD:kZSTD:kZSTD:kZSTD'],
  ] as const)('opens with compression %s and RocksDB runs with it', async (compression, line) => {
    const dir = await tempDir();
    const e = new RocksDbEngine(options(dir, { compression, bloomBitsPerKey: 7, blockCacheBytes: 3 << 20 }));
    await e.open();
    await e.write(batch(10n, [put(1n, 'k', 'v')]));
    expect((await e.get(1n, Buffer.from('k'), MAX_TS, NOW))?.value.toString()).toBe('v');
    const opts = await optionsFile(dir);
    expect(opts).toMatch(new RegExp(`^\\s*${line}$`, 'm'));
    expect(opts).toMatch(/^\s*filter_policy=bloomfilter:7:false$/m);
    expect(e.blockCacheUsage().capacityBytes).toBe(3 << 20);
    const s = e.stats();
    expect(s.keysEstimate).toBeGreaterThanOrEqual(1);
    expect(s.sizeBytes).toBeGreaterThan(0);
    expect(Number.isNaN(s.blockCacheHitRate)).toBe(true);
    await e.close();
  });

  it('disables the bloom filter with bloomBitsPerKey 0', async () => {
    const dir = await tempDir();
    const e = new RocksDbEngine(options(dir, { bloomBitsPerKey: 0 }));
    await e.open();
    expect(await optionsFile(dir)).toMatch(/^\s*filter_policy=nullptr$/m);
    await e.close();
  });

  it.each(['lz4', 'snappy'] as const)('rejects compression %s, which the binding cannot configure', (compression) => {
    expect(() => new RocksDbEngine(options('/nonexistent', { compression }))).toThrow(/not available/);
  });

  it('group-commits concurrent writes: fewer RocksDB writes than batches', async () => {
    const dir = await tempDir();
    const e = new RocksDbEngine(options(dir));
    await e.open();
    const n = 300;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => e.write(batch(BigInt(100 + i), [put(BigInt(i % 7), `k${i}`, String(i))]))));
    expect(results.every((r) => r.ok)).toBe(true);
    const c = e.writerCounters;
    expect(c.batches).toBe(n);
    expect(c.groups).toBeLessThan(n);
    expect(c.groupBatchesPeak).toBeGreaterThan(1);
    await e.close();
  });

  it.each([true, false])(
    'batches of one group commit plan against the earlier ones (lookups prefetched in one MultiGet, overlay of data rows only; packed writes %s)',
    async (packedWrites) => {
      const dir = await tempDir();
      const e = new RocksDbEngine(options(dir), { packedWrites });
      await e.open();
      const when = (m: Mutation, condition: Condition): Mutation => ({ ...(m as Extract<Mutation, { type: 'put' }>), condition });
      const n = 60;
      const raw = (i: number): Mutation => ({ type: 'rawPut', key: Buffer.from(`r-${i}`), value: Buffer.from('x') });
      // Every batch wants the same key absent; batches with raw rows in between (blind, not in the overlay).
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) => e.write(batch(BigInt(100 + i), [raw(i), when(put(5n, 'once', String(i)), { kind: 'absent' }), raw(n + i)]))),
      );
      expect(e.writerCounters.groupBatchesPeak).toBeGreaterThan(1);
      const ok = results.filter((r) => r.ok);
      expect(ok).toHaveLength(1);
      const winner = 100n + BigInt(results.findIndex((r) => r.ok));
      for (const r of results) if (!r.ok) expect(r).toEqual({ ok: false, failedIndex: 1, currentVersion: winner });
      expect((await e.get(5n, Buffer.from('once'), MAX_TS, NOW))?.version).toBe(winner);
      // versionEquals against the version a batch earlier in the same group wrote.
      const chain = await Promise.all([
        e.write(batch(500n, [put(6n, 'chain', 'a')])),
        e.write(batch(501n, [when(put(6n, 'chain', 'b'), { kind: 'versionEquals', version: 500n })])),
        e.write(batch(502n, [when(put(6n, 'chain', 'c'), { kind: 'versionEquals', version: 500n })])),
      ]);
      expect(chain.map((r) => r.ok)).toEqual([true, true, false]);
      expect((await e.get(6n, Buffer.from('chain'), MAX_TS, NOW))?.value.toString()).toBe('b');
      await e.close();
    },
  );

  it('bulk loads join group commits (one per group, last): writes queued around them share their RocksDB writes', async () => {
    const dir = await tempDir();
    const e = new RocksDbEngine(options(dir));
    await e.open();
    const loads = 20;
    const pending: Promise<unknown>[] = [];
    for (let l = 0; l < loads; l++) {
      for (let i = 0; i < 10; i++) pending.push(e.write(batch(BigInt(100 + l * 10 + i), [put(1000n, `w${l}/${i}`, 'v')], true)));
      const rows = Array.from({ length: 50 }, (_, i) => ({
        hash: BigInt(l),
        key: Buffer.from(`r${String(i).padStart(3, '0')}`),
        value: Buffer.from(`${l}/${i}`),
        version: 50n + BigInt(i),
        expiresAtMs: 0,
      }));
      pending.push(e.load({ rows, raw: [] }));
    }
    await Promise.all(pending);
    const c = e.writerCounters;
    expect(c.batches).toBe(loads * 10); // loads are not counted as batches
    expect(c.groups).toBeLessThan(loads * 10);
    for (let l = 0; l < loads; l++) {
      const page = await e.scan({ startHash: BigInt(l), endHash: BigInt(l) + 1n }, MAX_TS, 0, 100);
      expect(page.items).toHaveLength(50);
      expect(page.items[7]).toMatchObject({ version: 57n, value: Buffer.from(`${l}/7`) });
      expect((await e.get(1000n, Buffer.from(`w${l}/9`), MAX_TS, 0))?.version).toBe(BigInt(100 + l * 10 + 9));
    }
    await e.close();
  });

  it('respects groupBatchesMax', async () => {
    const dir = await tempDir();
    const e = new RocksDbEngine(options(dir), { groupLimits: { groupBatchesMax: 4 } });
    await e.open();
    await Promise.all(Array.from({ length: 50 }, (_, i) => e.write(batch(BigInt(100 + i), [put(1n, `k${i}`, 'v')]))));
    expect(e.writerCounters.groupBatchesPeak).toBeLessThanOrEqual(4);
    expect(e.writerCounters.groups).toBeGreaterThanOrEqual(13);
    await e.close();
  });

  it('GC in small chunks interleaves with writes and removes the same versions', async () => {
    const dir = await tempDir();
    const e = new RocksDbEngine(options(dir), { groupLimits: { gcChunkRowsMax: 7 } });
    await e.open();
    for (let v = 1; v <= 4; v++)
      await e.write(
        batch(
          BigInt(v * 10),
          Array.from({ length: 50 }, (_, k) => put(BigInt(k % 5), `k${k}`, `v${v}`)),
        ),
      );
    const gc = e.gc(30n, NOW);
    const writes = Array.from({ length: 20 }, (_, i) => e.write(batch(BigInt(100 + i), [put(9n, `w${i}`, 'x')])));
    expect(await gc).toBe(100); // versions 10 and 20 of 50 keys
    await Promise.all(writes);
    const page = await e.scan({ startHash: 0n, endHash: 5n }, 30n, NOW, 100);
    expect(page.items.length).toBe(50);
    expect(page.items.every((i) => i.value.toString() === 'v3')).toBe(true);
    await e.close();
  });

  it('close lets a running GC finish and answer', async () => {
    const dir = await tempDir();
    const e = new RocksDbEngine(options(dir), { groupLimits: { gcChunkRowsMax: 2 } });
    await e.open();
    for (let v = 1; v <= 2; v++)
      await e.write(
        batch(
          BigInt(v * 10),
          Array.from({ length: 30 }, (_, k) => put(1n, `k${k}`, `v${v}`)),
        ),
      );
    const gc = e.gc(20n, NOW);
    await e.close();
    expect(await gc).toBe(30);
  });

  it('refuses a second open of the same directory while open', async () => {
    const dir = await tempDir();
    const a = new RocksDbEngine(options(dir));
    await a.open();
    const b = new RocksDbEngine(options(dir));
    await expect(b.open()).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    await a.close();
  });
});
