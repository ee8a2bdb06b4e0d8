/**
 * Binary encodings of the Raft core's durable values (entries, hard state, snapshot metadata)
 * for the RocksDB raft key space, and of the transport's payload: one message
 * (`encodeMessage`), and a whole batch to one peer (`encodePacked`: every message of the batch
 * in one buffer, the heartbeats of all groups coalesced into compact records). Small, versioned
 * by a leading byte, no JSON on the hot path (conf changes, rare, carry JSON).
 */
import { KeyVaError } from '@keyva/proto/errors';
import { type Message, MessageType } from '../raft/messages.ts';
import type { ConfChange, ConfState, Entry, HardState, ReplicaId, SnapshotMetadata } from '../raft/types.ts';

const ENTRY_NORMAL = 1;
const ENTRY_CONF = 2;

function corrupt(what: string): KeyVaError {
  return new KeyVaError('STORAGE_ERROR', `corrupt raft ${what} record`);
}

export function encodeEntry(e: Entry): Buffer {
  const body =
    e.type === 'normal' ? Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) : Buffer.from(JSON.stringify(confChangeJson(e.change)), 'utf8');
  const out = Buffer.allocUnsafe(17 + body.length);
  out.writeUInt8(e.type === 'normal' ? ENTRY_NORMAL : ENTRY_CONF, 0);
  out.writeDoubleBE(e.term, 1);
  out.writeDoubleBE(e.index, 9);
  body.copy(out, 17);
  return out;
}

export function decodeEntry(b: Buffer): Entry {
  if (b.length < 17) throw corrupt('entry');
  const type = b.readUInt8(0);
  const term = b.readDoubleBE(1);
  const index = b.readDoubleBE(9);
  const body = b.subarray(17);
  if (type === ENTRY_NORMAL) return { type: 'normal', term, index, data: new Uint8Array(body) };
  if (type === ENTRY_CONF) return { type: 'confChange', term, index, change: confChangeFromJson(JSON.parse(body.toString('utf8'))) };
  throw corrupt('entry');
}

interface ConfChangeJson {
  t: ConfChange['type'];
  r: string;
  c?: string;
}

function confChangeJson(c: ConfChange): ConfChangeJson {
  return c.context ? { t: c.type, r: c.replica, c: Buffer.from(c.context).toString('base64') } : { t: c.type, r: c.replica };
}

function confChangeFromJson(j: ConfChangeJson): ConfChange {
  return j.c === undefined
    ? { type: j.t, replica: j.r as ReplicaId }
    : { type: j.t, replica: j.r as ReplicaId, context: new Uint8Array(Buffer.from(j.c, 'base64')) };
}

export function encodeHardState(h: HardState): Buffer {
  const vote = Buffer.from(h.vote ?? '', 'utf8');
  const out = Buffer.allocUnsafe(17 + vote.length);
  out.writeUInt8(h.vote === undefined ? 0 : 1, 0);
  out.writeDoubleBE(h.term, 1);
  out.writeDoubleBE(h.commit, 9);
  vote.copy(out, 17);
  return out;
}

export function decodeHardState(b: Buffer): HardState {
  if (b.length < 17) throw corrupt('hard state');
  const hasVote = b.readUInt8(0) === 1;
  return { term: b.readDoubleBE(1), commit: b.readDoubleBE(9), vote: hasVote ? (b.subarray(17).toString('utf8') as ReplicaId) : undefined };
}

export function encodeSnapshotMetadata(m: SnapshotMetadata): Buffer {
  return Buffer.from(JSON.stringify({ i: m.index, t: m.term, v: m.confState.voters, l: m.confState.learners }), 'utf8');
}

export function decodeSnapshotMetadata(b: Buffer): SnapshotMetadata {
  const j = JSON.parse(b.toString('utf8')) as { i: number; t: number; v: string[]; l: string[] };
  if (typeof j.i !== 'number' || typeof j.t !== 'number' || !Array.isArray(j.v) || !Array.isArray(j.l)) throw corrupt('snapshot metadata');
  const confState: ConfState = { voters: j.v as ReplicaId[], learners: j.l as ReplicaId[] };
  return { index: j.i, term: j.t, confState };
}

// --- messages (the transport's payload) ---

const MESSAGE_TYPES: readonly MessageType[] = [
  'append',
  'appendResponse',
  'vote',
  'voteResponse',
  'preVote',
  'preVoteResponse',
  'snapshot',
  'heartbeat',
  'heartbeatResponse',
  'timeoutNow',
  'readIndex',
  'readIndexResponse',
];
const TYPE_CODE = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]));

class Reader {
  private off: number;
  private readonly b: Buffer;
  private readonly endAt: number;
  constructor(b: Buffer, off = 0, end = b.length) {
    this.b = b;
    this.off = off;
    this.endAt = end;
  }
  get offset(): number {
    return this.off;
  }
  private need(n: number): void {
    if (this.off + n > this.endAt) throw corrupt('message');
  }
  u8(): number {
    this.need(1);
    return this.b.readUInt8(this.off++);
  }
  u16(): number {
    this.need(2);
    const v = this.b.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.b.readDoubleBE(this.off);
    this.off += 8;
    return v;
  }
  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
  skip(n: number): void {
    this.need(n);
    this.off += n;
  }
  end(): void {
    if (this.off !== this.endAt) throw corrupt('message');
  }
}

const ENTRY_HEADER_BYTES = 17;

function entryBodyBytes(e: Entry): number {
  return e.type === 'normal' ? e.data.byteLength : Buffer.byteLength(JSON.stringify(confChangeJson(e.change)), 'utf8');
}

/** Exact size of `encodeMessage(m)`. */
export function encodedMessageBytes(m: Message): number {
  let n = 1 + 4 + Buffer.byteLength(m.from, 'utf8') + 4 + Buffer.byteLength(m.to, 'utf8') + 8 * 4 + 1 + 8 + 8;
  for (const e of m.entries) n += 4 + ENTRY_HEADER_BYTES + entryBodyBytes(e);
  n += 1;
  if (m.snapshot) n += 4 + encodeSnapshotMetadata(m.snapshot.metadata).length + 4 + m.snapshot.data.byteLength;
  n += 1;
  if (m.context) n += 4 + m.context.byteLength;
  return n;
}

/** Writes `encodeMessage(m)` into `out` at `o` (room checked by the caller); returns the end offset. */
function writeMessage(m: Message, out: Buffer, o: number): number {
  const code = TYPE_CODE.get(m.type);
  if (code === undefined) throw new KeyVaError('INTERNAL', `unknown raft message type ${m.type}`);
  const bytes = (v: Uint8Array): void => {
    o = out.writeUInt32BE(v.byteLength, o);
    out.set(v, o);
    o += v.byteLength;
  };
  const str = (v: string): void => {
    const n = out.write(v, o + 4, 'utf8');
    out.writeUInt32BE(n, o);
    o += 4 + n;
  };
  o = out.writeUInt8(code, o);
  str(m.from);
  str(m.to);
  o = out.writeDoubleBE(m.term, o);
  o = out.writeDoubleBE(m.logTerm, o);
  o = out.writeDoubleBE(m.index, o);
  o = out.writeDoubleBE(m.commit, o);
  o = out.writeUInt8(m.reject ? 1 : 0, o);
  o = out.writeDoubleBE(m.rejectHint, o);
  o = out.writeDoubleBE(m.entries.length, o);
  for (const e of m.entries) {
    const start = o;
    o += 4;
    o = out.writeUInt8(e.type === 'normal' ? ENTRY_NORMAL : ENTRY_CONF, o);
    o = out.writeDoubleBE(e.term, o);
    o = out.writeDoubleBE(e.index, o);
    if (e.type === 'normal') {
      out.set(e.data, o);
      o += e.data.byteLength;
    } else {
      o += out.write(JSON.stringify(confChangeJson(e.change)), o, 'utf8');
    }
    out.writeUInt32BE(o - start - 4, start);
  }
  o = out.writeUInt8(m.snapshot ? 1 : 0, o);
  if (m.snapshot) {
    bytes(encodeSnapshotMetadata(m.snapshot.metadata));
    bytes(m.snapshot.data);
  }
  o = out.writeUInt8(m.context ? 1 : 0, o);
  if (m.context) bytes(m.context);
  return o;
}

/** One Raft message in one exactly-sized buffer (a single pass, no intermediate buffers). */
export function encodeMessage(m: Message): Buffer {
  const out = Buffer.allocUnsafe(encodedMessageBytes(m));
  const end = writeMessage(m, out, 0);
  if (end !== out.length) throw new KeyVaError('INTERNAL', `raft message encoding size mismatch: ${end} != ${out.length}`);
  return out;
}

export function decodeMessage(b: Buffer): Message {
  const r = new Reader(b);
  const m = readMessage(r);
  r.end();
  return m;
}

function readMessage(r: Reader): Message {
  const type = MESSAGE_TYPES[r.u8()];
  if (type === undefined) throw corrupt('message');
  const from = r.str() as ReplicaId;
  const to = r.str() as ReplicaId;
  const term = r.f64();
  const logTerm = r.f64();
  const index = r.f64();
  const commit = r.f64();
  const reject = r.u8() === 1;
  const rejectHint = r.f64();
  const count = r.f64();
  if (!Number.isSafeInteger(count) || count < 0) throw corrupt('message');
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(decodeEntry(r.bytes()));
  const snapshot = r.u8() === 1 ? { metadata: decodeSnapshotMetadata(r.bytes()), data: new Uint8Array(r.bytes()) } : undefined;
  const context = r.u8() === 1 ? new Uint8Array(r.bytes()) : undefined;
  return { type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, snapshot, context };
}

// --- packed batches (the transport's wire form: one buffer per batch to a peer) ---

/** A Raft message and its group, as the transport carries it. */
export interface GroupMessage {
  readonly group: number;
  readonly message: Message;
}

const PACKED_VERSION = 1;
const HB_RESPONSE = 1;
const HB_CONTEXT = 2;
const GROUP_MAX = 0xffff_ffff;
const REPLICA_TABLE_MAX = 0xffff;

/**
 * Whether `m` travels as a coalesced heartbeat record: a heartbeat or heartbeat response whose
 * other fields are the defaults (what the core sends), so the record loses nothing.
 */
export function isCoalescedHeartbeat(m: Message): boolean {
  return (
    (m.type === MessageType.Heartbeat || m.type === MessageType.HeartbeatResponse) &&
    m.entries.length === 0 &&
    m.snapshot === undefined &&
    !m.reject &&
    m.logTerm === 0 &&
    m.rejectHint === 0
  );
}

/**
 * One batch of messages to one peer in one buffer. Heartbeats and their responses (of every
 * group) are coalesced into fixed-size records after the other messages, which keep their order:
 *
 *   version u8 | replica ids: count u16, each len u16 + utf8
 *   | messages: count u32, each group u32 + len u32 + `encodeMessage`
 *   | heartbeats: count u32, each group u32, flags u8 (1 response, 2 context), from u16, to u16
 *     (indexes into the replica ids), term f64, commit f64, index f64 [, context len u32 + bytes]
 */
export function encodePacked(items: readonly GroupMessage[]): Buffer {
  const ids = new Map<string, number>();
  const idOf = (r: string): number => {
    let i = ids.get(r);
    if (i === undefined) {
      i = ids.size;
      if (i >= REPLICA_TABLE_MAX) throw new KeyVaError('INTERNAL', 'too many replica ids in one raft batch');
      ids.set(r, i);
    }
    return i;
  };
  let full = 0;
  let hbs = 0;
  let size = 1 + 2 + 4 + 4;
  const sizes: number[] = [];
  for (const { group, message: m } of items) {
    if (!Number.isInteger(group) || group < 0 || group > GROUP_MAX) throw new KeyVaError('INTERNAL', `raft group id out of range: ${group}`);
    if (isCoalescedHeartbeat(m)) {
      idOf(m.from);
      idOf(m.to);
      size += 4 + 1 + 2 + 2 + 24 + (m.context ? 4 + m.context.byteLength : 0);
      hbs++;
    } else {
      const n = encodedMessageBytes(m);
      sizes.push(n);
      size += 8 + n;
      full++;
    }
  }
  for (const r of ids.keys()) size += 2 + Buffer.byteLength(r, 'utf8');
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt8(PACKED_VERSION, 0);
  o = out.writeUInt16BE(ids.size, o);
  for (const r of ids.keys()) {
    const n = out.write(r, o + 2, 'utf8');
    out.writeUInt16BE(n, o);
    o += 2 + n;
  }
  o = out.writeUInt32BE(full, o);
  let k = 0;
  for (const { group, message: m } of items) {
    if (isCoalescedHeartbeat(m)) continue;
    o = out.writeUInt32BE(group, o);
    o = out.writeUInt32BE(sizes[k++] as number, o);
    o = writeMessage(m, out, o);
  }
  o = out.writeUInt32BE(hbs, o);
  for (const { group, message: m } of items) {
    if (!isCoalescedHeartbeat(m)) continue;
    o = out.writeUInt32BE(group, o);
    o = out.writeUInt8((m.type === MessageType.HeartbeatResponse ? HB_RESPONSE : 0) | (m.context ? HB_CONTEXT : 0), o);
    o = out.writeUInt16BE(ids.get(m.from) as number, o);
    o = out.writeUInt16BE(ids.get(m.to) as number, o);
    o = out.writeDoubleBE(m.term, o);
    o = out.writeDoubleBE(m.commit, o);
    o = out.writeDoubleBE(m.index, o);
    if (m.context) {
      o = out.writeUInt32BE(m.context.byteLength, o);
      out.set(m.context, o);
      o += m.context.byteLength;
    }
  }
  if (o !== size) throw new KeyVaError('INTERNAL', `raft batch encoding size mismatch: ${o} != ${size}`);
  return out;
}

/** The messages of a packed batch, in order, then its heartbeats; throws STORAGE_ERROR on any malformed byte. */
export function decodePacked(b: Buffer): { messages: GroupMessage[]; heartbeats: number } {
  const r = new Reader(b);
  if (r.u8() !== PACKED_VERSION) throw corrupt('message');
  const idCount = r.u16();
  const ids: ReplicaId[] = [];
  for (let i = 0; i < idCount; i++) {
    const n = r.u16();
    const at = r.offset;
    r.skip(n);
    ids.push(b.toString('utf8', at, at + n) as ReplicaId);
  }
  const replica = (i: number): ReplicaId => {
    const id = ids[i];
    if (id === undefined) throw corrupt('message');
    return id;
  };
  const messages: GroupMessage[] = [];
  const full = r.u32();
  for (let i = 0; i < full; i++) {
    const group = r.u32();
    const n = r.u32();
    const at = r.offset;
    r.skip(n);
    const sub = new Reader(b, at, at + n);
    const message = readMessage(sub);
    sub.end();
    messages.push({ group, message });
  }
  const hbs = r.u32();
  for (let i = 0; i < hbs; i++) {
    const group = r.u32();
    const flags = r.u8();
    if ((flags & ~(HB_RESPONSE | HB_CONTEXT)) !== 0) throw corrupt('message');
    const from = replica(r.u16());
    const to = replica(r.u16());
    const term = r.f64();
    const commit = r.f64();
    const index = r.f64();
    const context = (flags & HB_CONTEXT) !== 0 ? new Uint8Array(r.bytes()) : undefined;
    const type = (flags & HB_RESPONSE) !== 0 ? MessageType.HeartbeatResponse : MessageType.Heartbeat;
    messages.push({
      group,
      message: { type, from, to, term, logTerm: 0, index, entries: NO_ENTRIES, commit, reject: false, rejectHint: 0, snapshot: undefined, context },
    });
  }
  r.end();
  return { messages, heartbeats: hbs };
}

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);
