/**
 * Raw RocksDB through the same binding KeyVa uses (@nxtedition/rocksdb), as the storage
 * ceiling: durable puts with ideal group commit (all writes pending at a time go in one synced
 * batch, on the calling thread) and point reads with querySync, no network, no MVCC.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRocksLevel, type RocksLevelDb } from '@keyva/node/engine/rocksdb-binding';

export interface RawRocks {
  /** Durable put, group-committed with every put pending at the same time (the storage ceiling). */
  put(key: Buffer, value: Buffer): Promise<void>;
  /** Durable put as the binding does it when used directly: one synced batch per put, on this thread. */
  putDirect(key: Buffer, value: Buffer): Promise<void>;
  get(key: Buffer): Promise<Buffer | undefined>;
  /** Up to `limit` entries with gte <= key < lt, in key order (YCSB workload E). */
  scan(gte: Buffer, lt: Buffer, limit: number): Promise<number>;
  /** Writes `entries` in one synced batch (bulk load). */
  putMany(entries: readonly (readonly [Buffer, Buffer])[]): Promise<void>;
  readonly groups: number;
  close(): Promise<void>;
}

export async function openRawRocks(): Promise<RawRocks> {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-bench-raw-'));
  const db: RocksLevelDb = createRocksLevel(dir);
  await db.open({ createIfMissing: true, compression: true, cacheSize: 64 * 1024 * 1024, filterPolicy: 'bloomfilter:10:false' });
  let pending: { key: Buffer; value: Buffer; done: () => void }[] = [];
  let scheduled = false;
  let groups = 0;
  const flush = () => {
    scheduled = false;
    const group = pending;
    pending = [];
    const b = db.batch();
    for (const w of group) b.put(w.key, w.value);
    b._writeSync({ sync: true });
    b._closeSync();
    groups++;
    for (const w of group) w.done();
  };
  return {
    putDirect: async (key, value) => {
      const b = db.batch();
      b.put(key, value);
      b._writeSync({ sync: true });
      b._closeSync();
    },
    put: (key, value) =>
      new Promise<void>((done) => {
        pending.push({ key, value, done });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      }),
    get: async (key) => {
      const r = db.querySync({
        gte: key,
        lt: Buffer.concat([key, Buffer.from([0])]),
        limit: 1,
        keys: false,
        values: true,
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
      });
      // Rows come as [key, value] pairs; with keys: false the key slot is undefined.
      return r.rows[1];
    },
    scan: async (gte, lt, limit) => {
      const r = db.querySync({ gte, lt, limit, keys: true, values: true, keyEncoding: 'buffer', valueEncoding: 'buffer' });
      return r.rows.length / 2;
    },
    putMany: async (entries) => {
      const b = db.batch();
      for (const [k, v] of entries) b.put(k, v);
      b._writeSync({ sync: true });
      b._closeSync();
    },
    get groups() {
      return groups;
    },
    async close() {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
