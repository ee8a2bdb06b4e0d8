import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { StreamRequest, StreamResponseOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { describe, expect, test } from 'vitest';
import { writeOutcome } from './errors.ts';
import { type StreamCall, StreamSession } from './stream-session.ts';
import { rejection } from './testing/rejection.ts';

/** A scripted bidi call: records writes, lets the test answer them in any order or break it. */
class FakeDuplex extends EventEmitter {
  readonly written: StreamRequest[] = [];
  cancelled = false;

  write(req: StreamRequest): boolean {
    this.written.push(req);
    return true;
  }

  cancel(): void {
    this.cancelled = true;
  }

  answer(id: string, res: Omit<StreamResponseOut, 'id'>): void {
    this.emit('data', { id, ...res });
  }

  found(id: string, value: string): void {
    this.answer(id, { result: 'get', get: { found: true, value: Buffer.from(value), version: '1', expiresAtMs: '0', readTs: '1' } });
  }

  fail(code: number): void {
    this.emit('error', Object.assign(new Error('x'), { code, details: 'x', metadata: new grpc.Metadata() }));
  }
}

function fixture(o: { inFlightMax?: number; queueMax?: number; openFails?: boolean } = {}) {
  const calls: FakeDuplex[] = [];
  const session = new StreamSession({
    address: 'node:1',
    inFlightMax: o.inFlightMax ?? 100,
    queueMax: o.queueMax ?? 1000,
    open: async () => {
      if (o.openFails) throw new KeyVaError('UNAVAILABLE', 'refused');
      const c = new FakeDuplex();
      calls.push(c);
      return c as unknown as StreamCall;
    },
  });
  return { session, calls };
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const far = () => Date.now() + 60_000;
const get = (k: string) => ({ key: Buffer.from(k) });

describe('StreamSession', () => {
  test('pipelines requests with distinct ids and matches answers given out of order', async () => {
    const { session, calls } = fixture();
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    const pending = keys.map((k) => session.request('get', get(k), far()));
    await tick();
    const call = calls[0] as FakeDuplex;
    expect(calls).toHaveLength(1);
    expect(call.written).toHaveLength(50);
    const ids = call.written.map((w) => String(w.id));
    expect(new Set(ids).size).toBe(50);
    // Answer in reverse, each with the value of the key its request asked for.
    for (const w of [...call.written].reverse()) call.found(String(w.id), String((w.get as { key: Buffer }).key));
    const res = await Promise.all(pending);
    expect(res.map((r) => r.get?.value.toString())).toEqual(keys);
    expect(session.inFlightCount).toBe(0);
  });

  test('keeps at most inFlightMax requests on the wire; the rest wait', async () => {
    const { session, calls } = fixture({ inFlightMax: 3 });
    const pending = Array.from({ length: 10 }, (_, i) => session.request('get', get(`k${i}`), far()));
    await tick();
    const call = calls[0] as FakeDuplex;
    expect(call.written).toHaveLength(3);
    expect(session.queuedCount).toBe(7);
    let answered = 0;
    while (answered < 10) {
      const w = call.written[answered] as StreamRequest;
      call.found(String(w.id), 'v');
      answered++;
      expect(session.inFlightCount).toBeLessThanOrEqual(3);
    }
    await Promise.all(pending);
    expect(call.written).toHaveLength(10);
  });

  test('rejects with a not-applied UNAVAILABLE when the wait queue is full', async () => {
    const { session } = fixture({ inFlightMax: 1, queueMax: 2 });
    const a = session.request('get', get('a'), far());
    const b = session.request('get', get('b'), far());
    const err = await rejection(session.request('get', get('c'), far()));
    expect(err.code).toBe('UNAVAILABLE');
    expect(writeOutcome(err)).toBe('not-applied');
    session.close();
    await Promise.allSettled([a, b]);
  });

  test('an error result rejects only its own request', async () => {
    const { session, calls } = fixture();
    const a = session.request('put', { key: Buffer.from('a') }, far());
    const b = session.request('get', get('b'), far());
    await tick();
    const call = calls[0] as FakeDuplex;
    call.answer('1', {
      result: 'error',
      error: { code: 'CONDITION_FAILED', message: 'no', retryable: false, details: [{ key: 'currentVersion', value: '9' }] },
    });
    call.found('2', 'vb');
    await expect(a).rejects.toMatchObject({ code: 'CONDITION_FAILED', details: { currentVersion: '9' } });
    await expect(b).resolves.toMatchObject({ get: { found: true } });
  });

  test('a deadline rejects with DEADLINE_EXCEEDED; a late answer is ignored', async () => {
    const { session, calls } = fixture();
    const err = await rejection(session.request('put', { key: Buffer.from('a') }, Date.now() + 30));
    expect(err.code).toBe('DEADLINE_EXCEEDED');
    // It was written: the node may still apply it.
    expect(writeOutcome(err)).toBe('unknown');
    (calls[0] as FakeDuplex).answer('1', { result: 'put', put: { version: '5' } });
    expect(session.inFlightCount).toBe(0);
  });

  test('one timer serves all deadlines: each request expires at its own, answered ones never, none stays armed', async () => {
    const { session, calls } = fixture();
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const t0 = Date.now();
    const late = session.request('get', get('late'), t0 + 250);
    const early = session.request('get', get('early'), t0 + 40);
    const answered = session.request('get', get('ok'), t0 + 40);
    await tick();
    (calls[0] as FakeDuplex).found('3', 'v');
    await expect(answered).resolves.toMatchObject({ get: { found: true } });
    expect((await rejection(early)).code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(35);
    expect(session.inFlightCount).toBe(1); // `late` still waits
    expect((await rejection(late)).code).toBe('DEADLINE_EXCEEDED');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    // Once nothing waits, no deadline timer is left to keep the process alive.
    const before = timeouts();
    const q = session.request('get', get('q'), far());
    await tick();
    (calls[0] as FakeDuplex).found('4', 'v');
    await q;
    expect(timeouts()).toBe(before);
  });

  test('abort rejects with CANCELLED and frees the slot', async () => {
    const { session } = fixture({ inFlightMax: 1 });
    const ac = new AbortController();
    const p = session.request('get', get('a'), far(), ac.signal);
    await tick();
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(session.inFlightCount).toBe(0);
    await expect(session.request('get', get('b'), far(), AbortSignal.abort())).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  test('a broken stream fails written requests as unknown, queued ones as not applied, then reopens', async () => {
    const { session, calls } = fixture({ inFlightMax: 2 });
    const pending = Array.from({ length: 4 }, (_, i) => rejection(session.request('put', { key: Buffer.from(`k${i}`) }, far())));
    await tick();
    const first = calls[0] as FakeDuplex;
    expect(first.written).toHaveLength(2);
    first.fail(grpc.status.UNAVAILABLE);
    const errs = await Promise.all(pending);
    expect(errs.map((e) => e.code)).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    expect(errs.map(writeOutcome)).toEqual(['unknown', 'unknown', 'not-applied', 'not-applied']);
    expect(first.cancelled).toBe(true);
    // The next request opens a new stream.
    const again = session.request('get', get('x'), far());
    await tick();
    expect(calls).toHaveLength(2);
    (calls[1] as FakeDuplex).found(String((calls[1] as FakeDuplex).written[0]?.id), 'v');
    await expect(again).resolves.toMatchObject({ get: { found: true } });
  });

  test('a node without Stream (UNIMPLEMENTED) makes the session unsupported; nothing applied', async () => {
    const { session, calls } = fixture();
    const p = rejection(session.request('put', { key: Buffer.from('a') }, far()));
    await tick();
    (calls[0] as FakeDuplex).fail(grpc.status.UNIMPLEMENTED);
    const err = await p;
    expect(err.code).toBe('UNAVAILABLE');
    expect(writeOutcome(err)).toBe('not-applied');
    expect(session.usable).toBe(false);
    expect(session.status).toBe('unsupported');
  });

  test('when the stream cannot be opened, every waiting request fails as not applied', async () => {
    const { session } = fixture({ openFails: true });
    const errs = await Promise.all([1, 2, 3].map((i) => rejection(session.request('put', { key: Buffer.from(`k${i}`) }, far()))));
    for (const e of errs) {
      expect(e.code).toBe('UNAVAILABLE');
      expect(writeOutcome(e)).toBe('not-applied');
    }
    expect(session.status).toBe('idle');
  });

  test('the node ending the stream fails what is in flight', async () => {
    const { session, calls } = fixture();
    const p = session.request('get', get('a'), far());
    await tick();
    (calls[0] as FakeDuplex).emit('end');
    await expect(p).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  test('close fails pending requests with CANCELLED and refuses new ones', async () => {
    const { session, calls } = fixture();
    const p = session.request('get', get('a'), far());
    await tick();
    session.close();
    await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
    expect((calls[0] as FakeDuplex).cancelled).toBe(true);
    await expect(session.request('get', get('b'), far())).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});
