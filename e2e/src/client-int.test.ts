/**
 * The SDK against a real KeyVa node (`startNode` from @keyva/node, memory engine, loopback
 * ports picked by the OS): the wire contract end to end — stream and unary paths, conditions
 * and CAS, batches, scans and cursors, error trailers, admin calls.
 */

import { KeyVa } from '@keyva/client';
import { startNode, validateNodeConfig } from '@keyva/node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rejection } from '../../client/src/testing/rejection.ts';

type RunningNode = Awaited<ReturnType<typeof startNode>>;

let node: RunningNode;
let streamed: KeyVa;
let unary: KeyVa;

beforeAll(async () => {
  const config = validateNodeConfig({
    engine: 'memory',
    grpcPort: 0,
    httpPort: 0,
    logLevel: 'silent',
    partitions: 8,
    valueBytesMax: 1024,
    dataDir: '/nonexistent-memory',
  });
  node = await startNode(config);
  streamed = await KeyVa.connect({ endpoints: [node.grpcAddress] });
  unary = await KeyVa.connect({ endpoints: [node.grpcAddress], useStream: false });
});

afterAll(async () => {
  await streamed?.close();
  await unary?.close();
  await node?.stop();
});

describe.each([
  ['stream', () => streamed],
  ['unary', () => unary],
])('against a real node (%s)', (name, kvOf) => {
  const p = (k: string) => `${name}:${k}`;

  test('put, get, delete with strings and bytes', async () => {
    const kv = kvOf();
    const { version } = await kv.put(p('a'), 'alpha');
    expect(version).toBeGreaterThan(0n);
    const e = await kv.get(p('a'));
    expect(e?.value.toString()).toBe('alpha');
    expect(e?.version).toBe(version);
    await kv.put(new Uint8Array(Buffer.from(p('bin'))), new Uint8Array([0, 255, 1]));
    expect([...((await kv.get(p('bin')))?.value ?? [])]).toEqual([0, 255, 1]);
    expect(await kv.get(p('missing'))).toBeUndefined();
    const d = await kv.delete(p('a'));
    expect(d.deleted).toBe(true);
    expect(d.version).toBeGreaterThan(version);
    expect(await kv.get(p('a'))).toBeUndefined();
    expect((await kv.delete(p('a'))).deleted).toBe(false);
  });

  test('conditions, and CAS with the current version from CONDITION_FAILED', async () => {
    const kv = kvOf();
    const created = await kv.cas(p('c'), { absent: true }, '1');
    expect(created.ok).toBe(true);
    const v1 = created.ok ? created.version : 0n;
    expect(await kv.cas(p('c'), { absent: true }, 'x')).toEqual({ ok: false, currentVersion: v1 });
    const r = await kv.cas(p('c'), { version: v1 }, '2');
    expect(r.ok).toBe(true);
    expect(await kv.cas(p('c'), { version: v1 }, '3')).toMatchObject({ ok: false });
    expect((await kv.cas(p('c'), { value: '2' }, '3')).ok).toBe(true);
    const e = await rejection(kv.put(p('c'), 'y', { ifAbsent: true }));
    expect(e.code).toBe('CONDITION_FAILED');
    expect((await rejection(kv.delete(p('c'), { ifValue: 'nope' }))).code).toBe('CONDITION_FAILED');
    expect((await kv.delete(p('c'), { ifExists: true })).deleted).toBe(true);
  });

  test('node errors arrive as stable codes with details', async () => {
    const kv = kvOf();
    const e = await rejection(kv.put(p('big'), Buffer.alloc(4096)));
    expect(e.code).toBe('VALUE_TOO_LARGE');
    expect(e.retryable).toBe(false);
    expect(e.details.limit).toBe('1024');
  });

  test('ttl', async () => {
    const kv = kvOf();
    const t0 = Date.now();
    await kv.put(p('ttl'), 'v', { ttlMs: 60_000 });
    const e = await kv.get(p('ttl'));
    expect(e?.expiresAtMs).toBeGreaterThanOrEqual(t0 + 59_000);
  });
});

describe('batches, scans and admin against a real node', () => {
  test('batchWrite and batchGet', async () => {
    const w = await streamed.batchWrite([
      { type: 'put', key: 'b:1', value: 'one' },
      { type: 'put', key: 'b:2', value: 'two' },
      { type: 'delete', key: 'b:3' },
    ]);
    expect(w.versions).toHaveLength(3);
    const got = await streamed.batchGet(['b:2', 'b:3', 'b:1']);
    expect(got.map((e) => e?.value.toString())).toEqual(['two', undefined, 'one']);
  });

  test('tag scans in key order, whole-keyspace scans, paging with cursors', async () => {
    const tagged = Array.from({ length: 25 }, (_, i) => `{scan}:${String(i).padStart(3, '0')}`);
    await streamed.batchWrite(tagged.map((key) => ({ type: 'put' as const, key, value: key })));
    const keys: string[] = [];
    for await (const e of streamed.scan({ tag: 'scan' })) keys.push(e.key.toString());
    expect(keys).toEqual(tagged);
    const bounded: string[] = [];
    for await (const e of streamed.scan({ tag: 'scan', start: tagged[5], end: tagged[9], keysOnly: true })) {
      bounded.push(e.key.toString());
      expect(e.value.length).toBe(0);
    }
    expect(bounded).toEqual(tagged.slice(5, 9));
    const limited: string[] = [];
    for await (const e of streamed.scan({ tag: 'scan', limit: 7 })) limited.push(e.key.toString());
    expect(limited).toEqual(tagged.slice(0, 7));
    // Paging: every tag key exactly once.
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await streamed.scanPage({ tag: 'scan', limit: 10, cursor });
      paged.push(...page.items.map((e) => e.key.toString()));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(paged).toEqual(tagged);
    // The whole keyspace holds the tag keys too.
    const all = new Set<string>();
    for await (const e of streamed.scan()) all.add(e.key.toString());
    for (const k of tagged) expect(all.has(k)).toBe(true);
  });

  test('partition map, health and node info', async () => {
    const map = await streamed.partitionMap({ refresh: true });
    expect(map.partitions).toHaveLength(8);
    expect(map.nodes.get(node.nodeId)?.grpcAddress).toBe(node.grpcAddress);
    expect(await streamed.health()).toEqual({ status: 'SERVING', nodeId: node.nodeId });
    const info = await streamed.nodeInfo();
    expect(info.nodeId).toBe(node.nodeId);
    expect(info.engine).toBe('memory');
    expect(info.partitions).toBe(8);
  });

  test('many concurrent pipelined operations', async () => {
    const n = 1000;
    await Promise.all(Array.from({ length: n }, (_, i) => streamed.put(`pipe:${i}`, String(i))));
    const values = await Promise.all(Array.from({ length: n }, (_, i) => streamed.getString(`pipe:${i}`)));
    expect(values).toEqual(Array.from({ length: n }, (_, i) => String(i)));
  });
});
