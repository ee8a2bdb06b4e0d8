/**
 * Binary encodings of the Raft core's durable values (entries, hard state, snapshot metadata)
 * for the RocksDB raft key space. Small, versioned by a leading byte, no JSON on the hot path
 * (conf changes, rare, carry JSON).
 */
import { KeyVaError } from '@keyva/proto/errors';
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
