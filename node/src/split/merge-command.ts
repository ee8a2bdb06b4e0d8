/**
 * The two log commands of a partition merge (docs/adr/0010-splits.md, "Merges"):
 *
 * - **freeze**, in the RIGHT group's log: from its position on, the group applies no data command
 *   and no split (`wrongPartition` everywhere alike), serves no read and takes no membership
 *   change. Its range record remembers `frozen: {into, index}`.
 * - **absorb**, in the LEFT group's log: extends the left group's range over the frozen right
 *   group's (which must start where the left one ends at that log position) and lists the right
 *   group as absorbed. The node then retires the right group's Raft state (`merge-retire.ts`).
 *
 * Like the split command, each travels in the replicated-command envelope as ONE put of a reserved
 * key at hash 0 whose value is JSON. Client writes cannot produce it: the KV API stamps every key
 * with its own hash, and neither key hashes to 0 (checked at load).
 */
import { keyHash } from '@keyva/client/keyspace';
import type { HashRange } from '../replication/partition-snapshot.ts';
import type { DataMutation, ReplicatedCommand } from '../replication/replicated-command.ts';
import { groupId, ids, type RangeRecord, u64 } from './split-command.ts';

export const FREEZE_COMMAND_KEY = Buffer.from('keyva/merge-freeze', 'utf8');
export const ABSORB_COMMAND_KEY = Buffer.from('keyva/merge-absorb', 'utf8');
if (keyHash(FREEZE_COMMAND_KEY) === 0n || keyHash(ABSORB_COMMAND_KEY) === 0n) throw new Error('a merge command key hashes to 0: pick another key');

/** Applied by every replica of the right group at the same log position. */
export interface FreezeCommand {
  /** The left group that will absorb this one. */
  readonly into: number;
  /** The right group's range when the freeze was proposed (the entry is a no-op if it differs at its position). */
  readonly start: bigint;
  readonly end: bigint;
  /** The right group's membership at the freeze: every one of them must apply it before the absorb. */
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

/** Applied by every replica of the left group at the same log position. */
export interface AbsorbCommand {
  /** The right group, frozen into this one. */
  readonly group: number;
  readonly start: bigint;
  readonly end: bigint;
  /** The freeze's index in the right group's log (every replica of it applied it). */
  readonly freezeIndex: number;
}

function range(o: Record<string, unknown>): HashRange {
  const start = u64(o.start, 'start');
  const end = u64(o.end, 'end');
  if (end <= start) throw new Error('empty range');
  return { start, end };
}

export function freezeProposal(c: FreezeCommand): DataMutation[] {
  const value = Buffer.from(
    JSON.stringify({ v: 1, into: c.into, start: c.start.toString(), end: c.end.toString(), voters: c.voters, learners: c.learners }),
    'utf8',
  );
  return [{ type: 'put', hash: 0n, key: FREEZE_COMMAND_KEY, value, expiresAtMs: 0 }];
}

export function absorbProposal(c: AbsorbCommand): DataMutation[] {
  const value = Buffer.from(JSON.stringify({ v: 1, group: c.group, start: c.start.toString(), end: c.end.toString(), freezeIndex: c.freezeIndex }), 'utf8');
  return [{ type: 'put', hash: 0n, key: ABSORB_COMMAND_KEY, value, expiresAtMs: 0 }];
}

export type MergeCommand = { readonly kind: 'freeze'; readonly c: FreezeCommand } | { readonly kind: 'absorb'; readonly c: AbsorbCommand };

/**
 * The merge command a replicated command carries: undefined for every other command; `invalid`
 * for the envelope with a value that does not decode (applied as a no-op everywhere alike).
 */
export function mergeCommandOf(rc: ReplicatedCommand): MergeCommand | 'invalid' | undefined {
  const m = rc.mutations[0];
  if (rc.mutations.length !== 1 || m === undefined || m.type !== 'put' || m.hash !== 0n) return undefined;
  const freeze = m.key.equals(FREEZE_COMMAND_KEY);
  if (!freeze && !m.key.equals(ABSORB_COMMAND_KEY)) return undefined;
  if (m.condition !== undefined) return 'invalid';
  try {
    const o = JSON.parse(m.value.toString('utf8')) as Record<string, unknown>;
    if (o.v !== 1) return 'invalid';
    const r = range(o);
    if (freeze) {
      const voters = ids(o.voters, 'voters');
      if (voters.length === 0) return 'invalid';
      return { kind: 'freeze', c: { into: groupId(o.into, 'into'), ...r, voters, learners: ids(o.learners, 'learners') } };
    }
    const f = o.freezeIndex;
    if (typeof f !== 'number' || !Number.isSafeInteger(f) || f < 1) return 'invalid';
    return { kind: 'absorb', c: { group: groupId(o.group, 'group'), ...r, freezeIndex: f } };
  } catch {
    return 'invalid';
  }
}

/** Whether a merge command applies to a group whose record is `r` at its log position (the same answer on every replica). */
export function mergeFits(m: MergeCommand, r: RangeRecord, group: number): boolean {
  if (r.frozen !== undefined) return false;
  if (m.kind === 'freeze') return m.c.into !== group && m.c.start === r.start && m.c.end === r.end;
  return m.c.group !== group && m.c.start === r.end && m.c.end > m.c.start;
}

/** The record after applying `m` (which must fit) at log index `index`. */
export function afterMerge(r: RangeRecord, m: MergeCommand, index: number): RangeRecord {
  if (m.kind === 'freeze') return { ...r, frozen: { into: m.c.into, index } };
  const absorbed = [...(r.absorbed ?? []), { group: m.c.group, start: m.c.start, end: m.c.end }].slice(-64);
  return { ...r, end: m.c.end, absorbed };
}
