import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Condition } from '../engine/types.ts';
import { type DataMutation, decodeCommand, encodeCommand, REQUEST_ID_BYTES, type ReplicatedCommand } from './replicated-command.ts';

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const condition: fc.Arbitrary<Condition | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant({ kind: 'absent' } as const),
  fc.constant({ kind: 'exists' } as const),
  u64.map((version) => ({ kind: 'versionEquals', version }) as const),
  bytes.map((value) => ({ kind: 'valueEquals', value }) as const),
);
const mutation: fc.Arbitrary<DataMutation> = fc.oneof(
  fc.record({
    type: fc.constant('put' as const),
    hash: u64,
    key: bytes,
    value: bytes,
    expiresAtMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    condition,
  }),
  fc.record({ type: fc.constant('delete' as const), hash: u64, key: bytes, condition }),
);
const requestId = fc.uint8Array({ minLength: REQUEST_ID_BYTES, maxLength: REQUEST_ID_BYTES }).map((a) => Buffer.from(a));
const command: fc.Arbitrary<ReplicatedCommand> = fc
  .record({
    id: u64,
    mutations: fc.array(mutation, { maxLength: 8 }),
    commitTs: fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
    nowMs: fc.oneof(fc.integer({ min: 0, max: 2 ** 48 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
    requestId: fc.option(requestId, { nil: undefined }),
  })
  .map((c) => (c.requestId === undefined ? { id: c.id, mutations: c.mutations, commitTs: c.commitTs, nowMs: c.nowMs } : c));

describe('replicated command codec', () => {
  it('round-trips every valid command, bigints and empty buffers included (property)', () => {
    fc.assert(
      fc.property(command, (c) => {
        const decoded = decodeCommand(new Uint8Array(encodeCommand(c)));
        expect(decoded.id).toBe(c.id);
        expect(decoded.commitTs).toBe(c.commitTs);
        expect(Object.is(decoded.nowMs, c.nowMs) || decoded.nowMs === c.nowMs).toBe(true);
        expect(decoded.mutations).toEqual(c.mutations);
        expect(decoded.requestId).toEqual(c.requestId);
        // Encoding is a function of the value: re-encoding gives the same bytes.
        expect(encodeCommand(decoded).equals(encodeCommand(c))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('writes version 1 without a request id (readable by nodes that predate ids) and version 2 with one', () => {
    const base: ReplicatedCommand = {
      id: 3n,
      commitTs: 42n,
      nowMs: 1000,
      mutations: [{ type: 'put', hash: 5n, key: Buffer.from('k'), value: Buffer.from('v'), expiresAtMs: 0 }],
    };
    const v1 = encodeCommand(base);
    expect(v1[0]).toBe(1);
    // The version 1 layout, byte for byte, as logs written before request ids hold it.
    const legacy = Buffer.concat([
      Buffer.from([1]),
      Buffer.from('0000000000000003', 'hex'),
      Buffer.from('000000000000002a', 'hex'),
      Buffer.from('408f400000000000', 'hex'), // 1000 as f64
      Buffer.from('00000001', 'hex'),
      Buffer.from([1]),
      Buffer.from('0000000000000005', 'hex'),
      Buffer.from('000000016b', 'hex'),
      Buffer.from('0000000176', 'hex'),
      Buffer.alloc(8), // expiresAtMs 0
      Buffer.from([0]), // no condition
    ]);
    expect(v1.equals(legacy)).toBe(true);
    expect(decodeCommand(legacy)).toEqual(base);
    expect(decodeCommand(legacy).requestId).toBeUndefined();

    const rid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const v2 = encodeCommand({ ...base, requestId: rid });
    expect(v2[0]).toBe(2);
    expect(v2.length).toBe(v1.length + REQUEST_ID_BYTES);
    expect(v2.subarray(25, 41).equals(rid)).toBe(true);
    expect(decodeCommand(v2)).toEqual({ ...base, requestId: rid });
    // A v2 command cut inside its request id is refused.
    expect(() => decodeCommand(v2.subarray(0, 30))).toThrow(/truncated/);
    // Request ids of another length are refused on encode.
    expect(() => encodeCommand({ ...base, requestId: Buffer.alloc(8) })).toThrow(/requestId/);
  });

  it('decodes from a view into a larger buffer (as entries arrive from the log and the network)', () => {
    const c: ReplicatedCommand = {
      id: 7n,
      commitTs: 99n,
      nowMs: 5,
      mutations: [{ type: 'put', hash: 1n, key: Buffer.from('k'), value: Buffer.from('v'), expiresAtMs: 0 }],
    };
    const enc = encodeCommand(c);
    const big = Buffer.concat([Buffer.from('xx'), enc, Buffer.from('yy')]);
    expect(decodeCommand(big.subarray(2, 2 + enc.length)).mutations[0]).toMatchObject({ key: Buffer.from('k'), value: Buffer.from('v') });
  });

  it('refuses what the engine would refuse on apply, on both sides', () => {
    const ok: ReplicatedCommand = { id: 1n, commitTs: 1n, nowMs: 0, mutations: [] };
    expect(() => encodeCommand({ ...ok, commitTs: 0n })).toThrow(/commitTs/);
    expect(() => encodeCommand({ ...ok, nowMs: Number.NaN })).toThrow(/nowMs/);
    expect(() => encodeCommand({ ...ok, mutations: [{ type: 'rawPut', key: Buffer.from('rx'), value: Buffer.alloc(0) } as unknown as DataMutation] })).toThrow(
      /cannot be replicated/,
    );
    expect(() => encodeCommand({ ...ok, mutations: [{ type: 'put', hash: 1n, key: Buffer.from('k'), value: Buffer.alloc(0), expiresAtMs: 1.5 }] })).toThrow(
      /expiresAtMs/,
    );
    expect(() => encodeCommand({ ...ok, mutations: [{ type: 'delete', hash: 1n << 64n, key: Buffer.from('k') }] })).toThrow(/hash/);

    const good = encodeCommand({ ...ok, mutations: [{ type: 'delete', hash: 3n, key: Buffer.from('k'), condition: { kind: 'exists' } }] });
    expect(() => decodeCommand(good.subarray(0, good.length - 1))).toThrow(/truncated/);
    expect(() => decodeCommand(Buffer.concat([good, Buffer.from([0])]))).toThrow(/trailing/);
    const badVersion = Buffer.from(good);
    badVersion[0] = 9;
    expect(() => decodeCommand(badVersion)).toThrow(/format version/);
    const badCondition = Buffer.from(good);
    badCondition[badCondition.length - 1] = 7;
    expect(() => decodeCommand(badCondition)).toThrow(/condition code/);
    const zeroTs = Buffer.from(good);
    zeroTs.fill(0, 9, 17);
    expect(() => decodeCommand(zeroTs)).toThrow(/commitTs/);
  });
});
