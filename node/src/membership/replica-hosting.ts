/**
 * Which Raft groups this node hosts, durably, and how a dropped replica's data is deleted.
 *
 * Founding members host the groups their partition map lists (they bootstrap them). Every other
 * replica exists because a leader asked for it (`HostReplica`, before proposing the node as a
 * learner): that writes a **hosting record** `r | group | 'o'` holding the partition's hash range,
 * so the node opens the group again after a restart, before any map says so. A group whose
 * replica was removed gets a **tombstone** `r | group | 't'` (with the range) in the same synced
 * write that deletes the hosting record, before anything else is deleted: a restart in the middle
 * of the deletion finishes it, and a founder never re-bootstraps a group it was removed from
 * because its (possibly stale) map still lists it. A later `HostReplica` of the same group clears
 * the tombstone.
 *
 * Deleting a replica = the partition's data (`d`, its hash range) and every `r | group` key (log,
 * hard state, snapshot, applied state), the tombstone excepted.
 */
import type { Mutation, StorageEngine } from '../engine/types.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import { RAFT_PREFIX } from '../replication/raft-keys.ts';

const HOSTING = 0x6f; // 'o'
const TOMBSTONE = 0x74; // 't'
/** Raw rows deleted per engine write while dropping a group. */
export const DROP_BATCH_ROWS = 1024;

function prefix(group: number, extra = 0): Buffer {
  const b = Buffer.alloc(5 + extra);
  b.writeUInt8(RAFT_PREFIX, 0);
  b.writeUInt32BE(group, 1);
  return b;
}

/** Exclusive end of every key of `group`. */
function groupEnd(group: number): Buffer {
  return group >= 0xffff_ffff ? Buffer.from([RAFT_PREFIX, 0xff, 0xff, 0xff, 0xff, 0xff]) : prefix(group + 1);
}

function kindKey(group: number, kind: number): Buffer {
  const b = prefix(group, 1);
  b.writeUInt8(kind, 5);
  return b;
}

export const hostingKey = (group: number) => kindKey(group, HOSTING);
export const tombstoneKey = (group: number) => kindKey(group, TOMBSTONE);

function encodeRange(r: HashRange): Buffer {
  return Buffer.from(JSON.stringify({ start: r.start.toString(), end: r.end.toString() }), 'utf8');
}

function decodeRange(b: Buffer): HashRange | undefined {
  try {
    const v = JSON.parse(b.toString('utf8')) as { start?: unknown; end?: unknown };
    if (typeof v.start !== 'string' || typeof v.end !== 'string') return undefined;
    return { start: BigInt(v.start), end: BigInt(v.end) };
  } catch {
    return undefined;
  }
}

export interface StoredGroups {
  /** Groups with any raft key on disk (log, hard state, snapshot, hosting record), tombstoned ones excluded. */
  readonly withState: ReadonlySet<number>;
  /** Hosting records: groups this node was asked to host, with their range. */
  readonly hosting: ReadonlyMap<number, HashRange>;
  /** Tombstoned groups (dropped), with their range. */
  readonly tombstones: ReadonlyMap<number, HashRange>;
}

/** Every group with raw `r` state on this node (one seek per group). */
export async function readStoredGroups(engine: StorageEngine): Promise<StoredGroups> {
  const withState = new Set<number>();
  const hosting = new Map<number, HashRange>();
  const tombstones = new Map<number, HashRange>();
  const end = Buffer.from([RAFT_PREFIX, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  let from = prefix(0);
  for (;;) {
    const [row] = await engine.scanRaw(from, end, 1);
    if (row === undefined || row.key.length < 5) break;
    const group = row.key.readUInt32BE(1);
    const tomb = await engine.getRaw(tombstoneKey(group));
    const tombRange = tomb === undefined ? undefined : decodeRange(tomb);
    if (tombRange !== undefined) tombstones.set(group, tombRange);
    else {
      withState.add(group);
      const h = await engine.getRaw(hostingKey(group));
      const range = h === undefined ? undefined : decodeRange(h);
      if (range !== undefined) hosting.set(group, range);
    }
    if (group === 0xffff_ffff) break;
    from = prefix(group + 1);
  }
  return { withState, hosting, tombstones };
}

/** Records (synced) that this node hosts `group` over `range`, clearing a tombstone. */
export async function writeHosting(engine: StorageEngine, group: number, range: HashRange): Promise<void> {
  await engine.write({
    mutations: [
      { type: 'rawPut', key: hostingKey(group), value: encodeRange(range) },
      { type: 'rawDelete', key: tombstoneKey(group) },
    ],
    commitTs: 1n,
    nowMs: 0,
    sync: true,
  });
}

/**
 * Deletes a dropped replica: first the tombstone (synced, replacing the hosting record), then
 * the partition's data and the group's raft keys. Safe to call again after a crash. A content
 * group (no data range) passes an empty range.
 */
export async function dropGroupData(engine: StorageEngine, group: number, range: HashRange): Promise<{ rawRows: number }> {
  await engine.write({
    mutations: [
      { type: 'rawPut', key: tombstoneKey(group), value: encodeRange(range) },
      { type: 'rawDelete', key: hostingKey(group) },
    ],
    commitTs: 1n,
    nowMs: 0,
    sync: true,
  });
  if (range.end > range.start) await engine.deleteRange(range.start, range.end);
  const tomb = tombstoneKey(group);
  const end = groupEnd(group);
  let from = prefix(group);
  let rawRows = 0;
  for (;;) {
    const rows = await engine.scanRaw(from, end, DROP_BATCH_ROWS);
    const doomed = rows.filter((r) => !r.key.equals(tomb));
    if (doomed.length > 0) {
      const mutations: Mutation[] = doomed.map((r) => ({ type: 'rawDelete', key: r.key }));
      await engine.write({ mutations, commitTs: 1n, nowMs: 0, sync: false });
      rawRows += doomed.length;
    }
    const last = rows[rows.length - 1];
    if (last === undefined) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
  // The deletions are durable once the next synced write (any Raft persist) lands; make it now.
  await engine.write({ mutations: [{ type: 'rawPut', key: tomb, value: encodeRange(range) }], commitTs: 1n, nowMs: 0, sync: true });
  return { rawRows };
}

/** Raw `r` keys of `group` still on disk (the tombstone excepted); for tests and checks. */
export async function groupRawRows(engine: StorageEngine, group: number, limit = 100_000): Promise<number> {
  const rows = await engine.scanRaw(prefix(group), groupEnd(group), limit + 1);
  const tomb = tombstoneKey(group);
  return rows.filter((r) => !r.key.equals(tomb)).length;
}
