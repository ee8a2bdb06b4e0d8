/**
 * The snapshot socket's wire format (ADR 0014): frames and answers survive any split of the byte
 * stream into reads; malformed input is named; a peer whose socket cannot be reached is a
 * `SocketConnectError` (the sender then uses gRPC). The receiver over a real socket is tested in
 * `snapshot-receiver.test.ts`, whole transfers in `snapshot-stream.test.ts`.
 */
import * as net from 'node:net';
import type { SnapshotFrame } from '@keyva/proto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeSocketAnswer, encodeSocketFrame, SocketAnswerReader, SocketFrameReader, SocketFramingError } from './snapshot-socket.ts';
import { connectSnapshotSocket, SocketConnectError } from './snapshot-socket-client.ts';

/** `bytes` cut at `cuts` (positions, any order). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  return out;
}

const frameArb: fc.Arbitrary<SnapshotFrame> = fc.oneof(
  fc.record({ fromNode: fc.string({ maxLength: 8 }), toNode: fc.string({ maxLength: 8 }), group: fc.nat(1000), message: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ sstKind: fc.constantFrom(1, 2), sstData: fc.uint8Array({ minLength: 1, maxLength: 3000 }) }),
  fc.record({ done: fc.constant(true), totalRows: fc.nat(), totalBytes: fc.nat() }),
  fc.constant({}), // encodes to no bytes at all
);

describe('snapshot socket wire format', () => {
  it('frames come out whole and in order however the stream is split into reads', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f, i) => encodeSocketFrame(f, i === 0)));
        const r = new SocketFrameReader();
        const got = [];
        for (const piece of split(bytes, cuts)) {
          r.push(piece);
          for (let f = r.next(); f !== undefined; f = r.next()) got.push(f);
        }
        expect(r.pending).toBe(0);
        expect(got).toHaveLength(frames.length);
        got.forEach((g, i) => {
          const want = frames[i] as SnapshotFrame;
          if (want.sstData !== undefined) expect(Buffer.from(g.sstData).equals(Buffer.from(want.sstData as Uint8Array))).toBe(true);
          if (want.fromNode !== undefined) expect([g.fromNode, g.toNode, g.group]).toEqual([want.fromNode, want.toNode, want.group]);
          if (want.done === true) expect([g.done, Number(g.totalRows), Number(g.totalBytes)]).toEqual([true, want.totalRows, want.totalBytes]);
        });
      }),
    );
  });

  it('answers come out whole however they are split', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 16 })), fc.string(), fc.array(fc.nat(), { maxLength: 6 }), (code, details, cuts) => {
        const bytes = code === 0 ? encodeSocketAnswer({ code: 0, ack: { rows: 3, bytes: 9 } }) : encodeSocketAnswer({ code, details });
        const r = new SocketAnswerReader();
        let a: ReturnType<SocketAnswerReader['answer']>;
        for (const piece of split(bytes, cuts)) {
          r.push(piece);
          a ??= r.answer();
        }
        expect(a).toEqual(code === 0 ? { code: 0, ack: { rows: '3', bytes: '9' } } : { code, details });
      }),
    );
  });

  it('names what is wrong with malformed input', () => {
    const reader = (b: Buffer) => {
      const r = new SocketFrameReader();
      r.push(b);
      return () => r.next();
    };
    expect(reader(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'))).toThrow(new SocketFramingError('not a KeyVa snapshot stream (wrong preamble)'));
    const head = encodeSocketFrame({ done: true }, true).subarray(0, -2);
    const big = Buffer.from(head);
    big.writeUInt32BE(65 << 20, big.length - 4);
    expect(reader(big)).toThrow(/frame of 68157440 bytes \(at most 67108864\)/);
    // Incomplete input is not an error until the stream ends.
    const partial = new SocketFrameReader();
    partial.push(encodeSocketFrame({ sstKind: 1, sstData: Buffer.alloc(100) }, true).subarray(0, 50));
    expect(partial.next()).toBeUndefined();
    expect(partial.pending).toBeGreaterThan(0);
  });

  it('a peer whose socket cannot be reached is a SocketConnectError', async () => {
    const server = net.createServer();
    const port = await new Promise<number>((res) => server.listen(0, '127.0.0.1', () => res((server.address() as net.AddressInfo).port)));
    await new Promise((res) => server.close(res)); // nothing listens there now
    const e = await connectSnapshotSocket('127.0.0.1', port, 2_000).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SocketConnectError);
    expect((e as Error).message).toMatch(new RegExp(`snapshot socket 127.0.0.1:${port}: connect ECONNREFUSED`));
  });
});
