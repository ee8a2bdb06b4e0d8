/**
 * `RocksDbEngine.dumpRows` (the dump thread, `rocksdb-dump-worker.ts`) on a real RocksDB: the
 * chunks hold exactly the rows a scan at the same timestamp sees (newest version per key at
 * `readTs`, deletes hidden, TTL-expired rows kept), within the hash range, cut at `chunkBytes`;
 * a GC past `readTs` during a dump fails it with SNAPSHOT_TOO_OLD; dumps run side by side and can
 * be broken off; closing the engine during a dump fails the dump and closes cleanly.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyVaError } from '@keyva/proto/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { decodeRows, ROW_FIXED_BYTES } from './row-codec.ts';
import type { Mutation, ScanItem, Timestamp } from './types.ts';

const dirs: string[] = [];
const engines: RocksDbEngine[] = [];

afterEach(async () => {
  for (const e of engines.splice(0)) await e.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function engine(): Promise<RocksDbEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-dump-'));
  dirs.push(dir);
  const e = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
  await e.open();
  engines.push(e);
  return e;
}

const SPACE_END = 1n << 64n;
/** Hashes spread over the space, so a sub-range holds some keys and not others. */
const hashOf = (i: number): bigint => (BigInt(i) * 0x9e3779b97f4a7c15n) % SPACE_END;
const keyOf = (i: number): Buffer => Buffer.from(`key-${i}`);
const put = (i: number, value: Buffer, expiresAtMs = 0): Mutation => ({ type: 'put', hash: hashOf(i), key: keyOf(i), value, expiresAtMs });

async function write(e: RocksDbEngine, commitTs: bigint, mutations: Mutation[]): Promise<void> {
  await e.write({ mutations, commitTs, nowMs: 1000, sync: false });
}

/** The reference: `scan` page by page at `readTs`, nothing counted as expired (nowMs 0). */
async function scanAll(e: RocksDbEngine, start: bigint, end: bigint, readTs: Timestamp): Promise<ScanItem[]> {
  const out: ScanItem[] = [];
  let after: { hash: bigint; key: Buffer } | undefined;
  for (;;) {
    const page = await e.scan({ startHash: start, endHash: end, after }, readTs, 0, 100);
    out.push(...page.items);
    const last = page.items.at(-1);
    if (!page.more || last === undefined) return out;
    after = { hash: last.hash, key: last.key };
  }
}

/** The dump's chunks; each one's row count must be what the chunk holds. */
async function dumpAll(e: RocksDbEngine, start: bigint, end: bigint, readTs: Timestamp, chunkBytes: number): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const c of e.dumpRows(start, end, readTs, chunkBytes)) {
    expect(c.rows).toBe(decodeRows(c.data).length);
    chunks.push(c.data);
  }
  return chunks;
}

function expectSame(got: readonly ScanItem[], want: readonly ScanItem[]): void {
  expect(got.map((r) => `${r.hash}/${r.key}@${r.version}/${r.expiresAtMs}/${r.value.toString('hex')}`)).toEqual(
    want.map((r) => `${r.hash}/${r.key}@${r.version}/${r.expiresAtMs}/${r.value.toString('hex')}`),
  );
}

/** 600 keys of 100-300 bytes at ts 10-15, 300 of them rewritten at ts 20, 100 deleted at ts 30, 50 with a TTL long past; keys with 0x00 and 0xFF bytes. */
async function history(e: RocksDbEngine): Promise<void> {
  for (let b = 0; b < 6; b++)
    await write(
      e,
      10n + BigInt(b),
      Array.from({ length: 100 }, (_, j) => put(b * 100 + j, Buffer.alloc(100 + j * 2, b * 100 + j))),
    );
  await write(
    e,
    20n,
    Array.from({ length: 300 }, (_, i) => put(i * 2, Buffer.alloc(64, `v20-${i}`))),
  );
  await write(
    e,
    30n,
    Array.from({ length: 100 }, (_, i) => ({ type: 'delete' as const, hash: hashOf(i * 3), key: keyOf(i * 3) })),
  );
  await write(
    e,
    31n,
    Array.from({ length: 50 }, (_, i) => put(i * 5 + 1, Buffer.from(`ttl-${i}`), 500)),
  );
  // Keys holding the escape byte (0x00) and 0xFF, an empty value, rewritten after some read timestamps.
  const odd = [Buffer.from([0x61, 0x00, 0x62]), Buffer.from([0x00]), Buffer.from([0xff, 0x00, 0x00, 0x01]), Buffer.from([0x00, 0x01])];
  await write(
    e,
    12n,
    odd.map((key, i) => ({ type: 'put', hash: hashOf(7000 + i), key, value: Buffer.alloc(i * 3, i), expiresAtMs: 0 })),
  );
  await write(
    e,
    33n,
    odd.slice(0, 2).map((key, i) => ({ type: 'put', hash: hashOf(7000 + i), key, value: Buffer.from('new'), expiresAtMs: 0 })),
  );
}

describe('RocksDbEngine.dumpRows', () => {
  it('holds exactly what a scan at readTs sees, within the range, in chunks of at most chunkBytes', async () => {
    const e = await engine();
    await history(e);
    const ranges: [bigint, bigint][] = [
      [0n, SPACE_END],
      [SPACE_END / 4n, SPACE_END / 2n],
    ];
    for (const readTs of [15n, 25n, 35n]) {
      for (const [start, end] of ranges) {
        const chunks = await dumpAll(e, start, end, readTs, 4096);
        const rows = chunks.flatMap((c) => decodeRows(c));
        const want = await scanAll(e, start, end, readTs);
        expect(want.length).toBeGreaterThan(50);
        expectSame(rows, want);
        for (const c of chunks) expect(c.length).toBeLessThanOrEqual(4096);
        expect(chunks.length).toBeGreaterThan(1);
        // Every chunk but the last was cut because the next row did not fit.
        for (let i = 0; i + 1 < chunks.length; i++) {
          const next = decodeRows(chunks[i + 1] as Buffer)[0] as ScanItem;
          expect((chunks[i] as Buffer).length + ROW_FIXED_BYTES + next.key.length + next.value.length).toBeGreaterThan(4096);
        }
      }
    }
    // TTL-expired rows are part of the dump (expiry depends on the reader's clock, not the state).
    const at35 = (await dumpAll(e, 0n, SPACE_END, 35n, 1 << 20)).flatMap((c) => decodeRows(c));
    expect(at35.filter((r) => r.expiresAtMs === 500)).toHaveLength(50);
    // An empty range yields nothing.
    expect(await dumpAll(e, 5n, 5n, 35n, 4096)).toEqual([]);
  });

  it('sends a row larger than chunkBytes alone', async () => {
    const e = await engine();
    await write(e, 10n, [put(1, Buffer.alloc(10_000, 1)), put(2, Buffer.alloc(10, 2)), put(3, Buffer.alloc(10, 3))]);
    const chunks = await dumpAll(e, 0n, SPACE_END, 10n, 1000);
    const sizes = chunks.map((c) => decodeRows(c).length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(3);
    const big = chunks.find((c) => c.length > 1000) as Buffer;
    expect(decodeRows(big)).toHaveLength(1);
  });

  it('fails with SNAPSHOT_TOO_OLD when GC passes readTs during the dump, and refuses a readTs below the watermark', async () => {
    const e = await engine();
    await history(e);
    const it = e.dumpRows(0n, SPACE_END, 25n, 1024)[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    await e.gc(26n, 1000);
    const err = await (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done) return undefined;
      }
    })().catch((x: unknown) => x);
    expect(err).toBeInstanceOf(KeyVaError);
    expect((err as KeyVaError).code).toBe('SNAPSHOT_TOO_OLD');
    await expect(dumpAll(e, 0n, SPACE_END, 20n, 1024)).rejects.toMatchObject({ code: 'SNAPSHOT_TOO_OLD' });
    // At or above the watermark it still works, and matches a scan.
    expectSame(
      (await dumpAll(e, 0n, SPACE_END, 26n, 1 << 20)).flatMap((c) => decodeRows(c)),
      await scanAll(e, 0n, SPACE_END, 26n),
    );
  });

  it('runs dumps side by side, survives one broken off, and waits for in-flight writes at or below readTs', async () => {
    const e = await engine();
    await history(e);
    // Broken off after its first chunk: the thread drops it.
    for await (const _ of e.dumpRows(0n, SPACE_END, 35n, 512)) break;
    const [a, b] = await Promise.all([dumpAll(e, 0n, SPACE_END, 15n, 700), dumpAll(e, SPACE_END / 2n, SPACE_END, 35n, 900)]);
    expectSame(
      a.flatMap((c) => decodeRows(c)),
      await scanAll(e, 0n, SPACE_END, 15n),
    );
    expectSame(
      b.flatMap((c) => decodeRows(c)),
      await scanAll(e, SPACE_END / 2n, SPACE_END, 35n),
    );
    // A write submitted (not awaited) before the dump, at its readTs, is in it.
    const pending = write(e, 40n, [put(9999, Buffer.from('late'))]);
    const rows = (await dumpAll(e, 0n, SPACE_END, 40n, 1 << 20)).flatMap((c) => decodeRows(c));
    await pending;
    expect(rows.find((r) => r.key.equals(keyOf(9999)))?.value.toString()).toBe('late');
  });

  it('closing the engine during a dump fails the dump and closes cleanly', async () => {
    const e = await engine();
    await history(e);
    const it = e.dumpRows(0n, SPACE_END, 35n, 256)[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    await e.close();
    await expect(
      (async () => {
        for (;;) if ((await it.next()).done) return 'ended';
      })(),
    ).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    await expect(dumpAll(e, 0n, SPACE_END, 35n, 256)).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
  });
});
