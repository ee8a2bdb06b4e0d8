/**
 * The node side of applying a split (docs/adr/0010-splits.md), the `SplitHooks` the data groups'
 * state machines call:
 *
 * - `childMutations`: the child group's founding state, written in the same engine write as the
 *   split entry — its Raft bootstrap (the parent's membership at the split), its applied state at
 *   the bootstrap index with the split entry's commit timestamp as `maxCommitTs` (the floor of
 *   the child's timestamps: every version in its range is at or below it, follower and snapshot
 *   reads start from it), its range record and a hosting record (so a restart reopens it before
 *   any map lists it). Nothing moves: the child's rows are the parent's, already on disk.
 * - `childrenReady`: opens the child on the runtime once that write is done; the parent's leader
 *   campaigns for it at once.
 * - `narrowedBySnapshot`: asks the coordinator to host the map's partitions in the cut-off part
 *   (empty, caught up by their leader's snapshot).
 */
import type { NodeId } from '@keyva/client/keyspace';
import type { Mutation, Timestamp } from '../engine/types.ts';
import { hostingKey, tombstoneKey } from '../membership/replica-hosting.ts';
import type { Logger } from '../observability/logger.ts';
import type { ReplicaId } from '../raft/types.ts';
import { bootstrapWrite } from '../replication/durable-raft-log.ts';
import { encodeAppliedState } from '../replication/group-state-machine.ts';
import { encodeSnapshotDescriptor, type HashRange } from '../replication/partition-snapshot.ts';
import { encodeHardState, encodeSnapshotMetadata } from '../replication/raft-codec.ts';
import { appliedStateKey, hardStateKey, snapshotDataKey, snapshotMetaKey } from '../replication/raft-keys.ts';
import { type ChildRange, encodeRangeRecord, rangeRecordKey, type SplitCommand } from './split-command.ts';
import type { SplitHooks } from './split-hooks.ts';

export interface SplitHostOptions {
  readonly self: NodeId;
  /** Whether the runtime hosts `group` (opened, or being opened by this host). */
  readonly hosted: (group: number) => boolean;
  /** Opens a group whose state is on disk (`MultiRaft.addGroup` without bootstrap). */
  readonly open: (group: number, range: HashRange) => Promise<void>;
  /** Whether this node leads `group` now. */
  readonly leads?: (group: number) => boolean;
  /** Starts an election of `group` here (`MultiRaft.campaign`). */
  readonly campaign?: (group: number) => void;
  /** A split applied here through a snapshot: host the map's partitions in `cutOff`. */
  readonly onNarrowed?: (parentGroup: number, cutOff: HashRange) => void;
  /** A merge command applied here (docs/adr/0010-splits.md "Merges"): the merge reconciler's next step. */
  readonly onMerge?: (group: number) => void;
  readonly log?: Logger;
}

/** The hosting record's value, as `replica-hosting.ts` writes it. */
function hostingValue(r: HashRange): Buffer {
  return Buffer.from(JSON.stringify({ start: r.start.toString(), end: r.end.toString() }), 'utf8');
}

export class SplitHost implements SplitHooks {
  readonly stats = { childrenCreated: 0, childrenOpened: 0, childrenSkipped: 0 };
  private readonly o: SplitHostOptions;
  /** Children written by a split entry whose write is still in flight. */
  private readonly creating = new Set<number>();

  constructor(o: SplitHostOptions) {
    this.o = o;
  }

  /** A split entry wrote `group`'s founding state and its opening is pending. */
  isCreating(group: number): boolean {
    return this.creating.has(group);
  }

  childMutations(_parent: number, split: SplitCommand, commitTs: Timestamp): Mutation[] {
    const g = split.childGroup;
    if (this.o.hosted(g) || this.creating.has(g)) {
      this.stats.childrenSkipped++;
      return [];
    }
    this.creating.add(g);
    this.stats.childrenCreated++;
    const range: HashRange = { start: split.at, end: split.childEnd };
    // The founding snapshot is a streamed one (its descriptor: the range at the split's commit
    // timestamp): a replica added to the child before its log is compacted receives the rows it
    // inherited from the parent by snapshot. (An empty bootstrap snapshot would install no rows,
    // and the replica would hold only what was written after the split.)
    const founding = encodeSnapshotDescriptor({ maxCommitTs: commitTs, range });
    const w = bootstrapWrite({ voters: split.voters as ReplicaId[], learners: split.learners as ReplicaId[] }, founding);
    const snap = w.snapshot;
    if (snap === undefined || w.hardState === undefined) throw new Error('bootstrap write without snapshot or hard state');
    return [
      { type: 'rawPut', key: snapshotMetaKey(g), value: encodeSnapshotMetadata(snap.metadata) },
      { type: 'rawPut', key: snapshotDataKey(g), value: Buffer.from(snap.data) },
      { type: 'rawPut', key: hardStateKey(g), value: encodeHardState(w.hardState) },
      { type: 'rawPut', key: appliedStateKey(g), value: encodeAppliedState({ index: snap.metadata.index, term: snap.metadata.term, maxCommitTs: commitTs }) },
      { type: 'rawPut', key: rangeRecordKey(g), value: encodeRangeRecord({ start: range.start, end: range.end, children: [] }) },
      { type: 'rawPut', key: hostingKey(g), value: hostingValue(range) },
      { type: 'rawDelete', key: tombstoneKey(g) },
    ];
  }

  childrenReady(parent: number, children: readonly ChildRange[]): void {
    // The parent's leader campaigns for the child at once: it is as up to date as any replica,
    // and the child's range is unavailable until it has a leader (no election timeout to wait).
    const leader = this.o.leads?.(parent) === true;
    for (const c of children) {
      if (!this.creating.has(c.group)) continue;
      this.o.open(c.group, { start: c.start, end: c.end }).then(
        () => {
          this.creating.delete(c.group);
          this.stats.childrenOpened++;
          if (leader) this.o.campaign?.(c.group);
          this.o.log?.info({ parentGroup: parent, group: c.group, start: c.start.toString(), end: c.end.toString() }, 'split: child group opened');
        },
        (e: unknown) => {
          this.creating.delete(c.group);
          this.o.log?.error({ err: e, parentGroup: parent, group: c.group }, 'split: the child group could not be opened (it opens on the next start)');
        },
      );
    }
  }

  narrowedBySnapshot(parent: number, cutOff: HashRange): void {
    this.o.onNarrowed?.(parent, cutOff);
  }

  mergeApplied(group: number): void {
    this.o.onMerge?.(group);
  }
}
