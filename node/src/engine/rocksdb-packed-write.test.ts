/**
 * The packed group-commit write (`keyva_write_packed` in KeyVa's build of the binding, which
 * `npm test` builds first) on real RocksDB: rows written and deleted as packed, the same bytes
 * as the chained batch would write, and a malformed buffer refused with nothing written.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { KvOp } from './ordered-kv.ts';
import { createRocksLevel, type RocksLevelDb } from './rocksdb-binding.ts';
import { packedWriter, packOps } from './rocksdb-packed-write.ts';
import { RocksReader } from './rocksdb-reader.ts';

const dbs: { db: RocksLevelDb; dir: string }[] = [];
afterAll(async () => {
  for (const { db, dir } of dbs) {
    await db.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

async function open(): Promise<RocksLevelDb> {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-packed-'));
  const db = createRocksLevel(dir);
  await db.open({ createIfMissing: true });
  dbs.push({ db, dir });
  return db;
}

const put = (k: string, v: string | Buffer): KvOp => ({ type: 'put', key: Buffer.from(k), value: Buffer.isBuffer(v) ? v : Buffer.from(v) });
const del = (k: string): KvOp => ({ type: 'del', key: Buffer.from(k) });

describe('packOps', () => {
  it('lays records out as kind | keyLen | key | valueLen | value (puts) and kind | keyLen | key (deletes)', () => {
    expect([...packOps([put('ab', 'xyz'), del('c')])]).toEqual([1, 0, 0, 0, 2, 0x61, 0x62, 0, 0, 0, 3, 0x78, 0x79, 0x7a, 0, 0, 0, 0, 1, 0x63]);
    expect(packOps([]).length).toBe(0);
  });
});

describe('keyva_write_packed', () => {
  it('is in the binding npm test builds', async () => {
    const db = await open();
    expect(packedWriter(db.handle), 'run bash scripts/rocksdb-native.sh').toBeDefined();
  });

  it('writes puts and deletes in order, in one batch, empty and binary values included', async () => {
    const db = await open();
    const write = packedWriter(db.handle);
    if (write === undefined) throw new Error('run bash scripts/rocksdb-native.sh');
    const big = Buffer.alloc(300_000, 7);
    write([put('a', '1'), put('b', '2'), put('e', Buffer.alloc(0)), put('z', big), put('\u0000\u00ff', Buffer.from([0, 255]))], true);
    write([del('a'), put('b', '3'), del('missing')], false);
    const r = new RocksReader(db);
    expect(r.get(Buffer.from('a'))).toBeUndefined();
    expect(r.get(Buffer.from('b'))?.toString()).toBe('3');
    expect(r.get(Buffer.from('e'))?.length).toBe(0);
    expect(r.get(Buffer.from('z'))?.equals(big)).toBe(true);
    expect(r.get(Buffer.from('\u0000\u00ff'))).toEqual(Buffer.from([0, 255]));
  });

  it('refuses a truncated or unknown record and writes nothing of the buffer', async () => {
    const db = await open();
    const write = packedWriter(db.handle);
    if (write === undefined) throw new Error('run bash scripts/rocksdb-native.sh');
    const { createRequire } = await import('node:module');
    const b = createRequire(import.meta.url)('@nxtedition/rocksdb/binding.js') as {
      db_init(h: bigint): object;
      keyva_write_packed(db: object, ops: Buffer, sync: boolean): void;
    };
    const ctx = b.db_init(db.handle);
    const good = packOps([put('kept-out', 'v')]);
    expect(() => b.keyva_write_packed(ctx, Buffer.concat([good, good.subarray(0, good.length - 1)]), false)).toThrow(/packed write: truncated record/);
    expect(() => b.keyva_write_packed(ctx, Buffer.concat([good, Buffer.from([9, 0, 0, 0, 0])]), false)).toThrow(/unknown record kind 9/);
    expect(new RocksReader(db).get(Buffer.from('kept-out'))).toBeUndefined();
  });
});
