import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyHash } from '@keyva/client/keyspace';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { RocksDbEngine } from '../engine/rocksdb-engine.ts';
import type { Mutation, StorageEngine } from '../engine/types.ts';
import { DIGEST_PAGE_ROWS, digestPartition } from './partition-digest.ts';

const ALL = { start: 0n, end: 1n << 64n };
const put = (k: string, v: string, expiresAtMs = 0): Mutation => {
  const key = Buffer.from(k);
  return { type: 'put', hash: keyHash(key), key, value: Buffer.from(v), expiresAtMs };
};
const del = (k: string): Mutation => {
  const key = Buffer.from(k);
  return { type: 'delete', hash: keyHash(key), key };
};
const write = (e: StorageEngine, ts: bigint, mutations: Mutation[]) => e.write({ mutations, commitTs: ts, nowMs: 0, sync: false });

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function engines(): Promise<[StorageEngine, StorageEngine]> {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-digest-'));
  dirs.push(dir);
  const r = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
  const m = new MemoryEngine();
  await Promise.all([r.open(), m.open()]);
  return [r, m];
}

describe('partition digest at a timestamp', () => {
  it('is the same on two engines that applied the same history, whatever they applied after read_ts', async () => {
    const [a, b] = await engines();
    try {
      for (const e of [a, b]) {
        await write(e, 10n, [put('k1', 'one'), put('k2', 'two'), put('k3', 'three', 9_000_000_000_000)]);
        await write(e, 20n, [put('k1', 'one-v2'), del('k2')]);
      }
      // Only `a` applied a later entry (stamped above read_ts): the digest at 20 does not change.
      await write(a, 30n, [put('k4', 'four'), put('k1', 'one-v3')]);
      const da = await digestPartition(a, ALL, 20n);
      const db = await digestPartition(b, ALL, 20n);
      expect(da).toEqual(db);
      expect(da).toMatchObject({ keyCount: 2, complete: true, bytes: 2 + 6 + 2 + 5 });
      expect(da.checksum).toMatch(/^[0-9a-f]{64}$/);
      // At 30 they differ (b never applied it), and at 10 they agree again.
      expect((await digestPartition(a, ALL, 30n)).checksum).not.toBe((await digestPartition(b, ALL, 30n)).checksum);
      expect(await digestPartition(a, ALL, 10n)).toEqual(await digestPartition(b, ALL, 10n));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('tells apart a different value, a missing key, a different version and a different expiry', async () => {
    const [a, b] = await engines();
    try {
      await write(a, 10n, [put('x', 'v'), put('y', 'w')]);
      const base = await digestPartition(a, ALL, 10n);
      const variants: Array<(e: StorageEngine) => Promise<unknown>> = [
        (e) => write(e, 10n, [put('x', 'V'), put('y', 'w')]),
        (e) => write(e, 10n, [put('x', 'v')]),
        (e) => write(e, 9n, [put('x', 'v'), put('y', 'w')]),
        (e) => write(e, 10n, [put('x', 'v', 5_000), put('y', 'w')]),
      ];
      for (const make of variants) {
        const e = new MemoryEngine();
        await e.open();
        await make(e);
        const d = await digestPartition(e, ALL, 10n);
        expect(d.checksum, 'a differing replica must not match').not.toBe(base.checksum);
        await e.close();
      }
      // Only the partition's own range counts.
      await write(b, 10n, [put('x', 'v'), put('y', 'w')]);
      const hx = keyHash(Buffer.from('x'));
      const onlyX = { start: hx, end: hx + 1n };
      expect((await digestPartition(b, onlyX, 10n)).keyCount).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('beyond the row budget reports an incomplete count and no checksum', async () => {
    const e = new MemoryEngine();
    await e.open();
    await write(
      e,
      10n,
      Array.from({ length: 50 }, (_, i) => put(`k${i}`, 'v')),
    );
    expect(await digestPartition(e, ALL, 10n, 20)).toMatchObject({ complete: false, checksum: '' });
    expect(await digestPartition(e, ALL, 10n, 50)).toMatchObject({ complete: true, keyCount: 50 });
    await e.close();
  });

  it('reads a large partition in pages, letting the event loop turn between them (clients and Raft go on)', async () => {
    const [r, m] = await engines();
    const rows = 5 * DIGEST_PAGE_ROWS + 17;
    for (let i = 0; i < rows; i += 500)
      await write(
        r,
        BigInt(10 + i),
        Array.from({ length: Math.min(500, rows - i) }, (_, j) => put(`big-${i + j}`, 'x'.repeat(64))),
      );
    let turns = 0;
    let on = true;
    const spin = (): void => {
      if (!on) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const d = await digestPartition(r, ALL, 1n << 40n);
    on = false;
    expect(d).toMatchObject({ complete: true, keyCount: rows });
    // One page per turn at least: the loop turned once per page.
    expect(turns).toBeGreaterThanOrEqual(Math.ceil(rows / DIGEST_PAGE_ROWS));
    await Promise.all([r.close(), m.close()]);
  });
});
