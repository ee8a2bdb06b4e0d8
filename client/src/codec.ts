/**
 * Conversions between the SDK's value types and the wire objects of `@keyva/proto`
 * (64-bit integers travel as decimal strings, enums as names). Validation that needs no server
 * (empty key, conflicting conditions) fails here with the registry's codes.
 */
import type {
  ConditionOut,
  GetPartitionMapResponseOut,
  GetResponseOut,
  KeyValueOut,
  ReadOptions,
  Condition as WireCondition,
  WriteOptions,
} from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { HASH_SPACE_END, type NodeAddressInfo, type NodeId, type PartitionId, type PartitionInfo, PartitionMap } from './keyspace/index.ts';
import type { Bytes, CasExpected, Consistency, Entry, ReadCallOptions, WriteConcern, WriteConditions } from './types.ts';

/** Bytes of a key or value; strings are UTF-8. Shares memory with a Uint8Array input. */
export function toBuffer(b: Bytes): Buffer {
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  if (Buffer.isBuffer(b)) return b;
  if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  throw new KeyVaError('INVALID_ARGUMENT', 'expected a string or Uint8Array', { field: 'bytes' });
}

/** A key's bytes; an empty key fails locally with KEY_EMPTY. */
export function toKey(key: Bytes): Buffer {
  const k = toBuffer(key);
  if (k.length === 0) throw new KeyVaError('KEY_EMPTY');
  return k;
}

/** Optional bytes (scan bounds): undefined stays empty. */
export function optionalBytes(b: Bytes | undefined): Buffer {
  return b === undefined ? Buffer.alloc(0) : toBuffer(b);
}

export function u64(v: bigint, field: string): string {
  if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw new KeyVaError('INVALID_ARGUMENT', `${field} must be a bigint in 0..2^64-1`, { field });
  return v.toString();
}

export function fromU64(s: string | undefined): bigint {
  return s === undefined || s === '' ? 0n : BigInt(s);
}

const CONSISTENCY_WIRE = { linearizable: 'LINEARIZABLE', follower: 'FOLLOWER', snapshot: 'SNAPSHOT' } as const satisfies Record<Consistency, string>;
const CONCERN_WIRE = { majority: 'MAJORITY', all: 'ALL', leader: 'LEADER' } as const satisfies Record<WriteConcern, string>;

export function readOptions(opts: ReadCallOptions): ReadOptions {
  const consistency = opts.consistency ?? (opts.snapshotTs !== undefined ? 'snapshot' : 'linearizable');
  const wire = CONSISTENCY_WIRE[consistency];
  if (wire === undefined) throw new KeyVaError('INVALID_ARGUMENT', `unknown consistency ${String(consistency)}`, { field: 'consistency' });
  if (consistency === 'snapshot' && opts.snapshotTs === undefined) {
    throw new KeyVaError('INVALID_ARGUMENT', "consistency 'snapshot' needs snapshotTs", { field: 'snapshotTs' });
  }
  return { consistency: wire, snapshotTs: opts.snapshotTs === undefined ? '0' : u64(opts.snapshotTs, 'snapshotTs') };
}

export function writeOptions(concern: WriteConcern | undefined): WriteOptions {
  const wire = CONCERN_WIRE[concern ?? 'majority'];
  if (wire === undefined) throw new KeyVaError('INVALID_ARGUMENT', `unknown write concern ${String(concern)}`, { field: 'writeConcern' });
  return { concern: wire };
}

/** The wire condition of a write, or undefined when unconditional. At most one may be set. */
export function condition(c: WriteConditions): WireCondition | undefined {
  const set: WireCondition[] = [];
  if (c.ifAbsent === true) set.push({ absent: true });
  if (c.ifExists === true) set.push({ exists: true });
  if (c.ifVersion !== undefined) set.push({ versionEquals: u64(c.ifVersion, 'ifVersion') });
  if (c.ifValue !== undefined) set.push({ valueEquals: toBuffer(c.ifValue) });
  if (set.length > 1) throw new KeyVaError('INVALID_ARGUMENT', 'set at most one of ifAbsent, ifExists, ifVersion, ifValue', { field: 'condition' });
  return set[0];
}

export function casCondition(expected: CasExpected): WireCondition {
  if ('version' in expected) return { versionEquals: u64(expected.version, 'expected.version') };
  if ('value' in expected) return { valueEquals: toBuffer(expected.value) };
  if ('absent' in expected && expected.absent === true) return { absent: true };
  throw new KeyVaError('INVALID_ARGUMENT', 'expected must be {version}, {value} or {absent: true}', { field: 'expected' });
}

export function isConditional(c: WireCondition | ConditionOut | undefined | null): boolean {
  return c !== undefined && c !== null;
}

export function ttl(ttlMs: number | undefined): string {
  if (ttlMs === undefined) return '0';
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) throw new KeyVaError('INVALID_TTL', 'ttlMs must be a non-negative integer', { field: 'ttlMs' });
  return String(ttlMs);
}

export function entryFromGet(key: Buffer, r: GetResponseOut | null | undefined): Entry | undefined {
  if (r === null || r === undefined || !r.found) return undefined;
  return { key, value: r.value, version: fromU64(r.version), expiresAtMs: Number(r.expiresAtMs || 0) };
}

export function entryFromKeyValue(kv: KeyValueOut): Entry {
  return { key: kv.key, value: kv.value, version: fromU64(kv.version), expiresAtMs: Number(kv.expiresAtMs || 0) };
}

/** The keyspace PartitionMap of a GetPartitionMap answer (end 0 = 2^64, empty leader = none). */
export function partitionMapFromWire(res: GetPartitionMapResponseOut): PartitionMap {
  const m = res.map;
  if (m === null) throw new KeyVaError('INTERNAL', 'GetPartitionMap answered without a map');
  const partitions: PartitionInfo[] = m.partitions.map((p) => ({
    id: p.id as PartitionId,
    start: fromU64(p.start),
    end: fromU64(p.end) === 0n ? HASH_SPACE_END : fromU64(p.end),
    generation: fromU64(p.generation),
    replicas: p.replicas as NodeId[],
    leaderHint: p.leaderHint === '' ? undefined : (p.leaderHint as NodeId),
  }));
  const nodes: NodeAddressInfo[] = m.nodes.map((n) => ({ id: n.id as NodeId, grpcAddress: n.grpcAddress, httpAddress: n.httpAddress }));
  try {
    return new PartitionMap(fromU64(m.epoch), partitions, nodes);
  } catch (e) {
    throw new KeyVaError('INTERNAL', `the node sent an invalid partition map: ${e instanceof Error ? e.message : String(e)}`, {}, { cause: e });
  }
}
