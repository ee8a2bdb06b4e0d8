import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from './batch-wire.ts';
import type { WriterAnswer } from './rocksdb-writer-protocol.ts';
import { packAnswers, packWrites, unpackAnswers, unpackWrites, WRITER_ID_MAX } from './writer-wire.ts';

const id = fc.integer({ min: 1, max: WRITER_ID_MAX });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const packable: fc.Arbitrary<WriterAnswer> = fc.oneof(
  id.map((i) => ({ id: i, ok: true as const, result: undefined })),
  fc.record({ id, ok: fc.constant(true as const), result: fc.record({ ok: fc.constant(true as const), existed: fc.array(fc.boolean(), { maxLength: 10 }) }) }),
  fc.record({
    id,
    ok: fc.constant(true as const),
    result: fc.record({ ok: fc.constant(false as const), failedIndex: fc.nat({ max: 1000 }), currentVersion: u64 }),
  }),
);

describe('packed writer hand-offs', () => {
  it('property: writes unpack to the same ids and batch bytes, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ id, batch: fc.uint8Array({ maxLength: 64 }) }), { maxLength: 12 }), (writes) => {
        const got = unpackWrites(packWrites(writes));
        expect(got.map((w) => ({ id: w.id, batch: [...w.batch] }))).toEqual(writes.map((w) => ({ id: w.id, batch: [...w.batch] })));
      }),
    );
  });

  it('a packed batch decodes in place, survives a transfer, and truncation is refused', async () => {
    const batch = new Uint8Array(
      encodeBatch({ commitTs: 7n, nowMs: 1, sync: true, mutations: [{ type: 'rawPut', key: Buffer.from('mk'), value: Buffer.from('v') }] }),
    );
    const packed = packWrites([
      { id: 1, batch },
      { id: 2, batch },
    ]);
    const { port1, port2 } = new MessageChannel();
    const arrived = new Promise<ArrayBuffer>((resolve) => port2.once('message', resolve));
    port1.postMessage(packed, [packed]);
    const ab = await arrived;
    port1.close();
    expect(packed.byteLength).toBe(0); // transferred, not copied
    const [a, b] = unpackWrites(ab);
    expect(decodeBatch(b?.batch as Uint8Array)).toMatchObject({ commitTs: 7n, sync: true, mutations: [{ type: 'rawPut' }] });
    expect(a?.batch.buffer).toBe(ab); // a view, no copy
    expect(() => unpackWrites(ab.slice(0, ab.byteLength - 1))).toThrow(/truncated packed writes/);
    expect(() => unpackWrites(new Uint8Array([...new Uint8Array(ab), 0]).buffer)).toThrow(/trailing bytes in packed writes/);
  });

  it('property: answers of write results unpack to the same answers', () => {
    fc.assert(
      fc.property(fc.array(packable, { maxLength: 12 }), fc.nat({ max: 5000 }), fc.boolean(), (answers, groupBatches, wrote) => {
        const packed = packAnswers({ answers, groupBatches, wrote });
        expect(packed).toBeInstanceOf(ArrayBuffer);
        expect(unpackAnswers(packed as ArrayBuffer)).toEqual({ answers, groupBatches, wrote });
      }),
    );
  });

  it('errors and other results are not packed (they travel as objects)', () => {
    const ok: WriterAnswer = { id: 1, ok: true, result: { ok: true, existed: [true] } };
    expect(
      packAnswers({ answers: [ok, { id: 2, ok: false, error: { code: 'STORAGE_ERROR', message: 'disk' } }], groupBatches: 2, wrote: true }),
    ).toBeUndefined();
    expect(packAnswers({ answers: [ok, { id: 3, ok: true, result: 12 }], groupBatches: 1, wrote: true })).toBeUndefined();
    const bad = packAnswers({ answers: [ok], groupBatches: 1, wrote: true }) as ArrayBuffer;
    new Uint8Array(bad)[13] = 9; // the answer's kind
    expect(() => unpackAnswers(bad)).toThrow(/unknown answer kind 9/);
  });
});
