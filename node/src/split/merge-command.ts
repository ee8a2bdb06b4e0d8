/**
 * The two log commands of a partition merge (docs/adr/0010-splits.md, "Merges"):
 *
 * - **freeze**, in the RIGHT group's log: from its position on, the group applies no data command
 *   and no split (`wrongPartition` everywhere alike), serves no read and takes no membership
 *   change. Its range record remembers `frozen: {into, index}`.
 * - **absorb**, in the LEFT group's log: extends the left group's range over the frozen right
 *   group's (which must start where the left one ends at that log position) and lists the right
 *   group as absorbed. The node then retires the right group's Raft state (`merge-retire.ts`).
 *   It names the membership whose every replica confirmed the freeze (`confirmed`); the left
 *   group's membership at the absorb's log position (voters and learners, as the conf changes
 *   before it in the same log left it) must be exactly that, else the absorb is refused there on
 *   every replica alike: a replica added to the left group in between has none of the right
 *   group's rows. Absorbs written before this field existed carry none and apply unchecked, as
 *   they did then (a replica replaying one must decide like those that applied it).
 *
 * Like the split command, each travels in the replicated-command envelope as ONE put of a reserved
 * key at hash 0 whose value is JSON. Client writes cannot produce it: the KV API stamps every key
 * with its own hash, and neither key hashes to 0 (checked at load).
 */
import { keyHash } from '@keyva/client/keyspace';
import type { ConfState } from '../raft/types.ts';
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
  /**
   * The right group's membership whose every replica was seen to have applied the freeze (replica
   * ids). Undefined only in absorbs decoded from entries written before this check existed.
   */
  readonly confirmed?: Membership | undefined;
}

/** Replica ids of a group's voters and learners (disjoint, no duplicates, at least one voter). */
export interface Membership {
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

/** Validates a membership read from the wire (throws with what is wrong). */
export function membershipOf(voters: unknown, learners: unknown): Membership {
  const v = ids(voters, 'voters');
  const l = ids(learners, 'learners');
  if (v.length === 0) throw new Error('no voters');
  if (new Set([...v, ...l]).size !== v.length + l.length) throw new Error('a replica is listed twice');
  return { voters: v, learners: l };
}

/** Whether the group's membership `conf` is exactly `m` (order does not matter). */
export function sameMembership(conf: ConfState, m: Membership): boolean {
  const eq = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
  return eq(conf.voters, m.voters) && eq(conf.learners, m.learners);
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

/** The absorb's proposal; it always names the confirmed membership (checked on apply). */
export function absorbProposal(c: AbsorbCommand & { readonly confirmed: Membership }): DataMutation[] {
  const m = membershipOf(c.confirmed.voters, c.confirmed.learners);
  const value = Buffer.from(
    JSON.stringify({
      v: 1,
      group: c.group,
      start: c.start.toString(),
      end: c.end.toString(),
      freezeIndex: c.freezeIndex,
      voters: m.voters,
      learners: m.learners,
    }),
    'utf8',
  );
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
    // Version 1 as first written had no membership: such an absorb applies unchecked (see the file comment).
    const old = o.voters === undefined && o.learners === undefined;
    const confirmed = old ? undefined : membershipOf(o.voters, o.learners);
    return { kind: 'absorb', c: { group: groupId(o.group, 'group'), ...r, freezeIndex: f, ...(confirmed === undefined ? {} : { confirmed }) } };
  } catch {
    return 'invalid';
  }
}

/**
 * Whether a merge command applies to a group whose record is `r` and whose membership is `conf` at
 * its log position (the same answer on every replica: both follow from the log up to there). An
 * absorb naming a confirmed membership is refused unless `conf` is known and equal to it.
 */
export function mergeFits(m: MergeCommand, r: RangeRecord, group: number, conf: ConfState | undefined): boolean {
  if (r.frozen !== undefined) return false;
  if (m.kind === 'freeze') return m.c.into !== group && m.c.start === r.start && m.c.end === r.end;
  if (m.c.confirmed !== undefined && (conf === undefined || !sameMembership(conf, m.c.confirmed))) return false;
  return m.c.group !== group && m.c.start === r.end && m.c.end > m.c.start;
}

/** The record after applying `m` (which must fit) at log index `index`. */
export function afterMerge(r: RangeRecord, m: MergeCommand, index: number): RangeRecord {
  if (m.kind === 'freeze') return { ...r, frozen: { into: m.c.into, index } };
  const absorbed = [...(r.absorbed ?? []), { group: m.c.group, start: m.c.start, end: m.c.end }].slice(-64);
  return { ...r, end: m.c.end, absorbed };
}
