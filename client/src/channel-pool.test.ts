import * as grpc from '@grpc/grpc-js';
import { describe, expect, test } from 'vitest';
import { ChannelPool, type ChannelPoolOptions, channelOptions, MESSAGE_BYTES_MAX_DEFAULT, waitReady } from './channel-pool.ts';
import { writeOutcome } from './errors.ts';
import { startFakeNode } from './testing/fake-node.ts';
import { rejection } from './testing/rejection.ts';

const opts = (o: Partial<ChannelPoolOptions> = {}): ChannelPoolOptions => ({
  size: 3,
  credentials: grpc.credentials.createInsecure(),
  messageBytesMax: MESSAGE_BYTES_MAX_DEFAULT,
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 10_000,
  nodesMax: 4,
  ...o,
});

describe('ChannelPool', () => {
  test('hands out `size` channels per node round-robin, KV and Admin sharing each', () => {
    const pool = new ChannelPool(opts());
    const picks = Array.from({ length: 7 }, () => pool.pick('127.0.0.1:7379'));
    const channels = picks.map((p) => p.kv.getChannel());
    expect(new Set(channels).size).toBe(3);
    expect(channels[3]).toBe(channels[0]);
    expect(channels[6]).toBe(channels[0]);
    for (const p of picks) expect(p.admin.getChannel()).toBe(p.kv.getChannel());
    expect(pool.pick('127.0.0.1:7380').kv.getChannel()).not.toBe(channels[0]);
    expect(pool.addresses()).toEqual(['127.0.0.1:7379', '127.0.0.1:7380']);
    pool.close();
  });

  test('channel options: 8 MiB messages, keepalive, own connections', () => {
    const o = channelOptions(opts());
    expect(o['grpc.max_send_message_length']).toBe(8 * 1024 * 1024);
    expect(o['grpc.max_receive_message_length']).toBe(8 * 1024 * 1024);
    expect(o['grpc.keepalive_time_ms']).toBe(30_000);
    expect(o['grpc.use_local_subchannel_pool']).toBe(1);
  });

  test('holds at most nodesMax nodes, and refuses work once closed', async () => {
    const pool = new ChannelPool(opts({ nodesMax: 1 }));
    pool.pick('a:1');
    expect((await rejection(Promise.resolve().then(() => pool.pick('b:1')))).code).toBe('UNAVAILABLE');
    pool.close();
    expect((await rejection(Promise.resolve().then(() => pool.pick('a:1')))).code).toBe('CANCELLED');
    expect(() => new ChannelPool(opts({ size: 0 }))).toThrow();
  });

  test('ready() connects to a live node', async () => {
    const node = await startFakeNode();
    const pool = new ChannelPool(opts());
    const c = await pool.ready(node.address, Date.now() + 5000);
    expect(c.kv.getChannel().getConnectivityState(false)).toBe(grpc.connectivityState.READY);
    pool.close();
    await node.close();
  });

  test('a node that refuses connections fails fast with UNAVAILABLE, known not to have applied', async () => {
    const pool = new ChannelPool(opts());
    const t0 = Date.now();
    const e = await rejection(pool.ready('127.0.0.1:1', Date.now() + 10_000));
    expect(e.code).toBe('UNAVAILABLE');
    expect(writeOutcome(e)).toBe('not-applied');
    expect(Date.now() - t0).toBeLessThan(5000);
    pool.close();
  });

  test('waitReady honours abort and the deadline', async () => {
    const pool = new ChannelPool(opts());
    const ch = pool.pick('127.0.0.1:1').kv.getChannel();
    expect((await rejection(waitReady(ch, 'x', Date.now() + 10_000, AbortSignal.abort()))).code).toBe('CANCELLED');
    const late = await rejection(waitReady(pool.pick('127.0.0.1:2').kv.getChannel(), 'x', Date.now() - 1));
    expect(['DEADLINE_EXCEEDED', 'UNAVAILABLE']).toContain(late.code);
    pool.close();
  });
});
