/**
 * Exactly-once writes (docs/adr/0011-exactly-once-writes.md): the record of an applied request id.
 *
 * A data command carrying a request id is applied as ONE engine write whose first mutation is
 * the record: a put of the reserved key `REQUEST_RECORD_PREFIX | requestId` at the hash of the
 * command's first mutation, conditioned on that key being absent. So, atomically and evaluated by
 * the engine in log order (the same on every replica, replay included):
 * - the request id was not recorded: the record and the command's mutations are written; the
 *   record's version is the command's commit timestamp (the result a resend is answered with);
 * - it was recorded: the condition fails on mutation 0 and NOTHING is written; the engine reports
 *   the record's version, i.e. the first application's commit timestamp.
 * A command whose own condition fails writes nothing, the record included: a resend of it is
 * evaluated again (the failed attempt had no effect, so applying the resend is linearizable).
 *
 * The record lives in the data key space inside the partition's hash range, so it is copied by
 * snapshots (an MVCC scan of the range) and stays with its hash through splits. No user request
 * can reach it: a user key is always stored at its own hash (`keyHash(key)`), and a record key is
 * stored at another one; user scans drop rows for which `isRequestRecord` holds. Records never
 * expire by TTL (engine GC decides TTL by the local wall clock, which replicas do not share): they
 * are removed only by replicated deletes (`request-record-gc.ts`), so whether a request id is
 * recorded is a fact of the log position, identical on every replica.
 *
 * To find old records without scanning partitions, each replica also writes, in the same batch, a
 * local index entry `r | group u32 | 'q' | version u64 | hash u64 | requestId` (raw, not
 * replicated, ordered by version); a snapshot install writes the entries of the records it brings.
 * The index is only a GC aid: a missing entry leaks a record (harmless), an entry whose record is
 * gone is dropped.
 */
import { keyHash } from '@keyva/client/keyspace';
import type { Mutation, RawSnapshotRange, Timestamp } from '../engine/types.ts';
import { type GroupId, RAFT_PREFIX } from './raft-keys.ts';
import { type DataMutation, REQUEST_ID_BYTES, type ReplicatedCommand } from './replicated-command.ts';

/** Kind byte of the request-record index in a group's raw key space (`raft-keys.ts`). */
const INDEX_KIND = 0x71; // 'q'
const INDEX_HEAD = 6;
const INDEX_KEY_BYTES = INDEX_HEAD + 8 + 8 + REQUEST_ID_BYTES;

/** Prefix of a record's user-key bytes (never at the hash a user key with these bytes lives at). */
export const REQUEST_RECORD_PREFIX: Buffer = Buffer.from('\u0000keyva.request-id\u0000', 'latin1');

/** Value of a record: a format byte (the version of the row is the result). */
const RECORD_VALUE: Buffer = Buffer.from([1]);

/**
 * How long a request id is remembered (ms of commit-timestamp time): a resend applied later than
 * this after the first application may apply again. Must exceed the SDK's longest resend window
 * (`DEDUP_RESEND_WINDOW_MS` in client/src/retry.ts, 60 s) plus clock skew between nodes and
 * delivery delays: 10 minutes.
 */
export const REQUEST_ID_RETENTION_MS = 10 * 60_000;

export function requestRecordKey(requestId: Buffer): Buffer {
  return Buffer.concat([REQUEST_RECORD_PREFIX, requestId]);
}

/** Whether a data row (`hash`, `key`) is a request record rather than user data. */
export function isRequestRecord(hash: bigint, key: Buffer): boolean {
  return (
    key.length === REQUEST_RECORD_PREFIX.length + REQUEST_ID_BYTES &&
    key.subarray(0, REQUEST_RECORD_PREFIX.length).equals(REQUEST_RECORD_PREFIX) &&
    keyHash(key) !== hash
  );
}

/**
 * The record mutation a data command is applied with (its first mutation), or undefined when the
 * command carries no request id or no mutation to place the record next to.
 */
export function requestRecordOf(command: ReplicatedCommand): Mutation | undefined {
  const rid = command.requestId;
  const first = command.mutations[0];
  if (rid === undefined || first === undefined) return undefined;
  return { type: 'put', hash: first.hash, key: requestRecordKey(rid), value: RECORD_VALUE, expiresAtMs: 0, condition: { kind: 'absent' } };
}

/** The replicated delete removing a record (GC). */
export function recordDelete(hash: bigint, key: Buffer): DataMutation {
  return { type: 'delete', hash, key };
}

/** A local index entry of a record (see the file comment). */
export interface RecordIndexEntry {
  readonly group: GroupId;
  readonly version: Timestamp;
  readonly hash: bigint;
  readonly requestId: Buffer;
}

function indexHead(group: GroupId, extra: number): Buffer {
  const b = Buffer.alloc(INDEX_HEAD + extra);
  b.writeUInt8(RAFT_PREFIX, 0);
  b.writeUInt32BE(group, 1);
  b.writeUInt8(INDEX_KIND, 5);
  return b;
}

export function recordIndexKey(e: RecordIndexEntry): Buffer {
  const b = indexHead(e.group, INDEX_KEY_BYTES - INDEX_HEAD);
  b.writeBigUInt64BE(e.version, INDEX_HEAD);
  b.writeBigUInt64BE(e.hash, INDEX_HEAD + 8);
  e.requestId.copy(b, INDEX_HEAD + 16);
  return b;
}

/** [lo, hi) of the index entries of `group` with version < `below`. */
export function recordIndexRange(group: GroupId, below: Timestamp): { lo: Buffer; hi: Buffer } {
  const hi = indexHead(group, 8);
  hi.writeBigUInt64BE(below, INDEX_HEAD);
  return { lo: indexHead(group, 0), hi };
}

/**
 * Every index entry of `group`, as a snapshot carries them when it travels as SST files (ADR
 * 0013): the sender's entries whose version is at most the snapshot's read timestamp.
 */
export function recordIndexSpace(group: GroupId): RawSnapshotRange {
  const lt = indexHead(group, 0);
  lt.writeUInt8(INDEX_KIND + 1, 5);
  return { gte: indexHead(group, 0), lt, u64Offset: INDEX_HEAD };
}

/** Decodes an index key; undefined for a key of another shape. */
export function decodeRecordIndexKey(k: Buffer): RecordIndexEntry | undefined {
  if (k.length !== INDEX_KEY_BYTES || k[0] !== RAFT_PREFIX || k[5] !== INDEX_KIND) return undefined;
  return {
    group: k.readUInt32BE(1),
    version: k.readBigUInt64BE(INDEX_HEAD),
    hash: k.readBigUInt64BE(INDEX_HEAD + 8),
    requestId: Buffer.from(k.subarray(INDEX_HEAD + 16)),
  };
}

/** The raw mutation writing a record's index entry. */
export function recordIndexPut(e: RecordIndexEntry): Mutation {
  return { type: 'rawPut', key: recordIndexKey(e), value: Buffer.alloc(0) };
}

/** The request id of a record row's key (call only when `isRequestRecord` holds). */
export function requestIdOfRecordKey(key: Buffer): Buffer {
  return Buffer.from(key.subarray(REQUEST_RECORD_PREFIX.length));
}
