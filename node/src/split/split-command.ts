/**
 * The split command of a data group (docs/adr/0010-splits.md) and the group's durable range
 * record.
 *
 * - **Split command.** A partition's Raft group splits by applying an entry of its own log, so
 *   every replica splits at the same log position. Until the group driver proposes opaque
 *   payloads, the command travels in the replicated-command envelope (like meta commands) as ONE
 *   put of `SPLIT_COMMAND_KEY` at hash 0 whose value is the JSON below. Client writes can never
 *   produce it: the KV API always stamps a key with its own hash, and `keyHash(SPLIT_COMMAND_KEY)`
 *   is not 0 (checked at load).
 * - **Range record** `r | group | 'g'`: the group's current hash range (narrowed by every split it
 *   applied) and the children it split off. Written atomically with the split entry's applied
 *   state; read when the group opens (it wins over the map's range, which may not show the split
 *   yet). A replica that skips split entries by installing a later snapshot takes the narrower
 *   range from the snapshot's descriptor (`snapshotRangeOf`) and hosts the children the map shows.
 */
import { keyHash } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import { decodeSnapshotDescriptor, type HashRange, isStreamedSnapshot } from '../replication/partition-snapshot.ts';
import { RAFT_PREFIX } from '../replication/raft-keys.ts';
import type { DataMutation, ReplicatedCommand } from '../replication/replicated-command.ts';

export const SPLIT_COMMAND_KEY = Buffer.from('keyva/split-command', 'utf8');
if (keyHash(SPLIT_COMMAND_KEY) === 0n) throw new Error('SPLIT_COMMAND_KEY hashes to 0: pick another key');

const HASH_MAX = (1n << 64n) - 1n;
const RANGE_RECORD = 0x67; // 'g'
/** Children a range record keeps, at most (older ones are dropped: they only matter to replicas that lag by many splits). */
export const RECORD_CHILDREN_MAX = 64;

/** Applied by every replica of the parent group at the same log position. */
export interface SplitCommand {
  /** The split point: the parent keeps [start, at), the child gets [at, childEnd). */
  readonly at: bigint;
  /** Raft group of the new partition. */
  readonly childGroup: number;
  /** Must equal the parent's range end at the split's log position (else the entry is a no-op). */
  readonly childEnd: bigint;
  /** The parent's membership when the split was proposed: the child's founding membership. */
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

export interface ChildRange extends HashRange {
  readonly group: number;
}

export interface RangeRecord extends HashRange {
  /** Groups split off this one, oldest first. */
  readonly children: readonly ChildRange[];
  /** Merges (`merge-command.ts`): this group is frozen into group `into` since log index `index`. */
  readonly frozen?: { readonly into: number; readonly index: number } | undefined;
  /** Merges: the groups this one absorbed, oldest first. */
  readonly absorbed?: readonly ChildRange[] | undefined;
}

export function rangeRecordKey(group: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt8(RAFT_PREFIX, 0);
  b.writeUInt32BE(group, 1);
  b.writeUInt8(RANGE_RECORD, 5);
  return b;
}

/** Wire validators shared with merge-command.ts. */
export function u64(v: unknown, what: string): bigint {
  if (typeof v !== 'string' || !/^\d{1,20}$/.test(v)) throw new Error(`${what} is not a u64`);
  const b = BigInt(v);
  if (b > HASH_MAX + 1n) throw new Error(`${what} is beyond 2^64`);
  return b;
}

export function groupId(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0xffff_ffff) throw new Error(`${what} is not a data group id`);
  return v;
}

export function ids(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length > 16 || !v.every((x) => typeof x === 'string' && /^[a-z0-9][a-z0-9-/]{0,80}$/.test(x)))
    throw new Error(`${what} is not a list of replica ids`);
  return v as string[];
}

export function encodeSplitCommand(c: SplitCommand): Buffer {
  return Buffer.from(
    JSON.stringify({ v: 1, at: c.at.toString(), childGroup: c.childGroup, childEnd: c.childEnd.toString(), voters: c.voters, learners: c.learners }),
    'utf8',
  );
}

export function decodeSplitCommand(b: Buffer): SplitCommand {
  const o = JSON.parse(b.toString('utf8')) as Record<string, unknown>;
  if (o.v !== 1) throw new Error('unknown split command version');
  const c: SplitCommand = {
    at: u64(o.at, 'at'),
    childGroup: groupId(o.childGroup, 'childGroup'),
    childEnd: u64(o.childEnd, 'childEnd'),
    voters: ids(o.voters, 'voters'),
    learners: ids(o.learners, 'learners'),
  };
  if (c.voters.length === 0) throw new Error('a split needs the voters of the parent');
  return c;
}

/** The proposal carrying a split command (see the file comment). */
export function splitProposal(c: SplitCommand): DataMutation[] {
  return [{ type: 'put', hash: 0n, key: SPLIT_COMMAND_KEY, value: encodeSplitCommand(c), expiresAtMs: 0 }];
}

/**
 * The split command a replicated command carries: undefined for every other command; `invalid`
 * for the envelope with a value that is not a split command (applied as a no-op everywhere alike).
 */
export function splitCommandOf(rc: ReplicatedCommand): SplitCommand | 'invalid' | undefined {
  const m = rc.mutations[0];
  if (rc.mutations.length !== 1 || m === undefined || m.type !== 'put' || m.hash !== 0n || !m.key.equals(SPLIT_COMMAND_KEY)) return undefined;
  if (m.condition !== undefined) return 'invalid';
  try {
    return decodeSplitCommand(m.value);
  } catch {
    return 'invalid';
  }
}

/** Whether `c` applies to a group whose range is `r` (the same answer on every replica). */
export function splitFits(c: SplitCommand, r: RangeRecord): boolean {
  return r.frozen === undefined && c.at > r.start && c.at < r.end && c.childEnd === r.end;
}

export function encodeRangeRecord(r: RangeRecord): Buffer {
  return Buffer.from(
    JSON.stringify({
      start: r.start.toString(),
      end: r.end.toString(),
      children: r.children.map((c) => ({ group: c.group, start: c.start.toString(), end: c.end.toString() })),
      ...(r.frozen === undefined ? {} : { frozen: r.frozen }),
      ...(r.absorbed === undefined ? {} : { absorbed: r.absorbed.map((c) => ({ group: c.group, start: c.start.toString(), end: c.end.toString() })) }),
    }),
    'utf8',
  );
}

export function decodeRangeRecord(b: Buffer): RangeRecord {
  try {
    const o = JSON.parse(b.toString('utf8')) as { start?: unknown; end?: unknown; children?: unknown; frozen?: unknown; absorbed?: unknown };
    const start = u64(o.start, 'start');
    const end = u64(o.end, 'end');
    if (end <= start) throw new Error('empty range');
    if (!Array.isArray(o.children) || o.children.length > RECORD_CHILDREN_MAX) throw new Error('bad children');
    const children = o.children.map((c: { group?: unknown; start?: unknown; end?: unknown }) => ({
      group: groupId(c.group, 'child group'),
      start: u64(c.start, 'child start'),
      end: u64(c.end, 'child end'),
    }));
    let frozen: RangeRecord['frozen'];
    if (o.frozen !== undefined) {
      const f = o.frozen as { into?: unknown; index?: unknown };
      if (typeof f.index !== 'number' || !Number.isSafeInteger(f.index) || f.index < 1) throw new Error('bad frozen index');
      frozen = { into: groupId(f.into, 'frozen into'), index: f.index };
    }
    if (o.absorbed !== undefined && (!Array.isArray(o.absorbed) || o.absorbed.length > RECORD_CHILDREN_MAX)) throw new Error('bad absorbed');
    const absorbed = (o.absorbed as { group?: unknown; start?: unknown; end?: unknown }[] | undefined)?.map((c) => ({
      group: groupId(c.group, 'absorbed group'),
      start: u64(c.start, 'absorbed start'),
      end: u64(c.end, 'absorbed end'),
    }));
    return { start, end, children, ...(frozen === undefined ? {} : { frozen }), ...(absorbed === undefined ? {} : { absorbed }) };
  } catch (e) {
    throw new KeyVaError('STORAGE_ERROR', `corrupt range record: ${(e as Error).message}`);
  }
}

/** The record after applying `c` to `r` (which must fit). */
export function afterSplit(r: RangeRecord, c: SplitCommand): RangeRecord {
  const children = [...r.children, { group: c.childGroup, start: c.at, end: c.childEnd }].slice(-RECORD_CHILDREN_MAX);
  return { ...r, start: r.start, end: c.at, children };
}

/**
 * The hash range a data snapshot's bytes name: the wrapped range record's (`wrapSnapshot`), else
 * the streamed form's descriptor's (`partition-snapshot.ts`); the inline and empty forms name none.
 */
export function snapshotRangeOf(data: Uint8Array): HashRange | undefined {
  const { record, inner } = unwrapSnapshot(data);
  if (record !== undefined) return { start: record.start, end: record.end };
  return isStreamedSnapshot(inner) ? decodeSnapshotDescriptor(inner).range : undefined;
}

const SNAPSHOT_MAGIC = 0xa5;

/**
 * Snapshot data of a group that has split: `0xA5 | len u32 | range record | inner`, the inner
 * being the partition snapshot data (`partition-snapshot.ts`: a streamed descriptor, the inline
 * form, or empty; none starts with 0xA5). Groups that never split send the inner data unchanged.
 * The record tells a replica that skips split entries its narrower range and the children.
 */
export function wrapSnapshot(record: RangeRecord, inner: Uint8Array): Uint8Array {
  const rec = encodeRangeRecord(record);
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(SNAPSHOT_MAGIC, 0);
  head.writeUInt32BE(rec.length, 1);
  const out = Buffer.concat([head, rec, Buffer.from(inner.buffer, inner.byteOffset, inner.byteLength)]);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** The inverse of `wrapSnapshot`; data that is not wrapped comes back as `inner` with no record. */
export function unwrapSnapshot(data: Uint8Array): { record: RangeRecord | undefined; inner: Uint8Array } {
  if (data.byteLength === 0 || data[0] !== SNAPSHOT_MAGIC) return { record: undefined, inner: data };
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < 5) throw new KeyVaError('STORAGE_ERROR', 'corrupt split snapshot header');
  const n = b.readUInt32BE(1);
  if (5 + n > b.length) throw new KeyVaError('STORAGE_ERROR', 'corrupt split snapshot header');
  const record = decodeRangeRecord(b.subarray(5, 5 + n));
  return { record, inner: data.subarray(5 + n) };
}
