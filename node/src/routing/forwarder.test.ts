/**
 * The forwarder over real gRPC on loopback, against a stand-in "leader" server whose handlers
 * the test controls: what arrives (marker, deadline, request), and what the forwarding node
 * answers when the leader answers, never answers, or cannot be reached.
 */
import * as grpc from '@grpc/grpc-js';
import { keyvaV1 } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../net/free-port.ts';
import { toServiceError } from '../server/grpc-errors.ts';
import { FORWARDED_BY_METADATA, Forwarder, MAX_STALENESS_METADATA } from './forwarder.ts';
import { StaticNodeDirectory } from './node-directory.ts';

type Handler = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

async function leaderServer(handlers: Partial<Record<'Get' | 'Put', Handler>>): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  const none: Handler = (_c, cb) => cb({ code: grpc.status.UNIMPLEMENTED });
  server.addService(keyvaV1.KV.service, {
    Get: handlers.Get ?? none,
    Put: handlers.Put ?? none,
    Delete: none,
    BatchGet: none,
    BatchWrite: none,
    Scan: () => undefined,
    Stream: () => undefined,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, address: `127.0.0.1:${port}` };
}

describe('Forwarder', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const f of cleanup.splice(0)) f();
  });
  const forwarder = (nodes: { id: string; grpcAddress: string }[]) => {
    const f = new Forwarder({ self: 'node-1', directory: new StaticNodeDirectory(nodes), messageBytesMax: 1 << 20, connectTimeoutMs: 500 });
    cleanup.push(() => f.close());
    return f;
  };

  it("sends the request with the forwarded marker, the caller's deadline and the staleness bound, and returns the answer", async () => {
    let seen: { by: unknown; staleness: unknown; deadline: unknown; key: string } | undefined;
    const { server, address } = await leaderServer({
      Get: (call, cb) => {
        const req = call.request as { key: Buffer };
        seen = {
          by: call.metadata.get(FORWARDED_BY_METADATA)[0],
          staleness: call.metadata.get(MAX_STALENESS_METADATA)[0],
          deadline: call.getDeadline(),
          key: req.key.toString(),
        };
        cb(null, { found: true, value: Buffer.from('v'), version: '7', expiresAtMs: '0', readTs: '8' });
      },
    });
    cleanup.push(() => server.forceShutdown());
    const deadlineMs = Date.now() + 3000;
    const res = await forwarder([{ id: 'node-2', grpcAddress: address }]).forward<{ found: boolean; value: Buffer; version: string }>(
      'Get',
      { key: Buffer.from('k'), read: { consistency: 'FOLLOWER', snapshotTs: '0' } },
      'node-2',
      { deadlineMs, write: false, maxStalenessMs: 250 },
    );
    expect([res.found, res.value.toString(), res.version]).toEqual([true, 'v', '7']);
    expect(seen?.by).toBe('node-1');
    expect(seen?.staleness).toBe('250');
    expect(seen?.key).toBe('k');
    const d = seen?.deadline instanceof Date ? seen.deadline.getTime() : Number(seen?.deadline);
    expect(Math.abs(d - deadlineMs)).toBeLessThan(500);
  });

  it("passes the leader's KeyVa error on unchanged", async () => {
    const { server, address } = await leaderServer({
      Put: (_call, cb) => cb(toServiceError(new KeyVaError('CONDITION_FAILED', 'nope', { currentVersion: '5', index: '0' })) as grpc.ServiceError),
    });
    cleanup.push(() => server.forceShutdown());
    const err = await forwarder([{ id: 'node-2', grpcAddress: address }])
      .forward('Put', { key: Buffer.from('k'), value: Buffer.from('v') }, 'node-2', { deadlineMs: undefined, write: true })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONDITION_FAILED', message: 'nope', details: { currentVersion: '5', index: '0' } });
  });

  it('answers a write whose leader vanished mid-call as an unknown outcome, a read as retryable', async () => {
    let arrived = 0;
    const { server, address } = await leaderServer({
      Put: () => {
        arrived++;
      },
      Get: () => {
        arrived++;
      },
    });
    const f = forwarder([{ id: 'node-2', grpcAddress: address }]);
    const write = f
      .forward('Put', { key: Buffer.from('k'), value: Buffer.from('v') }, 'node-2', { deadlineMs: undefined, write: true })
      .catch((e: unknown) => e);
    const read = f.forward('Get', { key: Buffer.from('k') }, 'node-2', { deadlineMs: undefined, write: false }).catch((e: unknown) => e);
    for (let i = 0; i < 100 && arrived < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(arrived).toBe(2);
    server.forceShutdown();
    expect(await write).toMatchObject({ code: 'DEADLINE_EXCEEDED', details: { outcome: 'unknown', forwardedTo: 'node-2' } });
    expect(await read).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
  });

  it('says nothing was sent when the leader has no address or cannot be reached', async () => {
    const closed = await freePort();
    const f = forwarder([{ id: 'node-3', grpcAddress: `127.0.0.1:${closed}` }]);
    const unknown = await f.forward('Put', {}, 'node-9', { deadlineMs: undefined, write: true }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: 'UNAVAILABLE', details: { forwarded: 'false', leaderHint: 'node-9' } });
    const t0 = performance.now();
    const down = await f.forward('Put', {}, 'node-3', { deadlineMs: undefined, write: true }).catch((e: unknown) => e);
    expect(down).toMatchObject({ code: 'UNAVAILABLE', details: { forwarded: 'false' } });
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('follows one NOT_LEADER redirect to the leader it names, and no further', async () => {
    const seen: string[] = [];
    const replica = await leaderServer({
      Put: (_call, cb) => {
        seen.push('node-2');
        cb(toServiceError(new KeyVaError('NOT_LEADER', 'not me', { leaderHint: 'node-3', partitionId: '4' })) as grpc.ServiceError);
      },
    });
    const leader = await leaderServer({
      Put: (_call, cb) => {
        seen.push('node-3');
        cb(null, { version: '9' });
      },
    });
    const stale = await leaderServer({
      Put: (_call, cb) => {
        seen.push('node-4');
        cb(toServiceError(new KeyVaError('NOT_LEADER', 'not me either', { leaderHint: 'node-2' })) as grpc.ServiceError);
      },
    });
    cleanup.push(
      () => replica.server.forceShutdown(),
      () => leader.server.forceShutdown(),
      () => stale.server.forceShutdown(),
    );
    const f = forwarder([
      { id: 'node-2', grpcAddress: replica.address },
      { id: 'node-3', grpcAddress: leader.address },
      { id: 'node-4', grpcAddress: stale.address },
    ]);
    const put = { key: Buffer.from('k'), value: Buffer.from('v') };
    expect(await f.forward('Put', put, 'node-2', { deadlineMs: undefined, write: true })).toEqual({ version: '9' });
    expect(seen).toEqual(['node-2', 'node-3']);
    // node-4 names node-2, which names node-3: only one redirect, so node-2's NOT_LEADER comes back.
    seen.length = 0;
    const err = await f.forward('Put', put, 'node-4', { deadlineMs: undefined, write: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NOT_LEADER', details: { leaderHint: 'node-3' } });
    expect(seen).toEqual(['node-4', 'node-2']);
  });

  it('tries the alternates when nothing could be sent to the first node', async () => {
    const closed = await freePort();
    const { server, address } = await leaderServer({ Put: (_call, cb) => cb(null, { version: '3' }) });
    cleanup.push(() => server.forceShutdown());
    const f = forwarder([
      { id: 'node-2', grpcAddress: `127.0.0.1:${closed}` },
      { id: 'node-3', grpcAddress: address },
    ]);
    const put = { key: Buffer.from('k'), value: Buffer.from('v') };
    const call = { deadlineMs: undefined, write: true, alternates: ['node-2', 'node-1', 'node-3'] };
    expect(await f.forward('Put', put, 'node-2', call)).toEqual({ version: '3' });
    // Without alternates the unreachable node's answer stands.
    expect(await f.forward('Put', put, 'node-2', { deadlineMs: undefined, write: true }).catch((e: unknown) => e)).toMatchObject({
      code: 'UNAVAILABLE',
      details: { forwarded: 'false' },
    });
  });
});
