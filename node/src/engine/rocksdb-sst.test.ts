/**
 * Partitions as SST files (ADR 0013) on real RocksDB: KeyVa's native calls (`rocksdb-sst.ts`,
 * built into the binding by `scripts/rocksdb-native.sh`, which `npm test` runs first).
 *
 * The reference is the row dump (`dumpRows`, what streamed snapshots sent before): a partition
 * exported at a read timestamp and ingested into another engine must read back exactly as the
 * source's dump at that timestamp — newest live version per key, versions written after it and
 * deleted keys left out, expiry kept — with its latest space consistent, the raw rows filtered
 * by version, and nothing outside the range touched.
 */
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { sstNative } from './rocksdb-sst.ts';
import { decodeRows } from './row-codec.ts';
import { MAX_TS, type Mutation, type RawSnapshotRange, type ScanItem, type Timestamp } from './types.ts';

const dirs: string[] = [];
const engines: RocksDbEngine[] = [];
afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'keyva-sst-'));
  dirs.push(d);
  return d;
}

async function engine(compression: 'none' | 'tiered' | 'zstd' = 'none'): Promise<RocksDbEngine> {
  const e = new RocksDbEngine({ path: join(await tempDir(), 'db'), compression, bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
  await e.open();
  engines.push(e);
  return e;
}

const RANGE = { start: 1n << 62n, end: 1n << 63n };
const RAW: RawSnapshotRange = {
  gte: Buffer.from('r\u0000\u0000\u0000\u0007q', 'latin1'),
  lt: Buffer.from('r\u0000\u0000\u0000\u0007r', 'latin1'),
  u64Offset: 6,
};
const rawKey = (version: Timestamp, n: number) => {
  const k = Buffer.alloc(6 + 8 + 4);
  RAW.gte.copy(k);
  k.writeBigUInt64BE(version, 6);
  k.writeUInt32BE(n, 14);
  return k;
};

/** A deterministic mix: keys inside and outside RANGE, several versions, deletes, TTLs, 0x00 bytes in keys. */
async function fill(e: RocksDbEngine, keys: number, versions: number): Promise<void> {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed;
  };
  for (let v = 1; v <= versions; v++) {
    const mutations: Mutation[] = [];
    for (let i = 0; i < keys; i++) {
      const r = rand();
      if (r % 3 === 0 && v > 1) continue; // not every key gets every version
      const hash = (BigInt(i) * 0x9e3779b97f4a7c15n) & ((1n << 64n) - 1n);
      const key = Buffer.from(i % 7 === 0 ? `k\u0000${i}` : `key-${i}`, 'latin1');
      if (r % 11 === 0) mutations.push({ type: 'delete', hash, key });
      else mutations.push({ type: 'put', hash, key, value: Buffer.alloc(20 + (r % 200), v), expiresAtMs: r % 5 === 0 ? 1_000 + v : 0 });
    }
    mutations.push({ type: 'rawPut', key: rawKey(BigInt(v * 10), v), value: Buffer.from([v]) });
    await e.write({ mutations, commitTs: BigInt(v * 10), nowMs: 0, sync: false });
  }
}

async function dump(e: RocksDbEngine, readTs: Timestamp): Promise<ScanItem[]> {
  const out: ScanItem[] = [];
  if (e.dumpRows === undefined) throw new Error('no dumpRows');
  for await (const c of e.dumpRows(RANGE.start, RANGE.end, readTs, 64 << 10)) out.push(...decodeRows(c.data));
  return out;
}

const describeRows = (rows: readonly ScanItem[]) =>
  rows.map((r) => `${r.hash}/${r.key.toString('hex')}@${r.version}:${r.value.toString('hex')}:${r.expiresAtMs}`);

describe('SST snapshots on RocksDB (ADR 0013)', () => {
  it('the binding in use has the native calls (npm test builds it: scripts/rocksdb-native.sh)', async () => {
    expect(sstNative(), 'run bash scripts/rocksdb-native.sh').toBeDefined();
    expect((await engine()).sst).toBeDefined();
  });

  it('an export at a read timestamp, ingested into an empty engine, reads back exactly as the source dump at it', async () => {
    const src = await engine();
    await fill(src, 3000, 6);
    const readTs = 35n; // versions 40, 50, 60 were written after it
    const want = await dump(src, readTs);
    expect(want.length).toBeGreaterThan(100);
    const base = join(await tempDir(), 'g7');
    const exp = await src.sst?.export(RANGE.start, RANGE.end, readTs, RAW, base);
    expect(exp?.rows).toBe(want.length);
    expect(exp?.rawRows).toBe(3); // versions 10, 20, 30
    expect(exp?.files.map((f) => f.kind)).toEqual(['data', 'raw']); // the receiver derives the latest rows

    const dst = await engine();
    await fill(dst, 50, 1); // rows outside the range must survive; inside, replaced
    const outsideBefore = await dst.scan({ startHash: 0n, endHash: RANGE.start }, MAX_TS, 0, 10_000);
    await dst.sst?.ingest(RANGE.start, RANGE.end, exp?.files ?? [], RAW);
    expect(describeRows(await dump(dst, MAX_TS))).toEqual(describeRows(want));
    expect(describeRows(await dump(dst, readTs))).toEqual(describeRows(want));
    expect(dst.latestSpaceMismatches(true)).toEqual([]);
    expect(await dst.scan({ startHash: 0n, endHash: RANGE.start }, MAX_TS, 0, 10_000)).toEqual(outsideBefore);
    const raw = await dst.scanRaw(RAW.gte, RAW.lt, 100);
    expect(raw.map((r) => r.key.readBigUInt64BE(6))).toEqual([10n, 20n, 30n]);
    // The files were moved into the database.
    for (const f of exp?.files ?? []) await expect(access(f.path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('snapshot files take the compression of the bottom level, but ZSTD at level 1 without a trained dictionary', async () => {
    // The table properties RocksDB writes into every file (uncompressed meta blocks): the
    // compression's name and options, and a `rocksdb.compression_dict` block when a dictionary
    // was trained. The binding trains one for every file it compresses, which made an export
    // several times slower (ADR 0013, session 16).
    const properties = async (path: string) => {
      const text = (await readFile(path)).toString('latin1');
      return {
        zstd: text.includes('ZSTD'),
        level: /; level=(-?[0-9]+);/.exec(text)?.[1],
        dictBytes: /max_dict_bytes=([0-9]+);/.exec(text)?.[1],
        dictionary: text.includes('rocksdb.compression_dict'),
      };
    };
    for (const compression of ['tiered', 'zstd'] as const) {
      const src = await engine(compression);
      await fill(src, 2000, 2); // values of one repeated byte: they compress well
      const exp = await src.sst?.export(RANGE.start, RANGE.end, MAX_TS, undefined, join(await tempDir(), compression));
      const data = exp?.files.find((f) => f.kind === 'data');
      expect(data, compression).toBeDefined();
      expect(await properties(data?.path ?? ''), compression).toEqual({ zstd: true, level: '1', dictBytes: '0', dictionary: false });
      expect(exp?.fileBytes ?? 0, compression).toBeLessThan((exp?.keyValueBytes ?? 0) / 2);
      // Ingested elsewhere, the files read back as the source.
      const dst = await engine(compression);
      await dst.sst?.ingest(RANGE.start, RANGE.end, exp?.files ?? [], undefined);
      expect(describeRows(await dump(dst, MAX_TS)), compression).toEqual(describeRows(await dump(src, MAX_TS)));
    }
    const plain = await engine('none');
    await fill(plain, 2000, 1);
    const exp = await plain.sst?.export(RANGE.start, RANGE.end, MAX_TS, undefined, join(await tempDir(), 'plain'));
    const file = exp?.files.find((f) => f.kind === 'data')?.path ?? '';
    expect((await properties(file)).zstd).toBe(false);
    expect(exp?.fileBytes ?? 0).toBeGreaterThan(exp?.keyValueBytes ?? 0);
  });

  it('an ingestion over a range that holds rows replaces them all', async () => {
    const src = await engine();
    await fill(src, 500, 2);
    const exp = await src.sst?.export(RANGE.start, RANGE.end, MAX_TS, undefined, join(await tempDir(), 'a'));
    const dst = await engine();
    await fill(dst, 800, 3); // more keys, other values
    await dst.sst?.ingest(RANGE.start, RANGE.end, exp?.files ?? [], undefined);
    expect(describeRows(await dump(dst, MAX_TS))).toEqual(describeRows(await dump(src, MAX_TS)));
    expect(dst.latestSpaceMismatches(true)).toEqual([]);
  });

  it('an empty range exports no file; ingesting nothing empties the range', async () => {
    const src = await engine();
    const exp = await src.sst?.export(RANGE.start, RANGE.end, MAX_TS, RAW, join(await tempDir(), 'e'));
    expect(exp).toEqual({ files: [], rows: 0, rawRows: 0, keyValueBytes: 0, fileBytes: 0 });
    const dst = await engine();
    await fill(dst, 200, 1);
    await dst.sst?.ingest(RANGE.start, RANGE.end, [], undefined);
    expect(await dump(dst, MAX_TS)).toEqual([]);
  });

  it('a file whose keys lie outside the range it is ingested for, or not an SST file, is refused and nothing changes', async () => {
    const src = await engine();
    await fill(src, 500, 1);
    const exp = await src.sst?.export(RANGE.start, RANGE.end, MAX_TS, undefined, join(await tempDir(), 'b'));
    const dst = await engine();
    await fill(dst, 300, 2);
    const before = await dump(dst, MAX_TS);
    const narrower = { start: RANGE.start, end: RANGE.start + (1n << 60n) };
    await expect(dst.sst?.ingest(narrower.start, narrower.end, exp?.files ?? [], undefined)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: /above the range it was sent for/,
    });
    const junk = join(await tempDir(), 'junk.sst');
    await writeFile(junk, Buffer.alloc(4096, 7));
    await expect(dst.sst?.ingest(RANGE.start, RANGE.end, [{ kind: 'data', path: junk }], undefined)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(describeRows(await dump(dst, MAX_TS))).toEqual(describeRows(before));
  });

  it('an export at a timestamp below the GC watermark is SNAPSHOT_TOO_OLD', async () => {
    const src = await engine();
    await fill(src, 100, 3);
    await src.gc(25n, 0);
    await expect(src.sst?.export(RANGE.start, RANGE.end, 15n, undefined, join(await tempDir(), 'c'))).rejects.toMatchObject({ code: 'SNAPSHOT_TOO_OLD' });
  });
});
