/**
 * `PeerAdmin` against a real grpc-js server on 127.0.0.1 (the node's own server and Admin
 * handlers: `createGrpcServer`, `adminGrpcHandlers`). A peer that stops while a call to it is in
 * flight (`forceShutdown`, as a stopping node does after its grace period) resets the stream:
 * grpc-js reports that as CANCELLED ("Call cancelled"), which callers (the SDK, the CLI, the
 * operator) take for "the caller gave up" and never retry. The caller did not cancel anything:
 * the call must fail UNAVAILABLE (retryable), outcome unknown. This is what a MergePartitions
 * forwarded to a meta leader that was being stopped answered in node/src/split/merge.test.ts (CI,
 * session 4). Answers and other errors pass through with their own codes.
 *
 * A peer that was down for a while and comes back is reachable again within about a second: grpc's
 * default reconnect backoff grows to minutes, and while it waits every call fails at once with
 * "No connection established" (a forwarded split failed so in merge.test.ts, CI, session 6).
 */
import type * as grpc from '@grpc/grpc-js';
import { KeyVaError } from '@keyva/proto/errors';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { freePort } from '../net/free-port.ts';
import { NodeMetrics } from '../observability/metrics.ts';
import { type AdminSource, adminGrpcHandlers } from '../server/admin-grpc.ts';
import { bindGrpc, createGrpcServer } from '../server/grpc-server.ts';
import { RequestRunner } from '../server/request-runner.ts';
import { PeerAdmin } from './peer-admin.ts';

/** A peer whose MergePartitions never answers (it waits, as a merge waiting for its absorb does) and whose SplitPartition refuses. */
async function hangingPeer(at = '127.0.0.1:0'): Promise<{ server: grpc.Server; address: string; arrived: Promise<void> }> {
  let arrive: () => void = () => {};
  const arrived = new Promise<void>((r) => {
    arrive = r;
  });
  const src = {
    health: () => ({}),
    nodeInfo: () => ({}),
    partitionMap: () => {
      throw new Error('unused');
    },
    merges: {
      mergePartitions: () => {
        arrive();
        return new Promise(() => {});
      },
    },
    splits: {
      splitPartition: () => Promise.reject(new KeyVaError('INVALID_ARGUMENT', 'partition 7 does not exist', { field: 'partition_id' })),
    },
  } as unknown as AdminSource;
  const runner = new RequestRunner(new NodeMetrics(new MemoryEngine(), { defaultMetrics: false }), pino({ level: 'silent' }), 60_000);
  const server = createGrpcServer({ messageBytesMax: 4 << 20 }, { kv: {}, admin: adminGrpcHandlers(src, runner) });
  const port = await bindGrpc(server, at);
  return { server, address: `127.0.0.1:${port}`, arrived };
}

const failureOf = async (p: Promise<unknown>): Promise<KeyVaError> => {
  try {
    await p;
  } catch (e) {
    return e as KeyVaError;
  }
  throw new Error('expected the call to fail');
};

describe('PeerAdmin: a peer that stops mid-call', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const f of cleanup.splice(0)) f();
  });

  it('fails the call UNAVAILABLE (retryable, outcome unknown), not CANCELLED', async () => {
    const peer = await hangingPeer();
    const peers = new PeerAdmin();
    cleanup.push(() => peers.close());
    const call = failureOf(peers.call(peer.address, 'MergePartitions', { leftId: 2, rightId: 3 }, 20_000));
    await peer.arrived;
    peer.server.forceShutdown();
    const e = await call;
    expect(e).toBeInstanceOf(KeyVaError);
    expect([e.code, e.retryable, e.details.outcome, e.details.address]).toEqual(['UNAVAILABLE', true, 'unknown', peer.address]);
    expect(e.message).toMatch(/ended the call without an answer/);
  });

  it('fails calls in flight UNAVAILABLE when this node closes its pool (it is stopping)', async () => {
    const peer = await hangingPeer();
    cleanup.push(() => peer.server.forceShutdown());
    const peers = new PeerAdmin();
    const call = failureOf(peers.call(peer.address, 'MergePartitions', { leftId: 2, rightId: 3 }, 20_000));
    await peer.arrived;
    peers.close();
    const e = await call;
    expect([e.code, e.retryable, e.details.outcome]).toEqual(['UNAVAILABLE', true, 'unknown']);
    expect(e.message).toMatch(/this node is stopping/);
    expect((await failureOf(peers.call(peer.address, 'MergePartitions', {}))).code).toBe('UNAVAILABLE');
  });

  it('keeps the codes of answers and of deadlines', async () => {
    const peer = await hangingPeer();
    cleanup.push(() => peer.server.forceShutdown());
    const peers = new PeerAdmin();
    cleanup.push(() => peers.close());
    const refused = await failureOf(peers.call(peer.address, 'SplitPartition', { partitionId: 7, atHash: '0' }));
    expect([refused.code, refused.details.field]).toEqual(['INVALID_ARGUMENT', 'partition_id']);
    const late = await failureOf(peers.call(peer.address, 'MergePartitions', { leftId: 2, rightId: 3 }, 300));
    expect(late.code).toBe('DEADLINE_EXCEEDED');
  });
});

describe('PeerAdmin: a peer that comes back', () => {
  it('reaches a peer within about a second of its start, however long it was down', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const split = () => failureOf(peers.call(address, 'SplitPartition', { partitionId: 7, atHash: '0' }, 500));
    const peers = new PeerAdmin();
    try {
      // Ten seconds of refused connections: grpc's default backoff would now wait ~6 s more.
      const downUntil = Date.now() + 10_000;
      while (Date.now() < downUntil) {
        expect((await split()).code).toBe('UNAVAILABLE');
        await new Promise((r) => setTimeout(r, 200));
      }
      const peer = await hangingPeer(address);
      try {
        const started = Date.now();
        let answer = await split();
        while (answer.code === 'UNAVAILABLE' && Date.now() - started < 2500) {
          await new Promise((r) => setTimeout(r, 100));
          answer = await split();
        }
        expect(answer.code).toBe('INVALID_ARGUMENT');
        expect(answer.message).toMatch(/partition 7 does not exist/);
      } finally {
        peer.server.forceShutdown();
      }
    } finally {
      peers.close();
    }
  }, 30_000);
});
