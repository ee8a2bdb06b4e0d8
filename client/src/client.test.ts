/**
 * KeyVa client against fake nodes over real gRPC on loopback (testing/fake-node.ts): the SDK's
 * own logic — routing, pipelining, retries, deadlines, abort, scans, CAS, error decoding.
 */
import type { GetRequestOut, PutRequestOut, ScanRequestOut, StreamRequestOut } from '@keyva/proto';
import { afterEach, describe, expect, test } from 'vitest';
import { KeyVa } from './client.ts';
import { keyHash } from './keyspace/index.ts';
import type { ClientOptions } from './options.ts';
import { backoffDelayMs, DEFAULT_RETRY_POLICY } from './retry.ts';
import { InstantSleepClock, seededRandom } from './testing/fake-clock.ts';
import { FakeCluster, type FakeHook, type FakeNode, type FakeNodeOptions, FakeStore, startFakeNode } from './testing/fake-node.ts';
import { rejection } from './testing/rejection.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(o: FakeNodeOptions = {}): Promise<FakeNode> {
  const n = await startFakeNode(o);
  cleanups.push(() => n.close());
  return n;
}

async function client(endpoints: string[], o: Partial<ClientOptions> = {}): Promise<{ kv: KeyVa; clock: InstantSleepClock }> {
  const clock = new InstantSleepClock();
  const kv = await KeyVa.connect({ endpoints, clock, random: seededRandom(1), ...o });
  cleanups.push(() => kv.close());
  return { kv, clock };
}

async function setup(nodeOpts: FakeNodeOptions = {}, clientOpts: Partial<ClientOptions> = {}) {
  const n = await node(nodeOpts);
  const { kv, clock } = await client([n.address], clientOpts);
  return { n, kv, clock };
}

/** Request ids (hex) of the unary Puts a fake node received, in order ('' = none). */
function putRequestIds(n: FakeNode): string[] {
  return n.requests.filter((r) => r.method === 'Put' && r.via === 'unary').map((r) => Buffer.from((r.request as PutRequestOut).requestId).toString('hex'));
}

/** A hook failing the first `times` matching requests with `fault`. */
function firstN(times: number, match: (op: Parameters<FakeHook>[0]) => boolean, fault: ReturnType<FakeHook>): FakeHook {
  let left = times;
  return (op) => {
    if (!match(op) || left <= 0) return undefined;
    left--;
    return fault;
  };
}

/** A key whose hash falls in the first (i = 0) or second (i = 1) half of the hash space. */
function keyInHalf(i: 0 | 1, salt = ''): Buffer {
  for (let n = 0; ; n++) {
    const k = Buffer.from(`key-${salt}${n}`);
    if (Number(keyHash(k) >> 63n) === i) return k;
  }
}

describe('single keys', () => {
  test('put, get, getString and delete with string, Buffer and Uint8Array keys and values', async () => {
    const { kv } = await setup();
    const p1 = await kv.put('user:1', 'alice');
    expect(typeof p1.version).toBe('bigint');
    expect(await kv.getString('user:1')).toBe('alice');
    const binKey = new Uint8Array([0x00, 0xff, 0x7b, 0x7d]);
    const binVal = Buffer.from([0, 1, 2, 255]);
    const p2 = await kv.put(binKey, binVal);
    expect(p2.version).toBeGreaterThan(p1.version);
    const e = await kv.get(Buffer.from(binKey));
    expect(e?.key.equals(Buffer.from(binKey))).toBe(true);
    expect(e?.value.equals(binVal)).toBe(true);
    expect(e?.version).toBe(p2.version);
    expect(e?.expiresAtMs).toBe(0);
    await kv.put('日本語のキー', 'ÿ€😀');
    expect(await kv.getString(Buffer.from('日本語のキー', 'utf8'))).toBe('ÿ€😀');
    await kv.put('empty', '');
    expect((await kv.get('empty'))?.value.length).toBe(0);
    expect(await kv.get('missing')).toBeUndefined();
    expect(await kv.getString('missing')).toBeUndefined();
    const d = await kv.delete('user:1');
    expect(d.deleted).toBe(true);
    expect(d.version).toBeGreaterThan(p2.version);
    expect(await kv.get('user:1')).toBeUndefined();
    expect((await kv.delete('user:1')).deleted).toBe(false);
  });

  test('an empty key fails locally with KEY_EMPTY', async () => {
    const { n, kv } = await setup();
    expect((await rejection(kv.get(''))).code).toBe('KEY_EMPTY');
    expect((await rejection(kv.put(new Uint8Array(0), 'x'))).code).toBe('KEY_EMPTY');
    expect(n.count('Get', 'stream') + n.count('Put', 'stream')).toBe(0);
  });

  test('ttlMs sets expiresAtMs; an invalid ttl fails locally', async () => {
    const { kv } = await setup();
    const before = Date.now();
    await kv.put('t', 'v', { ttlMs: 60_000 });
    const e = await kv.get('t');
    expect(e?.expiresAtMs).toBeGreaterThanOrEqual(before + 60_000);
    expect(e?.expiresAtMs).toBeLessThan(before + 70_000);
    expect((await rejection(kv.put('t', 'v', { ttlMs: -1 }))).code).toBe('INVALID_TTL');
    expect((await rejection(kv.put('t', 'v', { ttlMs: 1.5 }))).code).toBe('INVALID_TTL');
  });

  test('read consistency and write concern reach the node', async () => {
    const seen: unknown[] = [];
    const { kv } = await setup({ hook: (op) => void (op.method === 'Get' || op.method === 'Put' ? seen.push(op.request) : 0) }, { useStream: false });
    await kv.get('k', { consistency: 'follower' });
    await kv.get('k', { snapshotTs: 12345678901234567890n });
    await kv.get('k');
    await kv.put('k', 'v', { writeConcern: 'all' });
    await kv.put('k', 'v', { writeConcern: 'leader' });
    await kv.put('k', 'v');
    const reads = seen.slice(0, 3) as GetRequestOut[];
    expect(reads.map((r) => r.read?.consistency)).toEqual(['FOLLOWER', 'SNAPSHOT', 'LINEARIZABLE']);
    expect(reads[1]?.read?.snapshotTs).toBe('12345678901234567890');
    const writes = seen.slice(3) as PutRequestOut[];
    expect(writes.map((w) => w.write?.concern)).toEqual(['ALL', 'LEADER', 'MAJORITY']);
    expect((await rejection(kv.get('k', { consistency: 'snapshot' }))).code).toBe('INVALID_ARGUMENT');
  });

  test('single-key calls use the pipelined stream by default, unary calls with useStream: false', async () => {
    const a = await setup();
    await a.kv.put('k', 'v');
    await a.kv.get('k');
    await a.kv.delete('k');
    expect([a.n.count('Put', 'stream'), a.n.count('Get', 'stream'), a.n.count('Delete', 'stream')]).toEqual([1, 1, 1]);
    expect(a.n.count('Get')).toBe(0);
    const b = await setup({}, { useStream: false });
    await b.kv.put('k', 'v');
    await b.kv.get('k');
    expect([b.n.count('Put'), b.n.count('Get'), b.n.count('Get', 'stream')]).toEqual([1, 1, 0]);
  });
});

describe('conditions and CAS', () => {
  test('conditional put and delete throw CONDITION_FAILED with the current version', async () => {
    const { kv } = await setup();
    const v1 = (await kv.put('k', 'a', { ifAbsent: true })).version;
    const e1 = await rejection(kv.put('k', 'b', { ifAbsent: true }));
    expect(e1.code).toBe('CONDITION_FAILED');
    expect(e1.details.currentVersion).toBe(v1.toString());
    const v2 = (await kv.put('k', 'b', { ifVersion: v1 })).version;
    expect((await rejection(kv.put('k', 'c', { ifVersion: v1 }))).code).toBe('CONDITION_FAILED');
    await kv.put('k', 'c', { ifValue: 'b' });
    expect((await rejection(kv.put('k', 'd', { ifValue: 'b' }))).code).toBe('CONDITION_FAILED');
    expect((await rejection(kv.put('nope', 'd', { ifExists: true }))).code).toBe('CONDITION_FAILED');
    expect((await rejection(kv.delete('k', { ifVersion: v2 }))).code).toBe('CONDITION_FAILED');
    expect((await kv.delete('k', { ifValue: 'c' })).deleted).toBe(true);
    expect((await rejection(kv.put('k', 'x', { ifAbsent: true, ifVersion: 1n }))).code).toBe('INVALID_ARGUMENT');
  });

  test('cas on version, value and absence; a mismatch is ok:false with the current version, not a throw', async () => {
    const { kv } = await setup();
    const created = await kv.cas('c', { absent: true }, 'one');
    expect(created.ok).toBe(true);
    const v1 = created.ok ? created.version : 0n;
    expect(await kv.cas('c', { absent: true }, 'again')).toEqual({ ok: false, currentVersion: v1 });
    const r2 = await kv.cas('c', { version: v1 }, 'two');
    expect(r2.ok).toBe(true);
    const v2 = r2.ok ? r2.version : 0n;
    expect(await kv.cas('c', { version: v1 }, 'stale')).toEqual({ ok: false, currentVersion: v2 });
    expect((await kv.cas('c', { value: 'two' }, Buffer.from('three'))).ok).toBe(true);
    expect(await kv.getString('c')).toBe('three');
    expect(await kv.cas('missing', { version: 5n }, 'x')).toEqual({ ok: false, currentVersion: 0n });
  });

  test('concurrent cas increments: every increment lands exactly once', async () => {
    const { kv } = await setup();
    await kv.put('counter', '0');
    const incr = async (): Promise<number> => {
      let tries = 0;
      for (;;) {
        tries++;
        const e = await kv.get('counter');
        const r = await kv.cas('counter', { version: e?.version ?? 0n }, String(Number(e?.value.toString() ?? '0') + 1));
        if (r.ok) return tries;
      }
    };
    await Promise.all(Array.from({ length: 20 }, incr));
    expect(await kv.getString('counter')).toBe('20');
  });
});

describe('batches', () => {
  test('batchGet keeps order and reports absent keys; batchWrite applies puts and deletes', async () => {
    const { kv } = await setup();
    const w = await kv.batchWrite([
      { type: 'put', key: 'a', value: '1' },
      { type: 'put', key: Buffer.from('b'), value: new Uint8Array([50]) },
      { type: 'put', key: 'c', value: '3', ttlMs: 60_000 },
    ]);
    expect(w.versions).toHaveLength(3);
    expect(w.versions.every((v) => typeof v === 'bigint' && v > 0n)).toBe(true);
    await kv.batchWrite([{ type: 'delete', key: 'c' }]);
    const got = await kv.batchGet(['b', 'missing', 'a', 'c']);
    expect(got.map((e) => e?.value.toString())).toEqual(['2', undefined, '1', undefined]);
    expect(await kv.batchGet([])).toEqual([]);
    expect((await kv.batchWrite([])).versions).toEqual([]);
  });

  test('a conditional batch fails as a whole', async () => {
    const { kv } = await setup();
    await kv.put('x', '1');
    const e = await rejection(
      kv.batchWrite([
        { type: 'put', key: 'y', value: '2' },
        { type: 'put', key: 'x', value: '3', ifAbsent: true },
      ]),
    );
    expect(e.code).toBe('CONDITION_FAILED');
    expect(await kv.get('y')).toBeUndefined();
  });
});

describe('retries', () => {
  test('retries a retryable error with seeded equal-jitter backoff; retries go over unary calls', async () => {
    const { n, kv, clock } = await setup({ hook: firstN(2, (op) => op.method === 'Get', { kind: 'error', code: 'UNAVAILABLE' }) });
    await kv.put('k', 'v');
    expect(await kv.getString('k')).toBe('v');
    expect(n.count('Get', 'stream')).toBe(1);
    expect(n.count('Get')).toBe(2);
    const r = seededRandom(1);
    expect(clock.sleeps).toEqual([1, 2].map((i) => backoffDelayMs(i, DEFAULT_RETRY_POLICY, r)));
  });

  test('gives up after attemptsMax with the decoded error', async () => {
    const { n, kv } = await setup(
      { hook: (op) => (op.method === 'Get' ? { kind: 'error', code: 'UNAVAILABLE', details: { why: 'test' } } : undefined) },
      { retry: { attemptsMax: 3 } },
    );
    const e = await rejection(kv.get('k'));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.details.why).toBe('test');
    expect(n.count('Get', 'stream') + n.count('Get')).toBe(3);
  });

  test('non-retryable errors are decoded exactly and not retried', async () => {
    const { n, kv } = await setup({
      hook: (op) => (op.method === 'Put' ? { kind: 'error', code: 'VALUE_TOO_LARGE', details: { limit: '1048576', size: '2000000' } } : undefined),
    });
    const e = await rejection(kv.put('k', 'v'));
    expect(e.code).toBe('VALUE_TOO_LARGE');
    expect(e.retryable).toBe(false);
    expect(e.details).toEqual({ limit: '1048576', size: '2000000' });
    expect(n.count('Put', 'stream') + n.count('Put')).toBe(1);
  });

  test('a bare gRPC UNAVAILABLE (no KeyVa trailers) is decoded by status and retried for reads', async () => {
    const { n, kv } = await setup({ hook: firstN(1, (op) => op.method === 'Get', { kind: 'status', grpcCode: 14 }) }, { useStream: false });
    expect(await kv.get('k')).toBeUndefined();
    expect(n.count('Get')).toBe(2);
  });

  test('a put that may have applied (server DEADLINE_EXCEEDED) is resent with the same request id, and the node answers the first result', async () => {
    const { n, kv } = await setup(
      { hook: firstN(1, (op) => op.method === 'Put', { kind: 'apply-then-error', code: 'DEADLINE_EXCEEDED' }) },
      { useStream: false },
    );
    const r = await kv.put('k', 'v');
    expect(n.count('Put')).toBe(2);
    const ids = putRequestIds(n);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toHaveLength(32); // 16 bytes
    expect(ids[1]).toBe(ids[0]);
    expect(n.store.duplicates).toBe(1);
    expect(r.version).toBe(n.store.data.get(Buffer.from('k').toString('hex'))?.version);
    // Every logical write has its own id.
    await kv.put('k', 'w');
    expect(new Set(putRequestIds(n)).size).toBe(2);
  });

  test('a cas that may have applied is resent with its request id: it reports the win instead of ok:false', async () => {
    const { n, kv } = await setup(
      { hook: firstN(1, (op) => op.method === 'Put', { kind: 'apply-then-error', code: 'DEADLINE_EXCEEDED' }) },
      { useStream: false },
    );
    expect((await kv.cas('k', { absent: true }, 'v')).ok).toBe(true);
    expect(n.count('Put')).toBe(2);
    expect(n.store.duplicates).toBe(1);
    expect(await kv.getString('k')).toBe('v');
  });

  test('exactlyOnce: false — a write (conditional or not) that may have applied is NOT resent: its outcome is unknown', async () => {
    // A resend applying late would overwrite another client's later write (found by the fault suite).
    const { n, kv } = await setup(
      { hook: firstN(2, (op) => op.method === 'Put', { kind: 'apply-then-error', code: 'DEADLINE_EXCEEDED' }) },
      { useStream: false, exactlyOnce: false },
    );
    const e = await rejection(kv.put('k', 'v'));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    expect(e.details.outcome).toBe('unknown');
    expect(e.retryable).toBe(false);
    expect(n.count('Put')).toBe(1);
    expect(putRequestIds(n)).toEqual(['']);
    const c = await rejection(kv.cas('k2', { absent: true }, 'v'));
    expect(c.details.outcome).toBe('unknown');
    expect(c.retryable).toBe(false);
    expect(n.count('Put')).toBe(2);
    // Both did apply: a blind retry would have applied the put twice and reported the cas ok:false.
    expect(await kv.getString('k')).toBe('v');
    expect(await kv.getString('k2')).toBe('v');
  });

  test('a cas rejected before applying (NOT_LEADER, UNAVAILABLE with a KeyVa code) is retried', async () => {
    const { n, kv } = await setup({ hook: firstN(2, (op) => op.method === 'Put', { kind: 'error', code: 'UNAVAILABLE' }) }, { useStream: false });
    expect((await kv.cas('k', { absent: true }, 'v')).ok).toBe(true);
    expect(n.count('Put')).toBe(3);
  });

  test('a stream break after sending: reads and writes with a request id are resent; without ids, writes are not', async () => {
    const broken: FakeHook = (op) => (op.via === 'stream' ? { kind: 'break-stream' } : undefined);
    const { n, kv } = await setup({ hook: broken });
    await kv.put('a', '1');
    expect(n.count('Put')).toBe(1);
    expect(await kv.getString('a')).toBe('1');
    expect(n.count('Get')).toBe(1);
    expect((await kv.cas('b', { absent: true }, '2')).ok).toBe(true);
    expect(n.count('Put')).toBe(2);

    const off = await setup({ hook: broken }, { exactlyOnce: false });
    const p = await rejection(off.kv.put('a', '1'));
    expect(p.code).toBe('UNAVAILABLE');
    expect(p.details.outcome).toBe('unknown');
    expect(p.retryable).toBe(false);
    expect(off.n.count('Put')).toBe(0);
    const e = await rejection(off.kv.cas('b', { absent: true }, '2'));
    expect(e.details.outcome).toBe('unknown');
    expect(e.retryable).toBe(false);
    expect(off.n.count('Put')).toBe(0);
  });

  test('a node without KV.Stream is served over unary calls', async () => {
    const { n, kv } = await setup({ streamSupported: false });
    await kv.put('k', 'v');
    expect(await kv.getString('k')).toBe('v');
    expect((await kv.cas('k', { value: 'v' }, 'w')).ok).toBe(true);
    expect(n.count('Put')).toBe(2);
    expect(n.count('Get')).toBe(1);
  });
});

describe('stream pipelining', () => {
  test('thousands of concurrent gets over one stream each get their own answer', async () => {
    const rnd = seededRandom(9);
    const { n, kv } = await setup(
      { hook: (op) => (op.via === 'stream' && op.method === 'Get' ? { kind: 'delay', ms: Math.floor(rnd() * 5) } : undefined) },
      { inFlightMax: 64 },
    );
    const count = 2000;
    await kv.batchWrite(Array.from({ length: count }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: `v${i}` })));
    const values = await Promise.all(Array.from({ length: count }, (_, i) => kv.getString(`k${i}`)));
    expect(values).toEqual(Array.from({ length: count }, (_, i) => `v${i}`));
    expect(n.count('Get', 'stream')).toBe(count);
    expect(n.count('Get')).toBe(0);
  });

  test('request ids are distinct per stream', async () => {
    const ids: string[] = [];
    const { kv } = await setup({ hook: (op) => void (op.via === 'stream' && ids.push((op.request as StreamRequestOut).id)) });
    await Promise.all(Array.from({ length: 100 }, (_, i) => kv.put(`k${i}`, 'v')));
    expect(new Set(ids).size).toBe(100);
  });

  test('a broken stream reconnects for later requests', async () => {
    const { n, kv } = await setup();
    await kv.put('k', 'v');
    n.breakStreams();
    await new Promise((r) => setTimeout(r, 20));
    expect(await kv.getString('k')).toBe('v');
    await kv.put('k2', 'v2');
    expect(n.count('Put', 'stream')).toBe(2);
  });
});

describe('deadlines and abort', () => {
  const hang: FakeHook = (op) => (op.method === 'Get' ? { kind: 'hang' } : undefined);

  for (const useStream of [true, false]) {
    test(`a call that outlives its deadline fails with DEADLINE_EXCEEDED (useStream ${useStream})`, async () => {
      const { kv } = await setup({ hook: hang }, { useStream });
      const t0 = Date.now();
      const e = await rejection(kv.get('k', { deadlineMs: 150 }));
      const elapsed = Date.now() - t0;
      expect(e.code).toBe('DEADLINE_EXCEEDED');
      expect(elapsed).toBeGreaterThanOrEqual(140);
      expect(elapsed).toBeLessThan(1500);
    });

    test(`aborting a call cancels it with CANCELLED (useStream ${useStream})`, async () => {
      const { kv } = await setup({ hook: hang }, { useStream });
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('user gave up')), 50);
      const t0 = Date.now();
      const e = await rejection(kv.get('k', { signal: ac.signal }));
      expect(e.code).toBe('CANCELLED');
      expect(Date.now() - t0).toBeLessThan(1000);
    });
  }

  test('the client default deadlineMs applies', async () => {
    const { kv } = await setup({ hook: hang }, { deadlineMs: 100 });
    const t0 = Date.now();
    expect((await rejection(kv.get('k'))).code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  test('an already aborted signal fails at once without sending', async () => {
    const { n, kv } = await setup();
    expect((await rejection(kv.put('k', 'v', { signal: AbortSignal.abort() }))).code).toBe('CANCELLED');
    expect(n.count('Put', 'stream') + n.count('Put')).toBe(0);
  });

  test('retries stop at the overall deadline', async () => {
    const { n, kv } = await setup(
      { hook: (op) => (op.method === 'Get' ? { kind: 'error', code: 'UNAVAILABLE' } : undefined) },
      { retry: { attemptsMax: 1_000_000, baseDelayMs: 5, maxDelayMs: 20 }, clock: undefined },
    );
    const t0 = Date.now();
    const e = await rejection(kv.get('k', { deadlineMs: 200 }));
    // The last error: the node's UNAVAILABLE, or the deadline if the last attempt was cut short by it.
    expect(['UNAVAILABLE', 'DEADLINE_EXCEEDED']).toContain(e.code);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(n.count('Get')).toBeGreaterThan(2);
  });

  test('close fails pending calls with CANCELLED and refuses new ones', async () => {
    const { kv } = await setup({ hook: hang });
    const pending = rejection(kv.get('k', { deadlineMs: 10_000 }));
    await new Promise((r) => setTimeout(r, 30));
    await kv.close();
    expect((await pending).code).toBe('CANCELLED');
    expect((await rejection(kv.get('k'))).code).toBe('CANCELLED');
    await kv.close();
  });
});

describe('routing', () => {
  async function twoNodes() {
    const store = new FakeStore();
    const cluster = new FakeCluster(2, 'n1');
    const n1 = await node({ nodeId: 'n1', store, cluster, enforceLeadership: true });
    const n2 = await node({ nodeId: 'n2', store, cluster, enforceLeadership: true });
    (cluster.partitions[1] as { leader: string }).leader = 'n2';
    return { store, cluster, n1, n2 };
  }

  test('sends each key to its partition leader', async () => {
    const { n1, n2 } = await twoNodes();
    const { kv } = await client([n1.address]);
    const k0 = keyInHalf(0);
    const k1 = keyInHalf(1);
    await kv.put(k0, 'zero');
    await kv.put(k1, 'one');
    expect([n1.count('Put', 'stream'), n2.count('Put', 'stream')]).toEqual([1, 1]);
    expect(await kv.getString(k1)).toBe('one');
    const map = await kv.partitionMap();
    expect(map.epoch).toBe(1n);
    expect(map.partitions.map((p) => p.leaderHint)).toEqual(['n1', 'n2']);
  });

  test('NOT_LEADER with a hint redirects at once to the new leader', async () => {
    const { cluster, n1, n2 } = await twoNodes();
    const { kv, clock } = await client([n1.address]);
    const k1 = keyInHalf(1);
    (cluster.partitions[1] as { leader: string }).leader = 'n1';
    await kv.put(k1, 'v');
    expect(n2.count('Put', 'stream')).toBe(1);
    expect(n1.count('Put')).toBe(1);
    expect(clock.sleeps).toEqual([]);
    // The hint is remembered: the next call goes straight to n1.
    await kv.get(k1);
    expect(n1.count('Get', 'stream')).toBe(1);
    expect(n2.count('Get', 'stream') + n2.count('Get')).toBe(0);
  });

  test('a leader on a node missing from the map makes the client refresh it', async () => {
    const { cluster, n1, store } = await twoNodes();
    const { kv } = await client([n1.address]);
    const n3 = await node({ nodeId: 'n3', store, cluster, enforceLeadership: true });
    (cluster.partitions[0] as { leader: string }).leader = 'n3';
    cluster.epoch = 2n;
    const k0 = keyInHalf(0);
    await kv.put(k0, 'v');
    expect(n3.count('Put')).toBe(1);
    expect((await kv.partitionMap()).epoch).toBe(2n);
  });

  test('batches are split per node and regrouped when leadership moves', async () => {
    const { cluster, n1, n2 } = await twoNodes();
    const { kv } = await client([n1.address]);
    const keys = [keyInHalf(0, 'a'), keyInHalf(1, 'b'), keyInHalf(0, 'c'), keyInHalf(1, 'd')];
    await kv.batchWrite(keys.map((key, i) => ({ type: 'put' as const, key, value: String(i) })));
    expect([n1.count('BatchWrite'), n2.count('BatchWrite')]).toEqual([1, 1]);
    expect((await kv.batchGet(keys)).map((e) => e?.value.toString())).toEqual(['0', '1', '2', '3']);
    // Partition 1 moves to n1 behind the client's back: n2 refuses, the client refreshes and regroups.
    (cluster.partitions[1] as { leader: string }).leader = 'n1';
    expect((await kv.batchGet(keys)).map((e) => e?.value.toString())).toEqual(['0', '1', '2', '3']);
    (cluster.partitions[1] as { leader: string }).leader = 'n2';
    (cluster.partitions[0] as { leader: string }).leader = 'n2';
    expect((await kv.batchGet(keys)).map((e) => e?.value.toString())).toEqual(['0', '1', '2', '3']);
  });

  test('a dead seed endpoint is skipped when loading the map', async () => {
    const n = await node();
    const { kv } = await client(['127.0.0.1:1', n.address]);
    expect((await kv.partitionMap()).nodes.size).toBe(1);
    await kv.put('k', 'v');
  });
});

describe('scans', () => {
  async function populated(o: FakeNodeOptions = {}, c: Partial<ClientOptions> = {}) {
    const s = await setup(o, c);
    await s.kv.batchWrite([
      ...Array.from({ length: 10 }, (_, i) => ({ type: 'put' as const, key: `{t}:${String(i).padStart(2, '0')}`, value: `tv${i}` })),
      ...Array.from({ length: 20 }, (_, i) => ({ type: 'put' as const, key: `other:${i}`, value: `ov${i}` })),
    ]);
    return s;
  }
  const collect = async (it: AsyncIterable<{ key: Buffer }>) => {
    const out: string[] = [];
    for await (const e of it) out.push(e.key.toString());
    return out;
  };
  const tagKeys = Array.from({ length: 10 }, (_, i) => `{t}:${String(i).padStart(2, '0')}`);

  test('a tag scan returns the tag keys in key order; bounds, prefix, limit, keysOnly', async () => {
    const { kv } = await populated();
    expect(await collect(kv.scan({ tag: 't' }))).toEqual(tagKeys);
    expect(await collect(kv.scan({ tag: 't', start: '{t}:03', end: '{t}:06' }))).toEqual(tagKeys.slice(3, 6));
    expect(await collect(kv.scan({ tag: 't', prefix: '{t}:05' }))).toEqual(['{t}:05']);
    expect(await collect(kv.scan({ tag: 't', limit: 4 }))).toEqual(tagKeys.slice(0, 4));
    for await (const e of kv.scan({ tag: 't', keysOnly: true })) expect(e.value.length).toBe(0);
    const first = (
      await kv
        .scan({ tag: Buffer.from('t') })
        [Symbol.asyncIterator]()
        .next()
    ).value;
    expect(first?.value.toString()).toBe('tv0');
    expect(typeof first?.version).toBe('bigint');
  });

  test('a whole-keyspace scan returns every key once, in hash order (not key order)', async () => {
    const { n, kv } = await populated();
    const keys = await collect(kv.scan());
    expect(keys).toHaveLength(30);
    expect(keys).toEqual(n.store.sorted().map((e) => e.key.toString()));
  });

  test('follows the node page cursors transparently; limit counts across pages', async () => {
    const { n, kv } = await populated({ scanPageMax: 4 });
    expect(await collect(kv.scan())).toHaveLength(30);
    expect(n.count('Scan')).toBe(8);
    expect(await collect(kv.scan({ limit: 10 }))).toHaveLength(10);
    expect(n.count('Scan')).toBe(11);
  });

  test('resumes a tag scan after a retryable failure right after the last key', async () => {
    const reqs: ScanRequestOut[] = [];
    let failed = false;
    const hook: FakeHook = (op) => {
      if (op.method !== 'Scan') return undefined;
      reqs.push(op.request as ScanRequestOut);
      if (failed) return undefined;
      failed = true;
      return { kind: 'fail-after', items: 3 };
    };
    const { kv } = await populated({ hook });
    expect(await collect(kv.scan({ tag: 't' }))).toEqual(tagKeys);
    expect(reqs).toHaveLength(2);
    expect(reqs[1]?.start.toString()).toBe(`${tagKeys[2]}\u0000`);
  });

  test('resumes a whole-keyspace scan without repeating entries, with or without cursors', async () => {
    for (const cursorEveryMessage of [false, true]) {
      const reqs: ScanRequestOut[] = [];
      let left = 2;
      const hook: FakeHook = (op) => {
        if (op.method !== 'Scan') return undefined;
        reqs.push(op.request as ScanRequestOut);
        return left-- > 0 ? { kind: 'fail-after', items: 5 * (3 - left) } : undefined;
      };
      const { n, kv } = await populated({ hook, cursorEveryMessage });
      expect(await collect(kv.scan())).toEqual(n.store.sorted().map((e) => e.key.toString()));
      expect(reqs).toHaveLength(3);
      if (cursorEveryMessage) expect(reqs[1]?.cursor).not.toBe('');
      else expect(reqs[1]?.cursor).toBe('');
    }
  });

  test('gives up after attemptsMax failures without progress', async () => {
    const { n, kv } = await populated({ hook: (op) => (op.method === 'Scan' ? { kind: 'fail-after', items: 0 } : undefined) }, { retry: { attemptsMax: 3 } });
    expect((await rejection(collect(kv.scan()))).code).toBe('UNAVAILABLE');
    expect(n.count('Scan')).toBe(3);
  });

  test('breaking out of the loop early ends the scan cleanly', async () => {
    const { kv } = await populated();
    const seen: string[] = [];
    for await (const e of kv.scan()) {
      seen.push(e.key.toString());
      if (seen.length === 3) break;
    }
    expect(seen).toHaveLength(3);
    expect(await kv.getString('{t}:00')).toBe('tv0');
  });

  test('aborting a scan rejects with CANCELLED', async () => {
    const { kv } = await populated({ scanChunk: 1 });
    const ac = new AbortController();
    const run = (async () => {
      for await (const _ of kv.scan({ signal: ac.signal })) ac.abort();
    })();
    expect((await rejection(run)).code).toBe('CANCELLED');
  });

  test('scanPage pages through with cursors', async () => {
    const { n, kv } = await populated();
    const all: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await kv.scanPage({ limit: 7, cursor });
      all.push(...page.items.map((e) => e.key.toString()));
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined);
    expect(pages).toBe(5);
    expect(all).toEqual(n.store.sorted().map((e) => e.key.toString()));
    const tagPage = await kv.scanPage({ tag: 't' });
    expect(tagPage.items.map((e) => e.key.toString())).toEqual(tagKeys);
    expect(tagPage.cursor).toBeUndefined();
  });

  test('scanPage retries a failed page', async () => {
    const { n, kv } = await populated({ hook: firstN(1, (op) => op.method === 'Scan', { kind: 'fail-after', items: 3 }) });
    expect((await kv.scanPage({ limit: 100 })).items).toHaveLength(30);
    expect(n.count('Scan')).toBe(2);
  });
});

describe('connect and cluster calls', () => {
  test('health and nodeInfo', async () => {
    const { n, kv } = await setup();
    expect(await kv.health()).toEqual({ status: 'SERVING', nodeId: 'n1' });
    const info = await kv.nodeInfo({ endpoint: n.address });
    expect(info).toMatchObject({ nodeId: 'n1', engine: 'memory', uptimeMs: 1234, grpcAddress: n.address });
  });

  test('connect fails when no endpoint answers, unless requireMap is false', async () => {
    const t0 = Date.now();
    const e = await rejection(KeyVa.connect({ endpoints: ['127.0.0.1:1'], deadlineMs: 2000 }));
    expect(e.code).toBe('UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(2000);
    const kv = await KeyVa.connect({ endpoints: ['127.0.0.1:1'], requireMap: false, deadlineMs: 500 });
    await kv.close();
  });

  test('a node without GetPartitionMap is accepted; calls go to the seeds', async () => {
    const { n, kv } = await setup({ mapSupported: false });
    await kv.put('k', 'v');
    expect(await kv.getString('k')).toBe('v');
    expect(n.count('Put', 'stream')).toBe(1);
    expect((await rejection(kv.partitionMap())).code).toBe('ROUTE_NOT_FOUND');
  });

  test('invalid options fail with INVALID_ARGUMENT', async () => {
    for (const o of [{ endpoints: [] }, { endpoints: ['no-port'] }, { endpoints: ['h:1'], poolSize: 0 }, { endpoints: ['h:1'], retry: { attemptsMax: 0 } }]) {
      expect((await rejection(KeyVa.connect(o as ClientOptions))).code).toBe('INVALID_ARGUMENT');
    }
  });

  test('await using closes the client', async () => {
    const n = await node();
    let ref: KeyVa | undefined;
    {
      await using kv = await KeyVa.connect({ endpoints: [n.address] });
      ref = kv;
      await kv.put('k', 'v');
    }
    expect((await rejection(ref.get('k'))).code).toBe('CANCELLED');
  });
});
