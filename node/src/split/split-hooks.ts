/**
 * What a data group's state machine asks of the node when it applies a split (see
 * `split-command.ts`, docs/adr/0010-splits.md). Implemented by `SplitHost` (`split-host.ts`).
 */
import type { Mutation, Timestamp } from '../engine/types.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import type { MergeCommand } from './merge-command.ts';
import type { ChildRange, SplitCommand } from './split-command.ts';

export interface SplitHooks {
  /**
   * Mutations creating the child group on this replica, written in the SAME engine write as the
   * split entry (its founding Raft state, its applied state with `commitTs` as the floor of its
   * commit timestamps, its hosting record); empty when this node already hosts the child.
   * Synchronous and deterministic in what it writes for the child.
   */
  childMutations(parentGroup: number, split: SplitCommand, commitTs: Timestamp): Mutation[];
  /** The split entry is durable on this replica (with the child's state, if any): open the child. */
  childrenReady(parentGroup: number, children: readonly ChildRange[], cutOff: HashRange): void;
  /**
   * The replica skipped split entries by installing a later snapshot of the parent: it no longer
   * owns `cutOff`; the partitions of the map there must be hosted (empty, for their leader's snapshot).
   */
  narrowedBySnapshot(parentGroup: number, cutOff: HashRange): void;
  /** A merge command (freeze or absorb, `merge-command.ts`) applied to `group` on this replica and is written. */
  mergeApplied?(group: number, merge: MergeCommand): void;
}
