/**
 * The receive window of snapshot streams (`snapshot-flow-window.ts`), over real gRPC on
 * 127.0.0.1: the receiver raises its HTTP/2 windows on the session under the call (a canary for
 * the grpc-js internals it relies on), and so a snapshot still streams fast to a node whose
 * event loop is busy (turns of 20 ms: with the default 64 KiB window it moved ~2 MiB/s).
 */
import type { Http2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { keyvaV1, type RaftClient, type SnapshotAckOut, type SnapshotFrame } from '@keyva/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { ScanItem } from '../engine/types.ts';
import { message } from '../raft/messages.ts';
import type { ReplicaId } from '../raft/types.ts';
import { encodeRows, encodeSnapshotDescriptor } from './partition-snapshot.ts';
import { encodeMessage } from './raft-codec.ts';
import { RaftTransport } from './raft-transport.ts';
import { SNAPSHOT_RECEIVE_WINDOW_BYTES, widenReceiveWindow } from './snapshot-flow-window.ts';
import { EngineSnapshotStaging } from './snapshot-staging-engine.ts';

const RANGE = { start: 0n, end: 1n << 32n };
const ID = { index: 7, term: 2 };
const MiB = 1 << 20;

async function serve(impl: grpc.UntypedServiceImplementation): Promise<{ server: grpc.Server; client: RaftClient }> {
  const server = new grpc.Server();
  server.addService(keyvaV1.Raft.service, impl);
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, n) => (e ? rej(e) : res(n))),
  );
  const client = new keyvaV1.Raft(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as RaftClient;
  return { server, client };
}

describe('snapshot receive window', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  it('raises the initial stream window of the session under a server call, once per session', async () => {
    const sessions: unknown[] = [];
    const { server, client } = await serve({
      sendSnapshot: (call: grpc.ServerReadableStream<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        sessions.push(widenReceiveWindow(call));
        call.on('data', () => undefined);
        call.on('end', () => cb(null, { rows: 0, bytes: 0 }));
      },
    });
    cleanup.push(() => server.forceShutdown());
    for (let i = 0; i < 2; i++) {
      await new Promise<void>((resolve, reject) => {
        const call = client.sendSnapshot((err: grpc.ServiceError | null) => (err ? reject(err) : resolve()));
        call.end();
      });
    }
    expect(sessions).toHaveLength(2);
    const session = sessions[0] as Http2Session | undefined;
    expect(session, 'the HTTP/2 session under the grpc-js call was not found').toBeDefined();
    expect(sessions[1]).toBe(session);
    for (const end = Date.now() + 5000; session?.localSettings.initialWindowSize !== SNAPSHOT_RECEIVE_WINDOW_BYTES && Date.now() < end; ) {
      await new Promise((res) => setTimeout(res, 10));
    }
    expect(session?.localSettings.initialWindowSize).toBe(SNAPSHOT_RECEIVE_WINDOW_BYTES);
    expect(session?.state.effectiveLocalWindowSize).toBeGreaterThanOrEqual(SNAPSHOT_RECEIVE_WINDOW_BYTES);
  });

  it('a 16 MiB snapshot reaches a node with a busy event loop at more than 6 MiB/s', { timeout: 60_000 }, async () => {
    const engine = new MemoryEngine();
    await engine.open();
    const delivered: number[] = [];
    const t = new RaftTransport({ self: 'b', addressOf: () => undefined, onReceive: (_from, group) => delivered.push(group) });
    t.attachSnapshots({
      engine,
      staging: new EngineSnapshotStaging(engine),
      reportSnapshot: () => undefined,
      rangeOf: (g) => (g === 1 ? RANGE : undefined),
      refusesSnapshot: () => undefined,
    });
    const { server, client } = await serve(t.handlers());
    cleanup.push(
      () => server.forceShutdown(),
      () => t.close(),
    );
    const snap = message({
      type: 'snapshot',
      from: 'a' as ReplicaId,
      to: 'b' as ReplicaId,
      term: 2,
      snapshot: {
        metadata: { index: ID.index, term: ID.term, confState: { voters: ['a' as ReplicaId], learners: [] } },
        data: encodeSnapshotDescriptor({ maxCommitTs: 5n, range: RANGE }),
      },
    });
    // 16 chunks of 64 rows of 16 KiB.
    const chunks = Array.from({ length: 16 }, (_, c) =>
      encodeRows(
        Array.from(
          { length: 64 },
          (_, i): ScanItem => ({
            hash: BigInt(c * 64 + i),
            key: Buffer.from(`k${c * 64 + i}`),
            value: Buffer.alloc(16 * 1024, i),
            version: 5n,
            expiresAtMs: 0,
          }),
        ),
      ),
    );
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    // A busy node: the event loop is blocked 20 ms out of every ~21.
    const spinner = setInterval(() => {
      const end = performance.now() + 20;
      while (performance.now() < end);
    }, 1);
    const started = performance.now();
    let ack: SnapshotAckOut | undefined;
    try {
      ack = await new Promise<SnapshotAckOut | undefined>((resolve, reject) => {
        const call = client.sendSnapshot((err: grpc.ServiceError | null, a?: SnapshotAckOut) => (err ? reject(err) : resolve(a)));
        const frames: SnapshotFrame[] = [
          { fromNode: 'a', toNode: 'b', group: 1, message: encodeMessage(snap) },
          ...chunks.map((rows) => ({ rows })),
          { done: true, totalRows: 16 * 64, totalBytes: bytes },
        ];
        for (const f of frames) call.write(f);
        call.end();
      });
    } finally {
      clearInterval(spinner);
    }
    const seconds = (performance.now() - started) / 1000;
    expect(ack).toEqual({ rows: String(16 * 64), bytes: String(bytes) });
    expect(delivered).toEqual([1]);
    expect(await new EngineSnapshotStaging(engine).totals(1, ID)).toEqual({ chunks: 16, rows: 16 * 64, bytes });
    const rate = bytes / MiB / seconds;
    expect(rate, `${(bytes / MiB).toFixed(1)} MiB in ${seconds.toFixed(2)} s`).toBeGreaterThan(6);
  });
});
