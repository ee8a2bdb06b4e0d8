/**
 * Binary encodings of the Raft core's durable values (entries, hard state, snapshot metadata)
 * for the RocksDB raft key space. Small, versioned by a leading byte, no JSON on the hot path
 * (conf changes, rare, carry JSON).
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { Message, MessageType } from '../raft/messages.ts';
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

class Writer {
  private parts: Buffer[] = [];
  private size = 0;
  u8(v: number): void {
    const b = Buffer.allocUnsafe(1);
    b.writeUInt8(v, 0);
    this.push(b);
  }
  f64(v: number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleBE(v, 0);
    this.push(b);
  }
  bytes(v: Uint8Array): void {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(v.byteLength, 0);
    this.push(len);
    this.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }
  str(v: string): void {
    this.bytes(Buffer.from(v, 'utf8'));
  }
  private push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
  }
  done(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

class Reader {
  private off = 0;
  private readonly b: Buffer;
  constructor(b: Buffer) {
    this.b = b;
  }
  private need(n: number): void {
    if (this.off + n > this.b.length) throw corrupt('message');
  }
  u8(): number {
    this.need(1);
    return this.b.readUInt8(this.off++);
  }
  f64(): number {
    this.need(8);
    const v = this.b.readDoubleBE(this.off);
    this.off += 8;
    return v;
  }
  bytes(): Buffer {
    this.need(4);
    const n = this.b.readUInt32BE(this.off);
    this.off += 4;
    this.need(n);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  str(): string {
    return this.bytes().toString('utf8');
  }
  end(): void {
    if (this.off !== this.b.length) throw corrupt('message');
  }
}

export function encodeMessage(m: Message): Buffer {
  const w = new Writer();
  const code = TYPE_CODE.get(m.type);
  if (code === undefined) throw new KeyVaError('INTERNAL', `unknown raft message type ${m.type}`);
  w.u8(code);
  w.str(m.from);
  w.str(m.to);
  w.f64(m.term);
  w.f64(m.logTerm);
  w.f64(m.index);
  w.f64(m.commit);
  w.u8(m.reject ? 1 : 0);
  w.f64(m.rejectHint);
  w.f64(m.entries.length);
  for (const e of m.entries) w.bytes(encodeEntry(e));
  w.u8(m.snapshot ? 1 : 0);
  if (m.snapshot) {
    w.bytes(encodeSnapshotMetadata(m.snapshot.metadata));
    w.bytes(m.snapshot.data);
  }
  w.u8(m.context ? 1 : 0);
  if (m.context) w.bytes(m.context);
  return w.done();
}

export function decodeMessage(b: Buffer): Message {
  const r = new Reader(b);
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
  r.end();
  return { type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, snapshot, context };
}
