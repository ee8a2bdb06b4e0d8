import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { SST_PARTITION_MIN_BYTES, SST_PARTITION_PREFIX_BYTES, toRocksOpenOptions } from './rocksdb-options.ts';
import { MAX_TS, type RocksDbOptions } from './types.ts';

const NOW = 1_700_000_000_000;
const dirs: string[] = [];

function options(path: string, over: Partial<RocksDbOptions> = {}): RocksDbOptions {
  return { path, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20, ...over };
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-rocksdb-opts-'));
  dirs.push(dir);
  return dir;
}

/** A `key=value` line of the newest RocksDB OPTIONS file: what RocksDB actually runs with. */
async function rocksOption(path: string, key: string): Promise<string | undefined> {
  const name = (await readdir(path))
    .filter((f) => f.startsWith('OPTIONS-'))
    .sort()
    .at(-1) as string;
  return new RegExp(`^\\s*${key}=(.*)$`, 'm').exec(await readFile(join(path, name), 'utf8'))?.[1];
}

/**
 * Opens `dir` once per entry of `settings`, in turn: each open must find the value the previous
 * one wrote, then writes the next (synced) and closes. `check` runs after each open.
 */
async function reopenUnderEach(
  dir: string,
  settings: readonly Partial<RocksDbOptions>[],
  check: (over: Partial<RocksDbOptions>) => Promise<void>,
): Promise<void> {
  let value = 0;
  for (const over of settings) {
    const e = new RocksDbEngine(options(dir, over));
    await e.open();
    await check(over);
    if (value > 0) expect((await e.get(1n, Buffer.from('k'), MAX_TS, NOW))?.value.toString()).toBe(`v${value}`);
    value++;
    const r = await e.write({
      commitTs: BigInt(10 * value),
      mutations: [{ type: 'put', hash: 1n, key: Buffer.from('k'), value: Buffer.from(`v${value}`), expiresAtMs: 0 }],
      nowMs: NOW,
      sync: true,
    });
    expect(r.ok).toBe(true);
    await e.close();
  }
}

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('RocksDB WAL compression (walCompression)', () => {
  it('is always passed down: off unless asked for (the binding alone would compress)', () => {
    expect(toRocksOpenOptions(options('/x')).walCompression).toBe(false);
    expect(toRocksOpenOptions(options('/x', { walCompression: false })).walCompression).toBe(false);
    expect(toRocksOpenOptions(options('/x', { walCompression: true })).walCompression).toBe(true);
  });

  it('rejects a value that is not a boolean with INVALID_ARGUMENT naming the field', () => {
    const o = { ...options('/nonexistent'), walCompression: 'yes' } as unknown as RocksDbOptions;
    expect(() => toRocksOpenOptions(o)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: 'rocksdb walCompression: must be true or false, got yes' }),
    );
    expect(() => new RocksDbEngine(o)).toThrow(/walCompression/);
  });

  it('RocksDB runs with it, and a WAL written with either setting replays under the other', async () => {
    const dir = await tempDir();
    // What the previous open wrote is still there (replayed from its WAL: closing does not flush).
    await reopenUnderEach(dir, [{}, { walCompression: true }, { walCompression: false }], async (over) => {
      expect(await rocksOption(dir, 'wal_compression')).toBe(over.walCompression ? 'kZSTD' : 'kNoCompression');
    });
  });
});

describe('SST files cut at partition boundaries (ADR 0017)', () => {
  it("every engine opens RocksDB with KeyVa's partitioner: 2 prefix bytes, files of at least 4 MiB", async () => {
    expect(toRocksOpenOptions(options('/x'))).toMatchObject({ keyvaSstPartitionPrefix: 2, keyvaSstPartitionMinBytes: 4 << 20 });
    expect([SST_PARTITION_PREFIX_BYTES, SST_PARTITION_MIN_BYTES]).toEqual([2, 4 << 20]); // key space byte + top byte of the hash
    const dir = await tempDir();
    await reopenUnderEach(dir, [{}, { compression: 'none' }], async () => {
      expect(await rocksOption(dir, 'sst_partitioner_factory')).toBe('KeyvaSstPartitionerFactory');
    });
  });
});

describe('RocksDB block compression (compression)', () => {
  it("maps tiered to ZSTD plus the per-level switch of KeyVa's binding, zstd and none to the ZSTD switch alone", () => {
    expect(toRocksOpenOptions(options('/x', { compression: 'tiered' }))).toMatchObject({ compression: true, keyvaTieredCompression: true });
    expect(toRocksOpenOptions(options('/x', { compression: 'zstd' }))).toMatchObject({ compression: true, keyvaTieredCompression: false });
    expect(toRocksOpenOptions(options('/x', { compression: 'none' }))).toMatchObject({ compression: false, keyvaTieredCompression: false });
  });

  it('compresses with ZSTD without a trained dictionary under tiered and zstd (ADR 0015, session 16)', async () => {
    for (const compression of ['tiered', 'zstd'] as const) {
      const dir = await tempDir();
      const e = new RocksDbEngine(options(dir, { compression }));
      await e.open();
      await e.close();
      const opts = await rocksOption(dir, 'compression_opts');
      expect(opts, compression).toMatch(/[{;]max_dict_bytes=0;/);
      expect(opts, compression).toMatch(/[{;]zstd_max_train_bytes=0;/);
      expect(await rocksOption(dir, 'compression'), compression).toBe('kZSTD');
    }
  });

  it('a data directory opens under every setting in turn and keeps its data (each file records its own compression)', async () => {
    const dir = await tempDir();
    // Each open flushes the WAL it recovered into an SST file under its own setting, which the
    // next opens read.
    await reopenUnderEach(
      dir,
      (['tiered', 'zstd', 'none', 'tiered'] as const).map((compression) => ({ compression })),
      async () => undefined,
    );
    expect((await readdir(dir)).filter((f) => f.endsWith('.sst')).length).toBeGreaterThanOrEqual(2);
  });
});
