/**
 * Bad input of every kind, over gRPC and REST, against a real node on RocksDB: each gets its
 * specific error code and status, stored data stays exactly as it was, and the node keeps serving.
 */
import * as grpc from '@grpc/grpc-js';
import type { GetResponseOut, ScanResponseOut, StreamResponseOut } from '@keyva/proto';
import { ERROR_METADATA } from '@keyva/proto/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallError, scanAll, startTestNode, type TestNode, unary } from '../testing/test-node.ts';

const LIMITS = { keyBytesMax: 256, valueBytesMax: 16 * 1024, messageBytesMax: 64 * 1024, batchOpsMax: 10, ttlMsMax: 1_000_000 };

interface Snapshot {
  key: string;
  value: string;
  version: string;
}

describe('bad input never crashes the node nor changes stored data', () => {
  let t: TestNode;
  let tried = 0;

  const snapshot = async (): Promise<Snapshot[]> =>
    (await scanAll<ScanResponseOut>(t.kv, {})).flatMap((c) =>
      c.items.map((i) => ({ key: i.key.toString('hex'), value: i.value.toString('hex'), version: i.version })),
    );

  const grpcRejects = async (what: string, p: Promise<unknown>, keyvaCode: string | undefined, status: grpc.status) => {
    tried++;
    const e = (await p.then(
      () => undefined,
      (err: CallError) => err,
    )) as CallError | undefined;
    expect(e, `${what} should fail`).toBeDefined();
    expect(e?.code, what).toBe(status);
    expect(e?.keyvaCode, what).toBe(keyvaCode);
  };

  const restRejects = async (what: string, path: string, init: RequestInit, code: string, status: number) => {
    tried++;
    const r = await fetch(`${t.http}${path}`, init);
    expect(r.status, what).toBe(status);
    expect(r.headers.get(ERROR_METADATA.code), what).toBe(code);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code, what).toBe(code);
    expect(body.error.message.length, what).toBeGreaterThan(5);
    return r;
  };

  let before: Snapshot[];
  beforeAll(async () => {
    t = await startTestNode('rocksdb', LIMITS);
    for (let i = 0; i < 20; i++) await unary(t.kv, 'put', { key: Buffer.from(`keep-${i}`), value: Buffer.from(`value-${i}`) });
    await unary(t.kv, 'put', { key: Buffer.from('{t}a'), value: Buffer.from('tagged') });
    before = await snapshot();
    expect(before).toHaveLength(21);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('gRPC: keys, values, TTLs, batches, conditions, cursors, snapshots', async () => {
    const put = (req: object) => unary(t.kv, 'put', req);
    const S = grpc.status;
    await grpcRejects('empty key', put({ key: Buffer.alloc(0), value: Buffer.from('x') }), 'KEY_EMPTY', S.INVALID_ARGUMENT);
    await grpcRejects('get empty key', unary(t.kv, 'get', { key: Buffer.alloc(0) }), 'KEY_EMPTY', S.INVALID_ARGUMENT);
    await grpcRejects('delete empty key', unary(t.kv, 'delete', { key: Buffer.alloc(0) }), 'KEY_EMPTY', S.INVALID_ARGUMENT);
    await grpcRejects('oversized key', put({ key: Buffer.alloc(257, 1), value: Buffer.from('x') }), 'KEY_TOO_LARGE', S.INVALID_ARGUMENT);
    await grpcRejects('oversized value', put({ key: Buffer.from('keep-1'), value: Buffer.alloc(16 * 1024 + 1) }), 'VALUE_TOO_LARGE', S.INVALID_ARGUMENT);
    await grpcRejects('negative TTL', put({ key: Buffer.from('keep-1'), value: Buffer.from('x'), ttlMs: '-5' }), 'INVALID_TTL', S.INVALID_ARGUMENT);
    await grpcRejects('TTL above max', put({ key: Buffer.from('keep-1'), value: Buffer.from('x'), ttlMs: '1000001' }), 'INVALID_TTL', S.INVALID_ARGUMENT);
    await grpcRejects(
      'batch with one bad mutation',
      unary(t.kv, 'batchWrite', {
        mutations: [{ put: { key: Buffer.from('keep-2'), value: Buffer.from('changed') } }, { put: { key: Buffer.alloc(0), value: Buffer.from('x') } }],
      }),
      'KEY_EMPTY',
      S.INVALID_ARGUMENT,
    );
    await grpcRejects(
      'batch with failed condition',
      unary(t.kv, 'batchWrite', {
        mutations: [
          { put: { key: Buffer.from('keep-3'), value: Buffer.from('changed') } },
          { delete: { key: Buffer.from('keep-4'), condition: { absent: true } } },
        ],
      }),
      'CONDITION_FAILED',
      S.FAILED_PRECONDITION,
    );
    await grpcRejects(
      'batch too large',
      unary(t.kv, 'batchWrite', { mutations: Array.from({ length: 11 }, (_, i) => ({ put: { key: Buffer.from(`n${i}`), value: Buffer.from('x') } })) }),
      'BATCH_TOO_LARGE',
      S.INVALID_ARGUMENT,
    );
    await grpcRejects('empty batch', unary(t.kv, 'batchWrite', { mutations: [] }), 'INVALID_ARGUMENT', S.INVALID_ARGUMENT);
    await grpcRejects(
      'batch get too large',
      unary(t.kv, 'batchGet', { keys: Array.from({ length: 11 }, () => Buffer.from('k')) }),
      'BATCH_TOO_LARGE',
      S.INVALID_ARGUMENT,
    );
    await grpcRejects(
      'version condition mismatch',
      put({ key: Buffer.from('keep-5'), value: Buffer.from('x'), condition: { versionEquals: '1' } }),
      'CONDITION_FAILED',
      S.FAILED_PRECONDITION,
    );
    await grpcRejects('garbage cursor', scanAll(t.kv, { cursor: 'not a cursor!' }), 'INVALID_CURSOR', S.INVALID_ARGUMENT);
    await grpcRejects('base64 of junk cursor', scanAll(t.kv, { cursor: Buffer.from('{"v":9}').toString('base64url') }), 'INVALID_CURSOR', S.INVALID_ARGUMENT);
    const page = await scanAll<ScanResponseOut>(t.kv, { limit: 2 });
    const cursor = page.at(-1)?.nextCursor ?? '';
    expect(cursor).not.toBe('');
    await grpcRejects('cursor of another scan', scanAll(t.kv, { tag: Buffer.from('t'), cursor }), 'INVALID_CURSOR', S.INVALID_ARGUMENT);
    await grpcRejects(
      'scan start after end',
      scanAll(t.kv, { tag: Buffer.from('t'), start: Buffer.from('b'), end: Buffer.from('a') }),
      'INVALID_ARGUMENT',
      S.INVALID_ARGUMENT,
    );
    await grpcRejects('range scan without a tag', scanAll(t.kv, { start: Buffer.from('a') }), 'INVALID_ARGUMENT', S.INVALID_ARGUMENT);
    await grpcRejects(
      'snapshot read without a timestamp',
      unary(t.kv, 'get', { key: Buffer.from('keep-1'), read: { consistency: 'SNAPSHOT' } }),
      'INVALID_ARGUMENT',
      S.INVALID_ARGUMENT,
    );
    await grpcRejects(
      'snapshot read far in the future',
      unary(t.kv, 'get', {
        key: Buffer.from('keep-1'),
        read: { consistency: 'SNAPSHOT', snapshotTs: ((BigInt(Date.now() + 3_600_000) << 16n) as bigint).toString() },
      }),
      'SNAPSHOT_IN_FUTURE',
      S.INVALID_ARGUMENT,
    );
  });

  it('gRPC: malformed protobuf bytes, oversized messages and unknown methods', async () => {
    const raw = new grpc.Client(t.node.grpcAddress, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 1024 * 1024 });
    const send = (method: string, bytes: Buffer) =>
      new Promise<unknown>((resolve, reject) =>
        raw.makeUnaryRequest(
          method,
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          (err, res) => {
            if (err) {
              const e = err as unknown as CallError;
              e.keyvaCode = err.metadata?.get(ERROR_METADATA.code)[0]?.toString();
              reject(e);
            } else resolve(res);
          },
        ),
      );
    // Field 1 (key) declared as a 100-byte length-delimited field, but the message ends after 2 bytes.
    await grpcRejects('truncated protobuf', send('/keyva.v1.KV/Put', Buffer.from([0x0a, 0x64, 0x41, 0x42])), 'INVALID_ENCODING', grpc.status.INVALID_ARGUMENT);
    await grpcRejects('invalid wire type', send('/keyva.v1.KV/Get', Buffer.from([0x0f, 0xff, 0xff, 0xff])), 'INVALID_ENCODING', grpc.status.INVALID_ARGUMENT);
    await grpcRejects('oversized gRPC message', send('/keyva.v1.KV/Put', Buffer.alloc(100 * 1024, 0)), undefined, grpc.status.RESOURCE_EXHAUSTED);
    await grpcRejects('unknown method', send('/keyva.v1.KV/Explode', Buffer.alloc(0)), undefined, grpc.status.UNIMPLEMENTED);
    raw.close();
  });

  it('gRPC stream: a bad operation is answered in-band and the stream goes on', async () => {
    tried++;
    const call = (t.kv as unknown as { stream(): grpc.ClientDuplexStream<object, StreamResponseOut> }).stream();
    const answers: StreamResponseOut[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: StreamResponseOut) => answers.push(r));
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write({ id: '1', put: { key: Buffer.alloc(300, 1), value: Buffer.from('x') } });
    call.write({ id: '2', get: { key: Buffer.from('keep-0') } });
    call.write({ id: '3' });
    call.end();
    await done;
    const byId = new Map(answers.map((a) => [a.id, a]));
    expect(byId.get('1')?.error?.code).toBe('KEY_TOO_LARGE');
    expect(byId.get('2')?.get?.value.toString()).toBe('value-0');
    expect(byId.get('3')?.error?.code).toBe('INVALID_ARGUMENT');
  });

  it('REST: JSON, base64, methods, routes, sizes, TTLs, cursors, media types', async () => {
    const json = { 'content-type': 'application/json' };
    await restRejects('invalid JSON', '/v1/kv/keep-1', { method: 'PUT', headers: json, body: '{"value": ' }, 'INVALID_ENCODING', 400);
    await restRejects('JSON array body', '/v1/kv/keep-1', { method: 'PUT', headers: json, body: '[1,2]' }, 'INVALID_ENCODING', 400);
    await restRejects('invalid base64', '/v1/kv/keep-1', { method: 'PUT', headers: json, body: '{"value":"***"}' }, 'INVALID_ENCODING', 400);
    await restRejects('JSON without value', '/v1/kv/keep-1', { method: 'PUT', headers: json, body: '{"ttlMs":5}' }, 'INVALID_ARGUMENT', 400);
    await restRejects('non-integer TTL', '/v1/kv/keep-1', { method: 'PUT', headers: json, body: '{"text":"x","ttlMs":1.5}' }, 'INVALID_TTL', 400);
    await restRejects('negative TTL in query', '/v1/kv/keep-1?ttlMs=-1', { method: 'PUT', body: 'x' }, 'INVALID_TTL', 400);
    await restRejects(
      'two conditions',
      '/v1/kv/keep-1',
      { method: 'PUT', headers: json, body: '{"text":"x","ifAbsent":true,"ifVersion":"1"}' },
      'INVALID_ARGUMENT',
      400,
    );
    const r = await restRejects('wrong method', '/v1/kv/keep-1', { method: 'PATCH', body: 'x' }, 'METHOD_NOT_ALLOWED', 405);
    expect(r.headers.get('allow')).toContain('PUT');
    await restRejects('wrong method on scan', '/v1/kv', { method: 'POST', body: 'x' }, 'METHOD_NOT_ALLOWED', 405);
    await restRejects('unknown route', '/v2/everything', {}, 'ROUTE_NOT_FOUND', 404);
    await restRejects('oversized body', '/v1/kv/keep-1', { method: 'PUT', body: Buffer.alloc(65 * 1024, 1) }, 'MESSAGE_TOO_LARGE', 413);
    await restRejects('oversized value', '/v1/kv/keep-1', { method: 'PUT', body: Buffer.alloc(16 * 1024 + 1, 1) }, 'VALUE_TOO_LARGE', 413);
    await restRejects('oversized key', `/v1/kv/${'k'.repeat(257)}`, { method: 'PUT', body: 'x' }, 'KEY_TOO_LARGE', 400);
    await restRejects('malformed percent escape', '/v1/kv/%zz', { method: 'PUT', body: 'x' }, 'INVALID_ENCODING', 400);
    await restRejects('bad cursor', '/v1/kv?cursor=%21%21', {}, 'INVALID_CURSOR', 400);
    await restRejects('bad consistency', '/v1/kv/keep-1?consistency=eventual', {}, 'INVALID_ARGUMENT', 400);
    await restRejects('bad limit', '/v1/kv?limit=ten', {}, 'INVALID_ARGUMENT', 400);
    await restRejects(
      'multipart body',
      '/v1/kv/keep-1',
      { method: 'PUT', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--' },
      'UNSUPPORTED_MEDIA_TYPE',
      415,
    );
    await restRejects('failed condition', '/v1/kv/keep-1', { method: 'PUT', headers: json, body: '{"text":"x","ifAbsent":true}' }, 'CONDITION_FAILED', 412);
    await restRejects('missing key', '/v1/kv/never-written', {}, 'KEY_NOT_FOUND', 404);
  });

  it('left stored data exactly as it was, and the node still serves', async () => {
    expect(await snapshot()).toEqual(before);
    await unary(t.kv, 'put', { key: Buffer.from('after'), value: Buffer.from('ok') });
    expect((await unary<object, GetResponseOut>(t.kv, 'get', { key: Buffer.from('after') })).value.toString()).toBe('ok');
    expect((await fetch(`${t.http}/readyz`)).status).toBe(200);
    console.log(`bad-input test: tried ${tried} kinds of bad input; stored data unchanged, node serving`);
    expect(tried).toBeGreaterThanOrEqual(40);
  });
});
