/**
 * The receiving end of `SendSnapshot` over real gRPC, fed by a raw client: a well-formed stream
 * is staged and then delivered; malformed or cut-off streams are refused with a specific status,
 * deliver nothing, and leave no staged rows; the partition's data is never touched. The same for
 * `SendSnapshotFiles` (SST files, ADR 0013), which a node whose engine cannot ingest SST files
 * refuses with UNIMPLEMENTED, over gRPC and over the snapshot socket (ADR 0014), which also
 * refuses bytes that are not a transfer. Also the node-wide rate limiter's pacing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { keyvaV1, type RaftClient, type SnapshotAckOut, type SnapshotFrame } from '@keyva/proto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { ScanItem } from '../engine/types.ts';
import { NodeMetrics } from '../observability/metrics.ts';
import { type Message, message } from '../raft/messages.ts';
import type { ReplicaId } from '../raft/types.ts';
import { encodeRows, encodeSnapshotDescriptor } from './partition-snapshot.ts';
import { encodeMessage } from './raft-codec.ts';
import { RaftTransport } from './raft-transport.ts';
import { RateLimiter } from './snapshot-rate-limiter.ts';
import { encodeSocketFrame, SOCKET_PREAMBLE, SocketAnswerReader } from './snapshot-socket.ts';
import { SOCKET_CONNECTIONS_MAX } from './snapshot-socket-server.ts';
import { FileSnapshotStaging } from './snapshot-staging-files.ts';

const RANGE = { start: 100n, end: 200n };
const dirs: string[] = [];
const stagings: FileSnapshotStaging[] = [];
afterAll(async () => {
  for (const s of stagings) await s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const ID = { index: 7, term: 2 };
/** Servers and transports `setup` started, stopped after each test. */
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

const row = (hash: bigint, key: string, value: string): ScanItem => ({ hash, key: Buffer.from(key), value: Buffer.from(value), version: 5n, expiresAtMs: 0 });

const snapMessage = (to = 'b'): Message =>
  message({
    type: 'snapshot',
    from: 'a' as ReplicaId,
    to: to as ReplicaId,
    term: 2,
    snapshot: {
      metadata: { index: ID.index, term: ID.term, confState: { voters: ['a' as ReplicaId], learners: [] } },
      data: encodeSnapshotDescriptor({ maxCommitTs: 5n, range: RANGE }),
    },
  });

/** `sst`: the engine claims SST support (the receiver only stages; nothing here ingests). */
async function setup(o: { sst?: boolean } = {}) {
  const engine = new MemoryEngine();
  await engine.open();
  if (o.sst === true) {
    const unused = () => Promise.reject(new Error('the receiver does not ingest'));
    Object.defineProperty(engine, 'sst', { value: { export: unused, ingest: unused } });
  }
  // Staged in files, as on a node on RocksDB.
  const dir = await mkdtemp(join(tmpdir(), 'keyva-recv-'));
  dirs.push(dir);
  const staging = new FileSnapshotStaging(join(dir, 'snapshots'));
  stagings.push(staging);
  const delivered: { from: string; group: number; m: Message }[] = [];
  const t = new RaftTransport({
    self: 'b',
    addressOf: () => undefined,
    onReceive: (from, group, m) => delivered.push({ from, group, m }),
    snapshotSocket: { host: '127.0.0.1', port: 0 },
  });
  t.attachSnapshots({ engine, staging, reportSnapshot: () => undefined, rangeOf: (g) => (g === 1 ? RANGE : undefined), refusesSnapshot: () => undefined });
  const socketPort = (await t.startSnapshotSocket()) ?? 0;
  const server = new grpc.Server();
  server.addService(keyvaV1.Raft.service, t.handlers());
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, n) => (e ? rej(e) : res(n))),
  );
  const client = new keyvaV1.Raft(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as RaftClient;
  cleanup.push(
    () => server.forceShutdown(),
    () => t.close(),
  );
  // Data of the partition that no refused stream may change.
  await engine.write({
    mutations: [{ type: 'put', hash: 150n, key: Buffer.from('old'), value: Buffer.from('x'), expiresAtMs: 0 }],
    commitTs: 3n,
    nowMs: 0,
    sync: false,
  });
  return { engine, staging, delivered, t, server, client, socketPort };
}

type Sent = { code: number; details: string; ack?: SnapshotAckOut };

/** Writes `bytes` to the snapshot socket on `port` (then half-closes unless `end` is false: then it breaks off); resolves with the answer. */
function sendSocketBytes(port: number, bytes: Buffer, end = true): Promise<Sent> {
  return new Promise((resolve) => {
    const reader = new SocketAnswerReader();
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
      socket.write(bytes);
      if (end) socket.end();
      else setTimeout(() => socket.destroy(), 200);
    });
    socket.on('data', (b: Buffer) => {
      reader.push(b);
      const a = reader.answer();
      if (a === undefined) return;
      resolve(a.code === 0 && 'ack' in a ? { code: 0, details: '', ack: a.ack } : { code: a.code, details: 'details' in a ? a.details : '' });
      socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ code: -1, details: 'closed without an answer' }));
  });
}

/** The frames of an SST-files transfer over gRPC or over the snapshot socket (ADR 0014), as the sender writes them. */
const CARRIERS = [
  ['over gRPC', (s: Awaited<ReturnType<typeof setup>>, frames: SnapshotFrame[]) => sendFrames(s.client, frames, true, true)],
  [
    'over the snapshot socket',
    (s: Awaited<ReturnType<typeof setup>>, frames: SnapshotFrame[]) =>
      sendSocketBytes(s.socketPort, Buffer.concat(frames.map((f, i) => encodeSocketFrame(f, i === 0)))),
  ],
] as const;

/** Sends `frames` (then ends the stream unless `end` is false); resolves with the status code (0 = OK). */
function sendFrames(client: RaftClient, frames: SnapshotFrame[], end = true, files = false): Promise<{ code: number; details: string; ack?: SnapshotAckOut }> {
  return new Promise((resolve) => {
    const answer = (err: grpc.ServiceError | null, ack?: SnapshotAckOut) =>
      resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '', ack });
    const call = files ? client.sendSnapshotFiles(answer) : client.sendSnapshot(answer);
    call.on('error', () => undefined);
    for (const f of frames) call.write(f);
    if (end) call.end();
    else setTimeout(() => call.cancel(), 200);
  });
}

const header = (over: Partial<SnapshotFrame> = {}): SnapshotFrame => ({ fromNode: 'a', toNode: 'b', group: 1, message: encodeMessage(snapMessage()), ...over });

describe('SnapshotReceiver', () => {
  it('stages a well-formed stream, completes it durably, then delivers the message', async () => {
    const s = await setup();
    const c1 = encodeRows([row(110n, 'k1', 'v1'), row(120n, 'k2', 'v2')]);
    const c2 = encodeRows([row(199n, 'k3', 'v3')]);
    const r = await sendFrames(s.client, [header(), { rows: c1 }, { rows: c2 }, { done: true, totalRows: 3, totalBytes: c1.length + c2.length }]);
    expect(r.code).toBe(0);
    expect(r.ack).toEqual({ rows: '3', bytes: String(c1.length + c2.length) });
    expect(s.delivered).toHaveLength(1);
    expect(s.delivered[0]?.m.snapshot?.metadata.index).toBe(ID.index);
    expect(await s.staging.totals(1, ID)).toEqual({ chunks: 2, rows: 3, bytes: c1.length + c2.length });
    // Staged only: the partition's data is untouched until the state machine installs it.
    expect((await s.engine.scan({ startHash: RANGE.start, endHash: RANGE.end }, 10n, 0, 10)).items.map((i) => i.key.toString())).toEqual(['old']);
    expect(s.t.snapshotStats().receive).toMatchObject({ received: 1, rowsReceived: 3 });
    const metrics = new NodeMetrics(s.engine, { defaultMetrics: false });
    metrics.watchSnapshotStreams(() => s.t.snapshotTotals());
    const text = await metrics.registry.metrics();
    expect(text).toContain(`keyva_snapshot_received_bytes ${c1.length + c2.length}`);
    expect(text).toContain('keyva_snapshots_received 1');
    // The time the transfer took is counted, and stops growing once no transfer is in progress.
    const ms = s.t.snapshotStats().receive?.receivingMs ?? 0;
    expect(ms).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(s.t.snapshotStats().receive?.receivingMs).toBe(ms);
    expect(text).toMatch(/keyva_snapshot_receiving_seconds \d/);
  });

  it('refuses malformed and cut-off streams: nothing delivered, nothing left staged', async () => {
    const s = await setup();
    const ok = encodeRows([row(110n, 'k1', 'v1')]);
    const cases: { frames: SnapshotFrame[]; end?: boolean; code: number; details: RegExp }[] = [
      { frames: [header({ toNode: 'c' })], code: grpc.status.INVALID_ARGUMENT, details: /addressed to node c/ },
      { frames: [header({ group: 9 })], code: grpc.status.UNAVAILABLE, details: /not hosted/ },
      { frames: [header({ message: Buffer.from([1, 2, 3]) })], code: grpc.status.INVALID_ARGUMENT, details: /malformed Raft message/ },
      { frames: [header(), { rows: encodeRows([row(250n, 'far', 'x')]) }], code: grpc.status.INVALID_ARGUMENT, details: /outside group 1/ },
      { frames: [header(), { rows: Buffer.from([0, 1, 2]) }], code: grpc.status.INVALID_ARGUMENT, details: /corrupt partition snapshot/ },
      { frames: [header(), { rows: ok }, { done: true, totalRows: 2, totalBytes: ok.length }], code: grpc.status.INVALID_ARGUMENT, details: /totals/ },
      { frames: [header(), { rows: ok }], code: grpc.status.UNAVAILABLE, details: /ended before its last frame/ },
      { frames: [header(), { rows: ok }], end: false, code: grpc.status.CANCELLED, details: /.*/ },
    ];
    for (const c of cases) {
      const r = await sendFrames(s.client, c.frames, c.end);
      expect(r.code, c.details.source).toBe(c.code);
      expect(r.details).toMatch(c.details);
    }
    expect(s.delivered).toEqual([]);
    // The cleanup of a cut-off stream runs after its answer (later still on a busy machine).
    await expect.poll(() => s.staging.ids(1), { timeout: 10_000, interval: 25 }).toEqual([]);
    expect((await s.engine.scan({ startHash: RANGE.start, endHash: RANGE.end }, 10n, 0, 10)).items.map((i) => i.key.toString())).toEqual(['old']);
  });

  it.each(CARRIERS)('SST files %s: staged file by file, checked against the sizes and CRC-32s listed, then delivered', async (_carrier, send) => {
    const s = await setup({ sst: true });
    const d1 = Buffer.alloc(3000, 1);
    const d2 = Buffer.alloc(1000, 2);
    const l1 = Buffer.alloc(500, 3);
    const files = [
      { kind: 1, bytes: 4000, crc32: crc32(Buffer.concat([d1, d2])) },
      { kind: 2, bytes: 500, crc32: crc32(l1) },
    ];
    const frames: SnapshotFrame[] = [
      header(),
      { sstKind: 1, sstData: d1 },
      { sstKind: 1, sstData: d2 },
      { sstKind: 2, sstData: l1 },
      { done: true, totalRows: 40, totalBytes: 4500, sstFiles: files },
    ];
    const r = await send(s, frames);
    expect(r.code, r.details).toBe(0);
    expect(s.delivered).toHaveLength(1);
    const staged = await s.staging.totals(1, ID);
    expect(staged?.sst?.map((f) => [f.kind, f.bytes])).toEqual([
      ['data', 4000],
      ['raw', 500],
    ]);
    expect((await readFile(s.staging.sst.sstPath(1, ID, 'data'))).equals(Buffer.concat([d1, d2]))).toBe(true);
    expect(s.t.snapshotStats().receive).toMatchObject({ received: 1, rowsReceived: 40, bytesReceived: 4500 });
    expect((await s.engine.scan({ startHash: RANGE.start, endHash: RANGE.end }, 10n, 0, 10)).items.map((i) => i.key.toString())).toEqual(['old']);
  });

  it.each(CARRIERS)('SST files %s: malformed streams are refused, and a node that cannot ingest them answers UNIMPLEMENTED', async (_carrier, send) => {
    const plain = await setup();
    const s = await setup({ sst: true });
    const piece = Buffer.alloc(100, 7);
    const listed = (bytes = 100, crc = crc32(piece), kind = 1) => ({ done: true, totalRows: 1, totalBytes: 100, sstFiles: [{ kind, bytes, crc32: crc }] });
    const unsupported = await send(plain, [header(), { sstKind: 1, sstData: piece }, listed()]);
    expect(unsupported.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(unsupported.details).toMatch(/cannot ingest SST files/);
    expect(plain.delivered).toEqual([]);
    const cases: { frames: SnapshotFrame[]; code: number; details: RegExp }[] = [
      { frames: [header(), { sstKind: 9, sstData: piece }], code: grpc.status.INVALID_ARGUMENT, details: /unknown SST file kind 9/ },
      { frames: [header(), { sstKind: 2, sstData: piece }, { sstKind: 1, sstData: piece }], code: grpc.status.INVALID_ARGUMENT, details: /after a later one/ },
      { frames: [header(), { sstKind: 1, sstData: piece }, listed(101)], code: grpc.status.INVALID_ARGUMENT, details: /101 bytes listed, 100 received/ },
      { frames: [header(), { sstKind: 1, sstData: piece }, listed(100, 5)], code: grpc.status.UNAVAILABLE, details: /crc/ },
      {
        frames: [header(), { sstKind: 1, sstData: piece }, { ...listed(), sstFiles: [] }],
        code: grpc.status.INVALID_ARGUMENT,
        details: /1 SST files received, 0 listed/,
      },
      { frames: [header(), { sstKind: 1, sstData: piece }, { ...listed(), totalBytes: 99 }], code: grpc.status.INVALID_ARGUMENT, details: /totals 99 bytes/ },
      { frames: [header(), { sstKind: 1, sstData: piece }], code: grpc.status.UNAVAILABLE, details: /ended before its last frame/ },
    ];
    for (const c of cases) {
      const r = await send(s, c.frames);
      expect(r.code, c.details.source).toBe(c.code);
      expect(r.details).toMatch(c.details);
    }
    expect(s.delivered).toEqual([]);
    await expect.poll(() => s.staging.ids(1), { timeout: 10_000, interval: 25 }).toEqual([]);
    expect((await s.engine.scan({ startHash: RANGE.start, endHash: RANGE.end }, 10n, 0, 10)).items.map((i) => i.key.toString())).toEqual(['old']);
  });

  it('the snapshot socket: its port is given to peers only where SST files are taken; bytes that are not a transfer are refused and change nothing', async () => {
    const plain = await setup();
    const s = await setup({ sst: true });
    const endpoint = (c: RaftClient) =>
      new Promise<number>((res, rej) => c.snapshotEndpoint({}, (e, r) => (e !== null || r === undefined ? rej(e) : res(r.port))));
    expect(await endpoint(s.client)).toBe(s.socketPort);
    expect(s.socketPort).toBeGreaterThan(0);
    expect(await endpoint(plain.client)).toBe(0);

    const piece = Buffer.alloc(100, 7);
    const good = [header(), { sstKind: 1, sstData: piece }].map((f, i) => encodeSocketFrame(f, i === 0));
    const lengthOf = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const cases: { bytes: Buffer; end?: boolean; code: number; details: RegExp }[] = [
      {
        bytes: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
        code: grpc.status.INVALID_ARGUMENT,
        details: /not a KeyVa snapshot stream \(wrong preamble\)/,
      },
      {
        bytes: Buffer.concat([SOCKET_PREAMBLE, lengthOf(0xffffffff)]),
        code: grpc.status.INVALID_ARGUMENT,
        details: /frame of 4294967295 bytes \(at most 67108864\)/,
      },
      { bytes: Buffer.concat([SOCKET_PREAMBLE, lengthOf(3), Buffer.from([0xff, 0xff, 0xff])]), code: grpc.status.INVALID_ARGUMENT, details: /malformed frame/ },
      {
        bytes: Buffer.concat([...good, lengthOf(1000), Buffer.alloc(10)]),
        code: grpc.status.INVALID_ARGUMENT,
        details: /cut short inside a frame \(14 bytes left over\)/,
      },
      { bytes: Buffer.concat(good), code: grpc.status.UNAVAILABLE, details: /ended before its last frame/ },
      { bytes: Buffer.concat(good), end: false, code: grpc.status.UNAVAILABLE, details: /broke off/ },
    ];
    for (const c of cases) {
      const r = await sendSocketBytes(s.socketPort, c.bytes, c.end);
      if (c.end === false) continue; // broken off by the sender: nobody reads the answer
      expect(r.code, c.details.source).toBe(c.code);
      expect(r.details).toMatch(c.details);
    }
    expect(s.delivered).toEqual([]);
    await expect.poll(() => s.staging.ids(1), { timeout: 10_000, interval: 25 }).toEqual([]);
    expect((await s.engine.scan({ startHash: RANGE.start, endHash: RANGE.end }, 10n, 0, 10)).items.map((i) => i.key.toString())).toEqual(['old']);
    // The socket still takes a good transfer afterwards.
    const files = [{ kind: 1, bytes: 100, crc32: crc32(piece) }];
    const ok = await sendSocketBytes(s.socketPort, Buffer.concat([...good, encodeSocketFrame({ done: true, totalRows: 1, totalBytes: 100, sstFiles: files })]));
    expect(ok.code, ok.details).toBe(0);
    expect(s.delivered).toHaveLength(1);
    expect(s.t.snapshotStats().receive?.failed).toBe(cases.length);
  });

  it('a transfer over the snapshot socket in progress when the node closes it is counted failed and frees its group', async () => {
    const s = await setup({ sst: true });
    const piece = Buffer.alloc(100, 7);
    const socket = net.connect({ host: '127.0.0.1', port: s.socketPort, allowHalfOpen: true });
    socket.on('error', () => undefined);
    socket.write(Buffer.concat([header(), { sstKind: 1, sstData: piece }].map((f, i) => encodeSocketFrame(f, i === 0))));
    // The socket's thread staged the piece and told the event loop: the transfer holds its group.
    await expect.poll(() => s.t.snapshotStats().receive?.bytesReceived, { timeout: 5_000, interval: 10 }).toBe(100);
    const before = s.t.snapshotStats().receive;
    expect(before?.failed).toBe(0);
    s.t.close();
    const after = s.t.snapshotStats().receive;
    expect(after?.failed).toBe(1);
    const ms = after?.receivingMs ?? 0;
    await new Promise((r) => setTimeout(r, 50));
    expect(s.t.snapshotStats().receive?.receivingMs).toBe(ms); // no transfer in progress any more
    expect(s.delivered).toEqual([]);
    socket.destroy();
  });

  it('the snapshot socket of a node that takes no snapshots yet answers UNAVAILABLE and stays up', async () => {
    const t = new RaftTransport({ self: 'b', addressOf: () => undefined, onReceive: () => undefined, snapshotSocket: { host: '127.0.0.1', port: 0 } });
    cleanup.push(() => t.close());
    const port = (await t.startSnapshotSocket()) ?? 0;
    const frames = Buffer.concat([header(), { sstKind: 1, sstData: Buffer.alloc(10) }].map((f, i) => encodeSocketFrame(f, i === 0)));
    for (const end of [true, false, true]) {
      const r = await sendSocketBytes(port, frames, end);
      if (end) expect(r).toEqual({ code: grpc.status.UNAVAILABLE, details: 'this node takes no snapshots now' });
    }
  });

  it(`the snapshot socket serves at most ${SOCKET_CONNECTIONS_MAX} connections at once; one more is closed unanswered`, async () => {
    const s = await setup({ sst: true });
    const open: net.Socket[] = [];
    for (let i = 0; i < SOCKET_CONNECTIONS_MAX; i++) {
      const c = net.connect({ host: '127.0.0.1', port: s.socketPort });
      c.on('error', () => undefined);
      open.push(c);
      await new Promise((r) => c.once('connect', r));
    }
    cleanup.push(() => {
      for (const c of open) c.destroy();
    });
    const extra = await sendSocketBytes(s.socketPort, Buffer.concat([header()].map((f) => encodeSocketFrame(f, true))));
    expect(extra).toEqual({ code: -1, details: 'closed without an answer' });
    // Once one closes, a transfer is served again.
    open.pop()?.destroy();
    const piece = Buffer.alloc(100, 7);
    const frames = [
      header(),
      { sstKind: 1, sstData: piece },
      { done: true, totalRows: 1, totalBytes: 100, sstFiles: [{ kind: 1, bytes: 100, crc32: crc32(piece) }] },
    ];
    await expect
      .poll(async () => (await sendSocketBytes(s.socketPort, Buffer.concat(frames.map((f, i) => encodeSocketFrame(f, i === 0))))).code, { timeout: 5_000 })
      .toBe(0);
  });

  it('the rate limiter paces bytes at the configured rate after the burst', async () => {
    let now = 0;
    const waits: number[] = [];
    const limiter = new RateLimiter({
      bytesPerSecond: 1000,
      burstBytes: 500,
      now: () => now,
      sleep: async (ms) => {
        waits.push(ms);
        now += ms;
      },
    });
    for (let i = 0; i < 5; i++) await limiter.take(250);
    // 1250 bytes: the first 500 (burst) go at once, the rest at 1000 B/s.
    expect(now).toBeCloseTo(750, 6);
    expect(waits.length).toBeGreaterThan(0);
  });
});
