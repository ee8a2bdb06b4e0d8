import * as grpc from '@grpc/grpc-js';
import { keyvaV1 } from '@keyva/proto';
import { afterEach, describe, expect, it } from 'vitest';
import { type Message, message } from '../raft/messages.ts';
import type { ReplicaId } from '../raft/types.ts';
import { RaftTransport } from './raft-transport.ts';

interface Received {
  from: string;
  group: number;
  m: Message;
}

async function serve(t: RaftTransport, port = 0): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(keyvaV1.Raft.service, t.handlers());
  const p = await new Promise<number>((res, rej) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, n) => (e ? rej(e) : res(n))),
  );
  return { server, port: p };
}

const hb = (from: string, to: string, term: number): Message =>
  message({ type: 'heartbeat', from: from as ReplicaId, to: to as ReplicaId, term, commit: term });

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('RaftTransport', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  it('carries many groups over one stream per peer, both ways, in batches', async () => {
    const got: Record<string, Received[]> = { a: [], b: [] };
    const addrs: Record<string, string> = {};
    const ta = new RaftTransport({ self: 'a', addressOf: (id) => addrs[id], onReceive: (from, group, m) => got.a?.push({ from, group, m }) });
    const tb = new RaftTransport({ self: 'b', addressOf: (id) => addrs[id], onReceive: (from, group, m) => got.b?.push({ from, group, m }) });
    const sa = await serve(ta);
    const sb = await serve(tb);
    addrs.a = `127.0.0.1:${sa.port}`;
    addrs.b = `127.0.0.1:${sb.port}`;
    cleanup.push(() => {
      ta.close();
      tb.close();
      sa.server.forceShutdown();
      sb.server.forceShutdown();
    });
    for (let g = 0; g < 300; g++) ta.send('b', g, hb(`a/${g}`, `b/${g}`, g + 1));
    tb.send('a', 7, hb('b/7', 'a/7', 3));
    await until(() => got.b?.length === 300 && got.a?.length === 1);
    expect(got.b?.map((r) => r.group)).toEqual(Array.from({ length: 300 }, (_, g) => g));
    expect(got.b?.[42]?.m).toMatchObject({ type: 'heartbeat', term: 43, from: 'a/42', to: 'b/42' });
    expect(got.b?.[0]?.from).toBe('a');
    expect(ta.stats.connects).toBe(1);
    expect(ta.stats.batches).toBeLessThan(5);
  });

  it('drops while a peer is down and reconnects when it is back', async () => {
    const got: Received[] = [];
    const addrs: Record<string, string> = {};
    const ta = new RaftTransport({ self: 'a', addressOf: (id) => addrs[id], onReceive: () => undefined, reconnectBackoffMs: 50 });
    const tb = new RaftTransport({ self: 'b', addressOf: (id) => addrs[id], onReceive: (from, group, m) => got.push({ from, group, m }) });
    let sb = await serve(tb);
    addrs.b = `127.0.0.1:${sb.port}`;
    cleanup.push(() => {
      ta.close();
      tb.close();
      sb.server.forceShutdown();
    });
    ta.send('b', 1, hb('a/1', 'b/1', 1));
    await until(() => got.length === 1);
    sb.server.forceShutdown();
    const port = sb.port;
    // While b is gone, sends are dropped, never queued forever.
    for (let i = 0; i < 20; i++) {
      ta.send('b', 1, hb('a/1', 'b/1', 2));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(ta.stats.dropped).toBeGreaterThan(0);
    sb = await serve(tb, port);
    await until(() => {
      ta.send('b', 1, hb('a/1', 'b/1', 9));
      return got.some((r) => r.m.term === 9);
    });
    expect(ta.stats.connects).toBeGreaterThan(1);
  });

  it('recovers a link whose stream broke while it waited for back-pressure to drain', async () => {
    const got: Received[] = [];
    const addrs: Record<string, string> = {};
    const ta = new RaftTransport({ self: 'a', addressOf: (id) => addrs[id], onReceive: () => undefined, reconnectBackoffMs: 50 });
    // A peer that never reads its stream: HTTP/2 flow control pushes back on the sender.
    const stall = new grpc.Server();
    stall.addService(keyvaV1.Raft.service, {
      Send: (call: grpc.ServerReadableStream<unknown, unknown>) => call.pause(),
      SendSnapshot: () => undefined,
    } as grpc.UntypedServiceImplementation);
    const port = await new Promise<number>((res, rej) =>
      stall.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, n) => (e ? rej(e) : res(n))),
    );
    addrs.b = `127.0.0.1:${port}`;
    const big = new Uint8Array(256 << 10);
    const append = (i: number): Message =>
      message({
        type: 'append',
        from: 'a/1' as ReplicaId,
        to: 'b/1' as ReplicaId,
        term: 1,
        index: i,
        entries: [{ type: 'normal', term: 1, index: i + 1, data: big }],
      });
    for (let i = 0; i < 40; i++) {
      ta.send('b', 1, append(i));
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 200));
    // The stalled peer goes away while the sender waits for 'drain'; a real one takes its port.
    stall.forceShutdown();
    const tb = new RaftTransport({ self: 'b', addressOf: (id) => addrs[id], onReceive: (from, group, m) => got.push({ from, group, m }) });
    const sb = await serve(tb, port);
    cleanup.push(() => {
      ta.close();
      tb.close();
      sb.server.forceShutdown();
    });
    await until(() => {
      ta.send('b', 1, hb('a/1', 'b/1', 7));
      return got.some((r) => r.m.term === 7);
    });
    expect(ta.stats.connects).toBeGreaterThan(1);
  });

  it('ignores batches addressed to another node and malformed messages', async () => {
    const got: Received[] = [];
    const tb = new RaftTransport({ self: 'b', addressOf: () => undefined, onReceive: (from, group, m) => got.push({ from, group, m }) });
    const sb = await serve(tb);
    const client = new keyvaV1.Raft(`127.0.0.1:${sb.port}`, grpc.credentials.createInsecure());
    cleanup.push(() => {
      client.close();
      tb.close();
      sb.server.forceShutdown();
    });
    await new Promise<void>((resolve) => {
      const s = client.send(() => resolve());
      s.write({ fromNode: 'x', toNode: 'c', messages: [{ group: 1, message: Buffer.from([1, 2, 3]) }] });
      s.write({ fromNode: 'x', toNode: 'b', messages: [{ group: 1, message: Buffer.from([1, 2, 3]) }] });
      s.end();
    });
    expect(got).toHaveLength(0);
    expect(tb.stats.malformed).toBe(1);
  });
});
