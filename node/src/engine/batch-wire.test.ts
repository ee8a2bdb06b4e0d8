import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from './batch-wire.ts';
import type { Condition, Mutation, WriteBatch } from './types.ts';

const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const condition: fc.Arbitrary<Condition | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant({ kind: 'absent' as const }),
  fc.constant({ kind: 'exists' as const }),
  u64.map((version) => ({ kind: 'versionEquals' as const, version })),
  bytes.map((value) => ({ kind: 'valueEquals' as const, value })),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ type: fc.constant('put' as const), hash: u64, key: bytes, value: bytes, expiresAtMs: fc.nat(), condition }),
  fc.record({ type: fc.constant('delete' as const), hash: u64, key: bytes, condition }),
  fc.record({ type: fc.constant('rawPut' as const), key: bytes, value: bytes }),
  fc.record({ type: fc.constant('rawDelete' as const), key: bytes }),
);
const batch: fc.Arbitrary<WriteBatch> = fc.record({ commitTs: u64, nowMs: fc.nat(), sync: fc.boolean(), mutations: fc.array(mutation, { maxLength: 8 }) });

/** Normalizes for comparison: Buffers to hex, absent optional condition to undefined. */
function norm(b: WriteBatch): unknown {
  return JSON.parse(JSON.stringify(b, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v && v.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v)));
}

describe('batch wire encoding', () => {
  it('property: decode(encode(b)) == b', () => {
    fc.assert(
      fc.property(batch, (b) => {
        expect(norm(decodeBatch(encodeBatch(b)))).toEqual(norm(b));
      }),
    );
  });

  it('encodes into an exactly-sized, transferable buffer', () => {
    const ab = encodeBatch({ commitTs: 1n, nowMs: 2, sync: true, mutations: [{ type: 'rawDelete', key: Buffer.from('mk') }] });
    expect(ab.byteLength).toBe(21 + 1 + 4 + 2);
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(ab, [ab]);
    expect(ab.byteLength).toBe(0); // detached: moved, not copied
    port1.close();
    port2.close();
  });
});
