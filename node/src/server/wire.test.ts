/**
 * Outgoing 64-bit fields go to protobufjs as `{ low, high }` bits (no decimal round trip): they
 * must serialise to exactly the value, over the whole unsigned range, through the real
 * grpc-js serialiser of the KV service, and still print as decimals for the REST gateway.
 */
import { keyvaV1, type StreamResponseOut } from '@keyva/proto';
import { describe, expect, it } from 'vitest';
import { getResponse, keyValue, u64Out } from './wire.ts';

const stream = keyvaV1.KV.service.Stream;
const roundTrip = (res: unknown): StreamResponseOut => stream.responseDeserialize(stream.responseSerialize(res as never)) as StreamResponseOut;

const VALUES = [0n, 1n, 0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn, 1n << 32n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, 116_000_000_000_000_000n + 12_345n];

describe('wire: outgoing uint64 fields', () => {
  it('serialise to the exact value across the unsigned 64-bit range', () => {
    for (const v of VALUES) {
      const out = roundTrip({ id: 7, get: getResponse({ found: true, value: Buffer.from('x'), version: v, expiresAtMs: 1_700_000_000_123, readTs: v }) });
      expect(out.id).toBe('7');
      expect(out.get?.version, String(v)).toBe(v.toString());
      expect(out.get?.readTs).toBe(v.toString());
      expect(out.get?.expiresAtMs).toBe('1700000000123');
    }
  });

  it('print as decimals (REST headers and JSON)', () => {
    for (const v of VALUES) {
      expect(String(u64Out(v))).toBe(v.toString());
      expect(JSON.stringify({ v: u64Out(v) })).toBe(`{"v":"${v}"}`);
    }
    const kv = keyValue({ key: Buffer.from('k'), value: Buffer.from('v'), version: 42n, expiresAtMs: 0 });
    expect(String(kv.version)).toBe('42');
  });

  it('request ids beyond 2^53 (kept as strings) still serialise exactly', () => {
    const big = ((1n << 64n) - 1n).toString();
    expect(roundTrip({ id: big, error: { code: 'INTERNAL', message: 'x', retryable: false, details: [] } }).id).toBe(big);
  });
});
