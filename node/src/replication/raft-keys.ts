/**
 * The raft key space of the node's RocksDB: `r | group (u32 BE) | kind | [index (u64 BE)]`.
 * Per group: its hard state, its latest snapshot (metadata and data) and its log entries in
 * index order, so a group's log is one contiguous range; plus the state machine's applied state
 * (index, term, highest applied commit timestamp), written with every applied batch; and, for a
 * group whose content is not partition data (the meta group), that content's state record.
 */
export const RAFT_PREFIX = 0x72; // 'r'

const HARD_STATE = 0x68; // 'h'
const SNAPSHOT_META = 0x6d; // 'm'
const SNAPSHOT_DATA = 0x73; // 's'
const ENTRY = 0x65; // 'e'
const APPLIED_STATE = 0x61; // 'a'
const CONTENT_STATE = 0x63; // 'c'

export type GroupId = number;

function groupKey(group: GroupId, kind: number, extra = 0): Buffer {
  const b = Buffer.alloc(6 + extra);
  b.writeUInt8(RAFT_PREFIX, 0);
  b.writeUInt32BE(group, 1);
  b.writeUInt8(kind, 5);
  return b;
}

export const hardStateKey = (g: GroupId) => groupKey(g, HARD_STATE);
export const snapshotMetaKey = (g: GroupId) => groupKey(g, SNAPSHOT_META);
export const snapshotDataKey = (g: GroupId) => groupKey(g, SNAPSHOT_DATA);
/** The group's applied state (see `group-state-machine.ts`), outside the log's entry range. */
export const appliedStateKey = (g: GroupId) => groupKey(g, APPLIED_STATE);
/** The state of a content group (`GroupContent`, e.g. the meta group's map), written with its applied state. */
export const contentStateKey = (g: GroupId) => groupKey(g, CONTENT_STATE);

export function entryKey(g: GroupId, index: number): Buffer {
  const b = groupKey(g, ENTRY, 8);
  b.writeBigUInt64BE(BigInt(index), 6);
  return b;
}

/** [lo, hi) of the entry keys of a group from index `from` on. */
export function entryRange(g: GroupId, from = 0): { lo: Buffer; hi: Buffer } {
  return { lo: entryKey(g, from), hi: groupKey(g, ENTRY + 1) };
}

export function indexOfEntryKey(k: Buffer): number {
  return Number(k.readBigUInt64BE(6));
}
