/** The KV API end to end over real gRPC and HTTP on loopback, on both engines. */

import type * as grpc from '@grpc/grpc-js';
import type { GetResponseOut, PutResponseOut, ScanResponseOut, StreamResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallError, scanAll, startTestNode, type TestNode, unary } from '../testing/test-node.ts';

for (const engine of ['memory', 'rocksdb'] as const) {
  describe(`KV API over gRPC and REST (${engine})`, () => {
    let t: TestNode;
    beforeAll(async () => {
      t = await startTestNode(engine);
    });
    afterAll(async () => {
      await t.close();
    });

    const put = (key: string, value: string, extra: Record<string, unknown> = {}) =>
      unary<object, PutResponseOut>(t.kv, 'put', { key: Buffer.from(key), value: Buffer.from(value), ...extra });
    const get = (key: string, extra: Record<string, unknown> = {}) => unary<object, GetResponseOut>(t.kv, 'get', { key: Buffer.from(key), ...extra });

    it('puts, gets, overwrites and deletes with versions', async () => {
      const v1 = BigInt((await put('a', '1')).version);
      const g1 = await get('a');
      expect(g1.found).toBe(true);
      expect(g1.value.toString()).toBe('1');
      expect(BigInt(g1.version)).toBe(v1);
      const v2 = BigInt((await put('a', '2')).version);
      expect(v2).toBeGreaterThan(v1);
      const del = await unary<object, { deleted: boolean }>(t.kv, 'delete', { key: Buffer.from('a') });
      expect(del.deleted).toBe(true);
      expect((await get('a')).found).toBe(false);
      const again = await unary<object, { deleted: boolean }>(t.kv, 'delete', { key: Buffer.from('a') });
      expect(again.deleted).toBe(false);
    });

    it('reads an older version at a snapshot timestamp', async () => {
      const v1 = (await put('snap', 'old')).version;
      await put('snap', 'new');
      const old = await get('snap', { read: { consistency: 'SNAPSHOT', snapshotTs: v1 } });
      expect(old.value.toString()).toBe('old');
      expect((await get('snap')).value.toString()).toBe('new');
    });

    it('applies conditions: absent, version, value; a failed one writes nothing', async () => {
      await put('c', 'x', { condition: { absent: true } });
      const err = (await put('c', 'y', { condition: { absent: true } }).catch((e: CallError) => e)) as CallError;
      expect(err.keyvaCode).toBe('CONDITION_FAILED');
      const cur = await get('c');
      expect(cur.value.toString()).toBe('x');
      await put('c', 'z', { condition: { versionEquals: cur.version } });
      const stale = (await put('c', 'w', { condition: { versionEquals: cur.version } }).catch((e: CallError) => e)) as CallError;
      expect(stale.keyvaCode).toBe('CONDITION_FAILED');
      await put('c', 'v', { condition: { valueEquals: Buffer.from('z') } });
      expect((await get('c')).value.toString()).toBe('v');
    });

    it('expires keys after their TTL', async () => {
      await put('ttl', 'soon', { ttlMs: '150' });
      const g = await get('ttl');
      expect(g.found).toBe(true);
      expect(Number(g.expiresAtMs)).toBeGreaterThan(Date.now());
      await new Promise((r) => setTimeout(r, 250));
      expect((await get('ttl')).found).toBe(false);
    });

    it('batch writes atomically and batch gets in order', async () => {
      const res = await unary<object, { versions: string[] }>(t.kv, 'batchWrite', {
        mutations: [
          { put: { key: Buffer.from('{b}1'), value: Buffer.from('one') } },
          { put: { key: Buffer.from('{b}2'), value: Buffer.from('two') } },
          { delete: { key: Buffer.from('{b}3') } },
        ],
      });
      expect(res.versions).toHaveLength(3);
      const bad = (await unary(t.kv, 'batchWrite', {
        mutations: [
          { put: { key: Buffer.from('{b}1'), value: Buffer.from('changed') } },
          { put: { key: Buffer.from('{b}2'), value: Buffer.from('x'), condition: { absent: true } } },
        ],
      }).catch((e: CallError) => e)) as CallError;
      expect(bad.keyvaCode).toBe('CONDITION_FAILED');
      const got = await unary<object, { results: GetResponseOut[] }>(t.kv, 'batchGet', {
        keys: [Buffer.from('{b}2'), Buffer.from('{b}1'), Buffer.from('{b}9')],
      });
      expect(got.results.map((r) => (r.found ? r.value.toString() : null))).toEqual(['two', 'one', null]);
    });

    it('scans inside a hash tag in key order, with prefix, range, limit and cursor', async () => {
      for (const k of ['05', '01', '03', '02', '04', '10']) await put(`{user7}:${k}`, `v${k}`);
      await put('{other}:01', 'o');
      const all = (await scanAll<ScanResponseOut>(t.kv, { tag: Buffer.from('user7') })).flatMap((c) => c.items.map((i) => i.key.toString()));
      expect(all).toEqual(['{user7}:01', '{user7}:02', '{user7}:03', '{user7}:04', '{user7}:05', '{user7}:10']);
      const ranged = (
        await scanAll<ScanResponseOut>(t.kv, { tag: Buffer.from('user7'), start: Buffer.from('{user7}:02'), end: Buffer.from('{user7}:05') })
      ).flatMap((c) => c.items.map((i) => i.key.toString()));
      expect(ranged).toEqual(['{user7}:02', '{user7}:03', '{user7}:04']);
      const byPrefix = (await scanAll<ScanResponseOut>(t.kv, { prefix: Buffer.from('{user7}:0') })).flatMap((c) => c.items.map((i) => i.key.toString()));
      expect(byPrefix).toHaveLength(5);
      const page1 = await scanAll<ScanResponseOut>(t.kv, { tag: Buffer.from('user7'), limit: 4 });
      const cursor = page1.at(-1)?.nextCursor ?? '';
      expect(cursor).not.toBe('');
      const page2 = await scanAll<ScanResponseOut>(t.kv, { tag: Buffer.from('user7'), limit: 4, cursor });
      expect(page2.flatMap((c) => c.items.map((i) => i.key.toString()))).toEqual(['{user7}:05', '{user7}:10']);
      expect(page2.at(-1)?.nextCursor).toBe('');
    });

    it('walks the whole keyspace with a resumable cursor, each key once', async () => {
      for (let i = 0; i < 40; i++) await put(`walk-${i}`, String(i));
      const seen: string[] = [];
      let cursor = '';
      do {
        const page = await scanAll<ScanResponseOut>(t.kv, { prefix: Buffer.from('walk-'), limit: 7, cursor });
        for (const c of page) seen.push(...c.items.map((i) => i.key.toString()));
        cursor = page.at(-1)?.nextCursor ?? '';
      } while (cursor);
      expect(seen.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `walk-${i}`).sort());
    });

    it('pipelines operations over the bidirectional stream, answering by id', async () => {
      const call = (t.kv as unknown as { stream(): grpc.ClientDuplexStream<object, StreamResponseOut> }).stream();
      const answers = new Map<string, StreamResponseOut>();
      const done = new Promise<void>((resolve, reject) => {
        call.on('data', (r: StreamResponseOut) => answers.set(r.id, r));
        call.on('end', resolve);
        call.on('error', reject);
      });
      for (let i = 1; i <= 200; i++) call.write({ id: String(i), put: { key: Buffer.from(`s${i}`), value: Buffer.from(`v${i}`) } });
      call.write({ id: '201', put: { key: Buffer.alloc(0), value: Buffer.from('bad') } });
      // Pipelined operations run concurrently (answers come in any order), so a get sees a put
      // only once the put is acknowledged: read back after every put has answered.
      while (answers.size < 201) await new Promise((r) => setTimeout(r, 5));
      for (let i = 1; i <= 200; i++) call.write({ id: String(1000 + i), get: { key: Buffer.from(`s${i}`) } });
      call.end();
      await done;
      expect(answers.size).toBe(401);
      expect(answers.get('201')?.error?.code).toBe('KEY_EMPTY');
      for (let i = 1; i <= 200; i++) expect(answers.get(String(1000 + i))?.get?.value.toString()).toBe(`v${i}`);
    });

    it('serves the same data over REST, raw and JSON', async () => {
      let r = await fetch(`${t.http}/v1/kv/rest-key`, { method: 'PUT', body: 'raw-bytes', headers: { 'content-type': 'application/octet-stream' } });
      expect(r.status).toBe(200);
      r = await fetch(`${t.http}/v1/kv/rest-key`);
      const body = (await r.json()) as { valueText: string; version: string };
      expect(body.valueText).toBe('raw-bytes');
      r = await fetch(`${t.http}/v1/kv/rest-key`, { headers: { accept: 'application/octet-stream' } });
      expect(await r.text()).toBe('raw-bytes');
      expect(r.headers.get('keyva-version')).toBe(body.version);
      r = await fetch(`${t.http}/v1/kv/rest-json`, {
        method: 'PUT',
        body: JSON.stringify({ value: Buffer.from('j').toString('base64') }),
        headers: { 'content-type': 'application/json' },
      });
      expect(r.status).toBe(200);
      expect((await get('rest-json')).value.toString()).toBe('j');
      r = await fetch(`${t.http}/v1/kv?tag=user7&limit=2`);
      const scan = (await r.json()) as { items: { keyText: string }[]; nextCursor: string };
      expect(scan.items.map((i) => i.keyText)).toEqual(['{user7}:01', '{user7}:02']);
      r = await fetch(`${t.http}/v1/kv?tag=user7&limit=2&cursor=${scan.nextCursor}`);
      expect(((await r.json()) as { items: { keyText: string }[] }).items.map((i) => i.keyText)).toEqual(['{user7}:03', '{user7}:04']);
      r = await fetch(`${t.http}/v1/kv/rest-key`, { method: 'DELETE' });
      expect(((await r.json()) as { deleted: boolean }).deleted).toBe(true);
      r = await fetch(`${t.http}/v1/kv/rest-key`);
      expect(r.status).toBe(404);
    });

    it('answers health, node info, partition map, readiness and metrics', async () => {
      const h = await unary<object, { status: string; nodeId: string }>(t.admin, 'health', {});
      expect(h.status).toBe('SERVING');
      const info = await unary<object, { engine: string; partitions: number }>(t.admin, 'nodeInfo', {});
      expect(info.engine).toBe(engine);
      expect(info.partitions).toBe(64);
      const map = await unary<object, { map: { partitions: unknown[]; nodes: { id: string }[] } }>(t.admin, 'getPartitionMap', {});
      expect(map.map.partitions).toHaveLength(64);
      expect(map.map.nodes[0]?.id).toBe(h.nodeId);
      expect((await fetch(`${t.http}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${t.http}/metrics`)).text();
      expect(metrics).toMatch(/keyva_requests_total\{method="Put",code="OK",transport="grpc"\} \d+/);
      expect(metrics).toContain('keyva_request_duration_seconds_bucket');
      expect(metrics).toContain('keyva_storage_bytes');
      // RocksDB's background work, read at scrape time (NaN on the memory engine).
      const level0 = /^keyva_rocksdb_level0_files (\S+)$/m.exec(metrics)?.[1];
      const stopped = /^keyva_rocksdb_write_stopped (\S+)$/m.exec(metrics)?.[1];
      const pending = /^keyva_rocksdb_compaction_pending_bytes (\S+)$/m.exec(metrics)?.[1];
      const dropped = /^keyva_rocksdb_range_dropped_file_bytes (\S+)$/m.exec(metrics)?.[1];
      if (engine === 'rocksdb') {
        expect(Number(level0)).toBeGreaterThanOrEqual(0);
        expect(stopped).toBe('0');
        expect(Number(pending)).toBeGreaterThanOrEqual(0);
        expect(metrics).toMatch(/^keyva_rocksdb_compactions_running \d+$/m);
        expect(metrics).toMatch(/^keyva_rocksdb_write_delayed_rate \d+$/m);
        expect(dropped).toBe('0'); // no range deleted yet
      } else expect([level0, stopped, pending, dropped]).toEqual(['Nan', 'Nan', 'Nan', 'Nan']); // (prom-client's spelling)
    });
  });
}
