/**
 * The RocksDB engine's latest space across the paths that do not go through the write planner:
 * GC removing a key's newest version, opening a data directory written before the latest space
 * existed (layout 1), finishing a range delete interrupted by a crash, and refusing an unknown
 * layout. Real RocksDB on disk; directories are doctored with the raw binding while closed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeHashRange, encodeLatestKey, encodeLatestValue, LAYOUT_KEY, latestSpaceBounds, PENDING_DELETE_RANGE_KEY } from './key-codec.ts';
import { createRocksLevel } from './rocksdb-binding.ts';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { RocksReader } from './rocksdb-reader.ts';
import { HASH_SPACE_END, MAX_TS, type Mutation, type WriteBatch } from './types.ts';

const NOW = 1_700_000_000_000;
const dirs: string[] = [];
const b = (s: string): Buffer => Buffer.from(s);

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function openEngine(chunkRows = 4096): Promise<{ dir: string; engine: RocksDbEngine }> {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-latest-'));
  dirs.push(dir);
  const engine = new RocksDbEngine(
    { path: dir, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 },
    { groupLimits: { gcChunkRowsMax: chunkRows } },
  );
  await engine.open();
  return { dir, engine };
}

async function reopen(dir: string): Promise<RocksDbEngine> {
  const engine = new RocksDbEngine({ path: dir, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
  await engine.open();
  return engine;
}

/** Runs `fn` on the closed directory through the raw binding (ops written synced). */
async function doctor(dir: string, fn: (db: ReturnType<typeof createRocksLevel>, reader: RocksReader) => Promise<void> | void): Promise<void> {
  const db = createRocksLevel(dir);
  await db.open({ createIfMissing: false });
  try {
    await fn(db, new RocksReader(db));
  } finally {
    await db.close();
  }
}

function put(hash: bigint, key: string, value: string, expiresAtMs = 0): Mutation {
  return { type: 'put', hash, key: b(key), value: b(value), expiresAtMs };
}

function del(hash: bigint, key: string): Mutation {
  return { type: 'delete', hash, key: b(key) };
}

function batch(commitTs: bigint, mutations: Mutation[]): WriteBatch {
  return { commitTs, mutations, nowMs: NOW, sync: true };
}

/** A history with several versions, tombstones and TTLs over 20 keys in 5 hashes. */
async function writeHistory(engine: RocksDbEngine): Promise<void> {
  for (let v = 1; v <= 4; v++) {
    const muts: Mutation[] = [];
    for (let k = 0; k < 20; k++) {
      if ((k + v) % 5 === 0) muts.push(del(BigInt(k % 5), `k${k}`));
      else muts.push(put(BigInt(k % 5), `k${k}`, `v${v}`, k % 7 === 0 ? NOW + 1000 * v : 0));
    }
    await engine.write(batch(BigInt(v * 10), muts));
  }
}

async function readAll(engine: RocksDbEngine, readTs: bigint): Promise<string[]> {
  const out: string[] = [];
  for (let k = 0; k < 20; k++) {
    const v = await engine.get(BigInt(k % 5), b(`k${k}`), readTs, NOW + 1500);
    out.push(v === undefined ? '-' : `${v.value}@${v.version}`);
  }
  return out;
}

describe('RocksDB latest space', () => {
  it('GC that removes every version of a key removes its latest entry, also across chunks and interleaved writes', async () => {
    const { engine } = await openEngine(2);
    for (let k = 0; k < 6; k++) await engine.write(batch(10n, [put(1n, `k${k}`, 'a')]));
    await engine.write(batch(20n, [del(1n, 'k0'), del(1n, 'k1'), put(1n, 'k2', 'b', NOW - 1), del(1n, 'k3')]));
    const gc = engine.gc(30n, NOW);
    // A write between chunks re-creates k3 after its tombstone: its latest entry must survive GC.
    const w = engine.write(batch(40n, [put(1n, 'k3', 'again')]));
    expect(await gc).toBeGreaterThanOrEqual(6);
    await w;
    expect(engine.latestSpaceMismatches(true)).toEqual([]);
    for (const k of ['k0', 'k1', 'k2']) expect(await engine.get(1n, b(k), MAX_TS, NOW)).toBeUndefined();
    expect((await engine.get(1n, b('k3'), MAX_TS, NOW))?.value.toString()).toBe('again');
    expect((await engine.get(1n, b('k4'), MAX_TS, NOW))?.value.toString()).toBe('a');
    await engine.close();
  });

  it('rebuilds the latest space when opening a directory written before it existed', async () => {
    const { dir, engine } = await openEngine();
    await writeHistory(engine);
    const before = await readAll(engine, MAX_TS);
    const at25 = await readAll(engine, 25n);
    expect(before.filter((x) => x !== '-').length).toBeGreaterThan(5);
    await engine.close();
    // Layout 1: no latest space and no layout key. A stale entry stands for a rebuild a crash cut short.
    await doctor(dir, async (db) => {
      const { lo, hi } = latestSpaceBounds();
      await db.clear({ gte: lo, lt: hi });
      const wb = db.batch();
      wb.del(LAYOUT_KEY);
      wb.put(encodeLatestKey(3n, b('ghost')), encodeLatestValue(99n, b('boo'), 0).latest);
      wb._writeSync({ sync: true });
      wb._closeSync();
    });
    const again = await reopen(dir);
    expect(again.latestSpaceMismatches(true)).toEqual([]);
    expect(await readAll(again, MAX_TS)).toEqual(before);
    expect(await readAll(again, 25n)).toEqual(at25);
    expect(await again.get(3n, b('ghost'), MAX_TS, NOW)).toBeUndefined();
    await again.close();
    await doctor(dir, (_db, reader) => {
      expect(reader.get(LAYOUT_KEY)?.readUInt32BE(0)).toBe(2);
    });
  });

  it('keeps data and the latest space across a plain close and reopen', async () => {
    const { dir, engine } = await openEngine();
    await writeHistory(engine);
    const before = await readAll(engine, MAX_TS);
    await engine.close();
    const again = await reopen(dir);
    expect(again.latestSpaceMismatches(true)).toEqual([]);
    expect(await readAll(again, MAX_TS)).toEqual(before);
    await again.close();
  });

  it('finishes a range delete that a crash interrupted between its two range deletes', async () => {
    const { dir, engine } = await openEngine();
    await writeHistory(engine);
    const before = await readAll(engine, MAX_TS);
    await engine.close();
    // The marker and the latest-space range delete of hashes [1, 3) made it, the data one did not.
    await doctor(dir, async (db) => {
      const wb = db.batch();
      wb.put(PENDING_DELETE_RANGE_KEY, encodeHashRange(1n, 3n));
      wb._writeSync({ sync: true });
      wb._closeSync();
      const l = latestSpaceBounds();
      await db.clear({ gte: Buffer.concat([l.lo, Buffer.from([0, 0, 0, 0, 0, 0, 0, 1])]), lt: Buffer.concat([l.lo, Buffer.from([0, 0, 0, 0, 0, 0, 0, 3])]) });
    });
    const again = await reopen(dir);
    expect(again.latestSpaceMismatches(true)).toEqual([]);
    const after = await readAll(again, MAX_TS);
    for (let k = 0; k < 20; k++) expect(after[k], `k${k}`).toBe(k % 5 === 1 || k % 5 === 2 ? '-' : before[k]);
    const page = await again.scan({ startHash: 1n, endHash: 3n }, MAX_TS, NOW, 100);
    expect(page.items).toEqual([]);
    await again.close();
    await doctor(dir, (_db, reader) => {
      expect(reader.get(PENDING_DELETE_RANGE_KEY)).toBeUndefined();
    });
  });

  it('deleteRange to the end of the hash space clears both key spaces', async () => {
    const { engine } = await openEngine();
    await writeHistory(engine);
    await engine.deleteRange(2n, HASH_SPACE_END);
    expect(engine.latestSpaceMismatches(true)).toEqual([]);
    const after = await readAll(engine, MAX_TS);
    for (let k = 0; k < 20; k++) if (k % 5 >= 2) expect(after[k]).toBe('-');
    await engine.close();
  });

  it('refuses to open a directory with an unknown layout', async () => {
    const { dir, engine } = await openEngine();
    await engine.close();
    await doctor(dir, (db) => {
      const wb = db.batch();
      wb.put(LAYOUT_KEY, Buffer.from([0, 0, 0, 9]));
      wb._writeSync({ sync: true });
      wb._closeSync();
    });
    await expect(reopen(dir)).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: expect.stringMatching(/layout/) });
  });

  it("rejects raw keys and raw ranges in the latest key space ('l')", async () => {
    const { engine } = await openEngine();
    await expect(engine.write(batch(10n, [{ type: 'rawPut', key: b('lxx'), value: b('v') }]))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(engine.getRaw(b('lxx'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(engine.scanRaw(b('l'), b('l\xff'), 10)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await engine.close();
  });
});
