/**
 * Range deletes drop whole SST files (ADR 0017), on real RocksDB with KeyVa's build of the binding
 * (`npm test` builds it: scripts/rocksdb-native.sh):
 * - compaction output is cut at the top byte of the hash (once a file holds the minimum size), so
 *   a range aligned to it owns whole files in levels 1 and below (without the partitioner, or
 *   below the minimum, it does not);
 * - the engine's range delete drops them, touches no neighbour, and counts their bytes;
 * - kill -9 while partitions are deleted and ingested again: each one holds all its rows or none,
 *   as its last acknowledged round left it, and the partitions between them all theirs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runUntilKilled } from '../testing/kill-child.ts';
import { hashRangeBounds } from './key-codec.ts';
import { createRocksLevel } from './rocksdb-binding.ts';
import type { RocksDbEngine } from './rocksdb-engine.ts';
import { fileDropper } from './rocksdb-file-drop.ts';
import { SST_PARTITION_PREFIX_BYTES } from './rocksdb-options.ts';
import {
  fillByIngestion,
  PARTITIONS,
  partitionRange,
  ROWS,
  roundDeletes,
  roundPartition,
  rowHash,
  rowKey,
  rowValue,
  TOUCHED,
} from './testing/crash-dropper.ts';
import { openEngine } from './testing/crash-ingester.ts';
import { MAX_TS } from './types.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'keyva-file-drop-'));
  dirs.push(d);
  return d;
}

const prop = (db: { getProperty(n: string): string }, name: string): number => Number(db.getProperty(name));

/**
 * A raw database with a tiny memtable budget (flushes every ~512 KiB, compacts at 2 L0 files)
 * filled with 8 MiB of data-space rows at random hashes, its compactions settled.
 */
async function compactedDb(partitionPrefix: number, partitionMinBytes = 0) {
  const db = createRocksLevel(join(await tempDir(), 'db'));
  await db.open({
    createIfMissing: true,
    compression: false,
    keyvaSstPartitionPrefix: partitionPrefix,
    keyvaSstPartitionMinBytes: partitionMinBytes,
    compaction: 'level',
    memtableMemoryBudget: 1 << 20,
  });
  let seed = 7;
  for (let b = 0; b < 64; b++) {
    const batch = db.batch();
    for (let i = 0; i < 128; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const key = Buffer.alloc(1 + 8 + 4);
      key[0] = 0x64; // 'd'
      key.writeUInt32BE(seed, 1);
      key.writeUInt32BE(b * 128 + i, 5);
      batch.put(key, Buffer.alloc(1024, i));
    }
    batch._writeSync({ sync: false });
  }
  for (let waited = 0; ; waited += 50) {
    const busy =
      prop(db, 'rocksdb.num-running-compactions') +
      prop(db, 'rocksdb.num-running-flushes') +
      prop(db, 'rocksdb.compaction-pending') +
      prop(db, 'rocksdb.mem-table-flush-pending');
    if (busy === 0 && prop(db, 'rocksdb.num-files-at-level0') < 2) break;
    if (waited > 60_000) throw new Error('compactions did not settle within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return db;
}

const countRows = (db: ReturnType<typeof createRocksLevel>, gte: Buffer, lt: Buffer): number =>
  db.querySync({ gte, lt, keys: true, values: false, keyEncoding: 'buffer', valueEncoding: 'buffer', limit: 1 << 20 }).rows.length / 2;

describe('SST files cut at partition boundaries (ADR 0017)', () => {
  const quarter = hashRangeBounds(1n << 62n, 1n << 63n);

  it('with the partitioner, a range aligned to the top hash byte owns whole files: they are dropped, nothing outside goes', { timeout: 90_000 }, async () => {
    const db = await compactedDb(SST_PARTITION_PREFIX_BYTES);
    try {
      const drop = fileDropper(db.handle);
      expect(drop, 'run bash scripts/rocksdb-native.sh').toBeDefined();
      const all = hashRangeBounds(0n, 1n << 64n);
      const outsideBefore = countRows(db, all.lo, quarter.lo) + countRows(db, quarter.hi, all.hi);
      const insideBefore = countRows(db, quarter.lo, quarter.hi);
      const r = drop?.([{ gte: quarter.lo, lt: quarter.hi }]);
      expect(r?.files).toBeGreaterThan(0);
      expect(r?.bytes).toBeGreaterThan(0);
      expect(r?.overlapping, 'no file of levels 1 and below straddles the range').toBe(0);
      expect(countRows(db, all.lo, quarter.lo) + countRows(db, quarter.hi, all.hi)).toBe(outsideBefore);
      expect(countRows(db, quarter.lo, quarter.hi)).toBeLessThan(insideBefore / 4); // what is left was in the memtable or L0
    } finally {
      await db.close();
    }
  });

  it('without it, compaction output straddles the range ends (why the partitioner is on)', { timeout: 90_000 }, async () => {
    const db = await compactedDb(0);
    try {
      expect(fileDropper(db.handle)?.([{ gte: quarter.lo, lt: quarter.hi }]).overlapping).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
  });

  it('a file is cut at a boundary only once it holds the minimum size (here never: 1 MiB, above these files)', { timeout: 90_000 }, async () => {
    const db = await compactedDb(SST_PARTITION_PREFIX_BYTES, 1 << 20);
    try {
      expect(fileDropper(db.handle)?.([{ gte: quarter.lo, lt: quarter.hi }]).overlapping).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
  });
});

describe("the engine's range delete drops the range's files (ADR 0017)", () => {
  const scanCount = async (e: RocksDbEngine, p: number) =>
    (await e.scan({ startHash: partitionRange(p).start, endHash: partitionRange(p).end }, MAX_TS, 0, ROWS + 1)).items.length;

  it('counts their bytes; the range reads empty, every neighbour whole; the latest space stays consistent', async () => {
    const dir = await tempDir();
    const src = await openEngine(join(dir, 'src'));
    const dst = await openEngine(join(dir, 'dst'));
    try {
      await fillByIngestion(src, dst, dir);
      expect(dst.stats().rangeDroppedFileBytes).toBe(0);
      await dst.deleteRange(partitionRange(5).start, partitionRange(5).end);
      expect(dst.stats().rangeDroppedFileBytes, 'the ingested files of partition 5').toBeGreaterThan(0);
      for (let p = 0; p < PARTITIONS; p++) expect(await scanCount(dst, p), `partition ${p}`).toBe(p === 5 ? 0 : ROWS);
      const v = await dst.get(rowHash(6, 0), rowKey(6, 0), MAX_TS, 0);
      expect(v?.value.equals(rowValue(6, 0))).toBe(true);
      expect(dst.latestSpaceMismatches(true)).toEqual([]);
    } finally {
      await src.close();
      await dst.close();
    }
  });

  it('kill -9 while partitions are deleted and ingested again: each holds all its rows or none, as acknowledged', { timeout: 120_000 }, async () => {
    const dir = await tempDir();
    const script = fileURLToPath(new URL('./testing/crash-dropper.ts', import.meta.url));
    let acked = -1;
    let droppedBytes = 0;
    const rounds = 2 * TOUCHED + 3; // every even partition deleted, ingested again, three deleted again
    const { signal, stderr } = await runUntilKilled(
      script,
      [dir],
      ([round, bytes]) => {
        acked = Number(round);
        droppedBytes = Number(bytes);
        return acked + 1 >= rounds;
      },
      150,
    );
    expect(signal, stderr).toBe('SIGKILL');
    expect(droppedBytes, 'the deletes dropped files').toBeGreaterThan(0);
    const dst = await openEngine(join(dir, 'dst'));
    try {
      for (let p = 0; p < PARTITIONS; p++) {
        const n = await scanCount(dst, p);
        expect([0, ROWS], `partition ${p}: all its rows or none`).toContain(n);
        if (p % 2 === 1) expect(n, `partition ${p} is never touched`).toBe(ROWS);
        else if (roundPartition(acked + 1) !== p) {
          // (the round in flight may have left its partition either way)
          const k = p / 2;
          const last = acked - ((((acked - k) % TOUCHED) + TOUCHED) % TOUCHED); // its last acknowledged round
          expect(n, `partition ${p} after round ${last}`).toBe(roundDeletes(last) ? 0 : ROWS);
        }
        if (n === ROWS) expect((await dst.get(rowHash(p, 7), rowKey(p, 7), MAX_TS, 0))?.value.equals(rowValue(p, 7))).toBe(true);
      }
      expect(dst.latestSpaceMismatches(true)).toEqual([]);
    } finally {
      await dst.close();
    }
  });
});
