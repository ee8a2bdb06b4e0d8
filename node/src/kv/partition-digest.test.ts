import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyHash } from '@keyva/client/keyspace';
import { afterEach, describe, expect, it, vi } from 'vitest';
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
    for (const e of await engines()) {
      await write(
        e,
        10n,
        Array.from({ length: 50 }, (_, i) => put(`k${i}`, 'v')),
      );
      expect(await digestPartition(e, ALL, 10n, 20), e.kind).toMatchObject({ complete: false, checksum: '' });
      expect(await digestPartition(e, ALL, 10n, 50), e.kind).toMatchObject({ complete: true, keyCount: 50 });
      await e.close();
    }
  });

  it('hashes the layout digests have always hashed, on both engines (nodes of earlier versions agree)', async () => {
    // The reference: each row as `hash | version | expiresAtMs | key length | value length | key | value`, scanned.
    const reference = async (e: StorageEngine, readTs: bigint): Promise<string> => {
      const h = createHash('sha256');
      const page = await e.scan({ startHash: ALL.start, endHash: ALL.end }, readTs, 0, 10_000);
      for (const it of page.items) {
        const head = Buffer.alloc(32);
        head.writeBigUInt64BE(it.hash, 0);
        head.writeBigUInt64BE(it.version, 8);
        head.writeDoubleBE(it.expiresAtMs, 16);
        head.writeUInt32BE(it.key.length, 24);
        head.writeUInt32BE(it.value.length, 28);
        h.update(Buffer.concat([head, it.key, it.value]));
      }
      return h.digest('hex');
    };
    for (const e of await engines()) {
      for (let v = 1; v <= 3; v++)
        await write(
          e,
          BigInt(v * 10),
          Array.from({ length: 300 }, (_, i) => (i % 7 === v ? del(`k${i}`) : put(`k${i}`, `v${v}-${'x'.repeat(i % 50)}`, i % 5 === 0 ? 1_000 * v : 0))),
        );
      for (const readTs of [15n, 30n]) expect((await digestPartition(e, ALL, readTs)).checksum, `${e.kind} at ${readTs}`).toBe(await reference(e, readTs));
      await e.close();
    }
  });

  it('reads a large partition on the dump thread (RocksDB) or in pages, letting the event loop turn meanwhile (clients and Raft go on)', async () => {
    const rows = 5 * DIGEST_PAGE_ROWS + 17;
    for (const e of await engines()) {
      for (let i = 0; i < rows; i += 500)
        await write(
          e,
          BigInt(10 + i),
          Array.from({ length: Math.min(500, rows - i) }, (_, j) => put(`big-${i + j}`, 'x'.repeat(64))),
        );
      const scans = vi.spyOn(e, 'scan');
      let turns = 0;
      let on = true;
      const spin = (): void => {
        if (!on) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      const d = await digestPartition(e, ALL, 1n << 40n);
      on = false;
      expect(d, e.kind).toMatchObject({ complete: true, keyCount: rows });
      if (e.kind === 'rocksdb') {
        // Read on the engine's dump thread, not by scans on this one.
        expect(scans).not.toHaveBeenCalled();
        expect(turns).toBeGreaterThan(0);
      } else {
        // One page per turn at least: the loop turned once per page.
        expect(scans.mock.calls.length).toBe(Math.ceil(rows / DIGEST_PAGE_ROWS));
        expect(turns).toBeGreaterThanOrEqual(Math.ceil(rows / DIGEST_PAGE_ROWS));
      }
      await e.close();
    }
  });
});
