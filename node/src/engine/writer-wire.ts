/**
 * The packed forms of the two busiest messages between `RocksDbEngine` and its writer thread
 * (ADR 0004 amendment "Packed hand-offs"): the write requests of one run of the main thread, and
 * the answers of one group commit. Each travels as ONE ArrayBuffer, transferred. Posting an
 * object graph (a request object per write, each with its own transferred buffer) cost about four
 * times as much per hand-off, on both threads (structured clone), and the hand-off was the
 * largest single item of a replicated put's main-thread profile.
 *
 * - Writes: `count u32`, then per request `id u32 | len u32 | batch-wire bytes`.
 * - Answers: `groupBatches u32 | wrote u8 | count u32`, then per answer `id u32 | kind u8` and:
 *   kind 0 (no result) nothing; kind 1 (written) `n u32` and n bytes of `existed` (0/1); kind 2
 *   (condition failed) `failedIndex u32 | currentVersion u64`. Answers of any other shape (errors,
 *   GC results) travel as objects: `packAnswers` returns undefined for them.
 *
 * Request ids are below 2^32: the engine numbers its requests from 1 and wraps them (`nextId`).
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { WriterAnswer } from './rocksdb-writer-protocol.ts';
import type { WriteResult } from './types.ts';
import { WireReader } from './wire-reader.ts';

/** A write request as it crosses: its id and its `encodeBatch` bytes. */
export interface PackedWrite {
  readonly id: number;
  readonly batch: Uint8Array;
}

/** Largest request id; the engine's counter wraps after it. */
export const WRITER_ID_MAX = 0xffff_ffff;

export function packWrites(writes: readonly PackedWrite[]): ArrayBuffer {
  let size = 4;
  for (const w of writes) size += 8 + w.batch.byteLength;
  const ab = new ArrayBuffer(size);
  const buf = Buffer.from(ab);
  let o = buf.writeUInt32BE(writes.length, 0);
  for (const w of writes) {
    o = buf.writeUInt32BE(w.id, o);
    o = buf.writeUInt32BE(w.batch.byteLength, o);
    buf.set(w.batch, o);
    o += w.batch.byteLength;
  }
  return ab;
}

/** The requests of `packWrites` output; each batch is a view into `ab` (no copy). */
export function unpackWrites(ab: ArrayBuffer): PackedWrite[] {
  const r = new WireReader(ab, 'packed writes');
  const count = r.u32();
  const out: PackedWrite[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u32();
    out.push({ id, batch: r.bytes() });
  }
  r.end();
  return out;
}

export interface AnswersEvent {
  readonly answers: readonly WriterAnswer[];
  readonly groupBatches: number;
  readonly wrote: boolean;
}

const Kind = { none: 0, written: 1, conditionFailed: 2 } as const;

/** Packs a group commit's answers, or undefined if one of them has another shape (sent as an object then). */
export function packAnswers(ev: AnswersEvent): ArrayBuffer | undefined {
  let size = 9;
  for (const a of ev.answers) {
    if (!a.ok || typeof a.result === 'number') return undefined;
    size += 5;
    const r = a.result;
    if (r === undefined) continue;
    size += r.ok ? 4 + r.existed.length : 12;
  }
  const ab = new ArrayBuffer(size);
  const buf = Buffer.from(ab);
  let o = buf.writeUInt32BE(ev.groupBatches, 0);
  o = buf.writeUInt8(ev.wrote ? 1 : 0, o);
  o = buf.writeUInt32BE(ev.answers.length, o);
  for (const a of ev.answers) {
    o = buf.writeUInt32BE(a.id, o);
    const r = (a as { result: WriteResult | undefined }).result;
    if (r === undefined) {
      o = buf.writeUInt8(Kind.none, o);
    } else if (r.ok) {
      o = buf.writeUInt8(Kind.written, o);
      o = buf.writeUInt32BE(r.existed.length, o);
      for (const e of r.existed) o = buf.writeUInt8(e ? 1 : 0, o);
    } else {
      o = buf.writeUInt8(Kind.conditionFailed, o);
      o = buf.writeUInt32BE(r.failedIndex, o);
      o = buf.writeBigUInt64BE(r.currentVersion, o);
    }
  }
  return ab;
}

export function unpackAnswers(ab: ArrayBuffer): AnswersEvent {
  const r = new WireReader(ab, 'packed answers');
  const groupBatches = r.u32();
  const wrote = r.u8() === 1;
  const count = r.u32();
  const answers: WriterAnswer[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u32();
    const kind = r.u8();
    switch (kind) {
      case Kind.none:
        answers.push({ id, ok: true, result: undefined });
        break;
      case Kind.written: {
        const n = r.u32();
        const existed: boolean[] = [];
        for (let j = 0; j < n; j++) existed.push(r.u8() === 1);
        answers.push({ id, ok: true, result: { ok: true, existed } });
        break;
      }
      case Kind.conditionFailed: {
        const failedIndex = r.u32();
        answers.push({ id, ok: true, result: { ok: false, failedIndex, currentVersion: r.u64() } });
        break;
      }
      default:
        throw new KeyVaError('INTERNAL', `packed answers: unknown answer kind ${kind}`);
    }
  }
  r.end();
  return { answers, groupBatches, wrote };
}
