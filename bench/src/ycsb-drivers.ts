/**
 * The client side of each YCSB target, used inside the client processes: one small driver
 * per system, each with the same five operations, so one load generator drives them all.
 */
import { KeyVa } from '@keyva/client';
import { keyHash } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import { echoClient } from './echo-service.ts';
import { openRawRocks } from './raw-rocksdb.ts';
import type { TargetSpec } from './ycsb-targets.ts';
import { tagEnd } from './ycsb-workloads.ts';

export interface Driver {
  /** Whether the key exists. */
  read(key: string): Promise<boolean>;
  update(key: string, value: Buffer): Promise<void>;
  insert(key: string, value: Buffer): Promise<void>;
  /** Up to `count` records of `tag` from `startKey` in key order; returns how many came back. */
  scan(tag: string, startKey: string, count: number): Promise<number>;
  /** Bulk-writes records (load phase). */
  load(entries: readonly (readonly [string, Buffer])[]): Promise<void>;
  /** Records per load call. */
  readonly loadBatch: number;
  close(): Promise<void>;
}

export async function openDriver(spec: TargetSpec, valueSize: number): Promise<Driver> {
  switch (spec.kind) {
    case 'keyva':
      return keyvaDriver(spec.endpoints, spec.useStream, spec.exactlyOnce);
    case 'etcd':
      return etcdDriver(spec.endpoints);
    case 'redis':
      return redisDriver(spec.host, spec.port);
    case 'echo':
      return echoDriver(spec.address, valueSize);
    case 'rocksdb-raw':
      return rawRocksDriver();
  }
}

const LOAD_ATTEMPTS = 8;

/** Runs an idempotent load write again on retryable failures (and unknown outcomes), up to LOAD_ATTEMPTS times. */
async function retryLoad<T>(f: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      const again = e instanceof KeyVaError && (e.retryable || e.code === 'DEADLINE_EXCEEDED');
      if (!again || attempt >= LOAD_ATTEMPTS) throw e;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

async function keyvaDriver(endpoints: readonly string[], useStream: boolean, exactlyOnce: boolean): Promise<Driver> {
  const kv = await KeyVa.connect({ endpoints, useStream, exactlyOnce, deadlineMs: 10_000 });
  return {
    read: async (key) => (await kv.get(key)) !== undefined,
    update: async (key, value) => {
      await kv.put(key, value);
    },
    insert: async (key, value) => {
      await kv.put(key, value);
    },
    scan: async (tag, startKey, count) => (await kv.scanPage({ tag, start: startKey, limit: count })).items.length,
    load: async (entries) => {
      // Replicated, a batch is atomic within one partition only (the node refuses others): one batch per partition.
      const map = await kv.partitionMap();
      const replicated = map.nodes.size > 1 || map.partitions.some((p) => p.replicas.length > 1);
      const groups = new Map<number, (readonly [string, Buffer])[]>();
      for (const e of entries) {
        const id = replicated ? map.locate(keyHash(Buffer.from(e[0]))).id : 0;
        const g = groups.get(id);
        if (g) g.push(e);
        else groups.set(id, [e]);
      }
      // A load batch is idempotent (the same puts again): retried while leadership moves (a busy machine).
      await Promise.all([...groups.values()].map((g) => retryLoad(() => kv.batchWrite(g.map(([key, value]) => ({ type: 'put' as const, key, value }))))));
    },
    loadBatch: 500,
    close: () => kv.close(),
  };
}

async function etcdDriver(endpoints: readonly string[]): Promise<Driver> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
  const kv = client.kv;
  // Every call has a deadline, as KeyVa's SDK calls do (10 s).
  const dl = () => ({ deadline: Date.now() + 10_000 });
  return {
    read: async (key) => (await kv.range({ key: Buffer.from(key) }, dl())).kvs.length > 0,
    update: async (key, value) => {
      await kv.put({ key: Buffer.from(key), value }, dl());
    },
    insert: async (key, value) => {
      await kv.put({ key: Buffer.from(key), value }, dl());
    },
    scan: async (tag, startKey, count) => (await kv.range({ key: Buffer.from(startKey), range_end: Buffer.from(tagEnd(tag)), limit: count }, dl())).kvs.length,
    // etcd's default --max-txn-ops is 128.
    load: async (entries) => {
      await kv.txn({ compare: [], success: entries.map(([key, value]) => ({ request_put: { key: Buffer.from(key), value } })), failure: [] }, dl());
    },
    loadBatch: 128,
    close: async () => client.close(),
  };
}

async function redisDriver(host: string, port: number): Promise<Driver> {
  const { createClient, RESP_TYPES } = await import('@redis/client');
  const base = createClient({ socket: { host, port } });
  base.on('error', () => undefined);
  await base.connect();
  // Values come back as Buffers (no UTF-8 decoding), as from the other clients.
  const c = base.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  return {
    read: async (key) => (await c.get(key)) !== null,
    update: async (key, value) => {
      await c.set(key, value);
    },
    insert: async (key, value) => {
      await c.set(key, value);
    },
    scan: async () => {
      throw new Error('redis: no ordered scans');
    },
    load: async (entries) => {
      await c.mSet(entries.map(([k, v]) => [k, v] as [string, Buffer]));
    },
    loadBatch: 500,
    close: async () => {
      base.destroy();
    },
  };
}

/** Each op is one bidi-stream echo of a payload as large as KeyVa's answer (reads) or request (writes). */
async function echoDriver(address: string, valueSize: number): Promise<Driver> {
  const ec = echoClient(address);
  const record = Buffer.alloc(valueSize + 48, 0x62);
  const small = Buffer.alloc(48, 0x62);
  return {
    read: async () => (await ec.streamed(record)).length > 0,
    update: async () => {
      await ec.streamed(record);
    },
    insert: async () => {
      await ec.streamed(record);
    },
    scan: async (_tag, _start, count) => {
      await ec.streamed(count > 0 ? Buffer.alloc(count * record.length, 0x62) : small);
      return count;
    },
    load: async () => {},
    loadBatch: 1000,
    close: async () => ec.close(),
  };
}

async function rawRocksDriver(): Promise<Driver> {
  const db = await openRawRocks();
  return {
    read: async (key) => (await db.get(Buffer.from(key))) !== undefined,
    update: (key, value) => db.put(Buffer.from(key), value),
    insert: (key, value) => db.put(Buffer.from(key), value),
    scan: (tag, startKey, count) => db.scan(Buffer.from(startKey), Buffer.from(tagEnd(tag)), count),
    load: (entries) => db.putMany(entries.map(([k, v]) => [Buffer.from(k), v] as const)),
    loadBatch: 1000,
    close: () => db.close(),
  };
}
