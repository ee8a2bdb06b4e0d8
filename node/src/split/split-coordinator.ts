/**
 * Partition splits on a node (docs/adr/0010-splits.md): the Admin `SplitPartition` call and the
 * background reconciler that makes the data plane follow the map.
 *
 * - `splitPartition(id, at?)` (any node): records the split in the meta map first —
 *   `splitPartition` with compare-and-set on the epoch and a new partition id one above the
 *   highest in the map, so the id is allocated by the meta group and unique (a concurrent split
 *   of another partition fails the compare-and-set and is planned again). Idempotent with `at`:
 *   when the map already has a boundary at `at` with the partition below it, nothing changes.
 *   Then it waits (bounded) until the split is applied on this node's replica of the partition.
 * - The reconciler (every `intervalMs`, and on every map change), for every data group this node
 *   leads and serves: if the group's own range still covers partitions the map has split off, it
 *   proposes the split command through the group's log (one at a time, highest child first), so
 *   every replica splits at the same log position. A crash anywhere between the map change and
 *   the split apply is therefore finished by whichever replica leads next.
 * - It also hosts (empty) the map's split-off partitions that list this node when no group here
 *   owns their range any more (a replica that skipped the split entries by installing a later
 *   snapshot of the parent); their leader catches them up by snapshot.
 */
import type { NodeId, PartitionId } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import type { StorageEngine } from '../engine/types.ts';
import { groupOf } from '../kv/kv-store.ts';
import { tombstoneKey, writeHosting } from '../membership/replica-hosting.ts';
import type { MetaService } from '../meta/meta-service.ts';
import { type MetaPartition, type MetaState, PARTITION_ID_MAX } from '../meta/meta-state.ts';
import { refusalError } from '../meta/meta-wire.ts';
import type { Logger } from '../observability/logger.ts';
import type { RaftStatus } from '../raft/raft.ts';
import type { Entry } from '../raft/types.ts';
import type { GroupStatus } from '../replication/group-driver.ts';
import type { GroupSpec } from '../replication/multi-raft.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import type { ProposeResult } from '../replication/replication-results.ts';
import { awaitApplied } from './await-applied.ts';
import { CoalescedRun } from './coalesced-run.ts';
import { splitProposal } from './split-command.ts';

export const RECONCILE_INTERVAL_MS = 500;
/** How long SplitPartition waits for the split to apply on the answering node. */
export const SPLIT_APPLY_WAIT_MS = 10_000;
const STALE_EPOCH_RETRIES = 5;

/** What the coordinator needs from the Multi-Raft runtime (`MultiRaft` implements it). */
export interface SplitRaft {
  groups(): GroupId[];
  status(group: GroupId): GroupStatus | undefined;
  raftStatus(group: GroupId): RaftStatus | undefined;
  logEntries(group: GroupId, lo: number, hi: number): Entry[];
  rangeOf(group: GroupId): HashRange | undefined;
  propose(group: GroupId, mutations: readonly DataMutation[]): Promise<ProposeResult>;
  addGroup(spec: GroupSpec): Promise<void>;
}

export interface SplitCoordinatorOptions {
  readonly self: NodeId;
  readonly raft: SplitRaft;
  readonly meta: MetaService;
  /**
   * The map this node routes by (its applied meta map, or the one a node without a meta replica
   * follows); what the reconciler acts on. Default: the meta state.
   */
  readonly map?: () => RoutingMap;
  readonly engine: StorageEngine;
  readonly log?: Logger;
  /**
   * Groups a split entry is creating, or a membership drop is deleting, right now
   * (`SplitHost.isCreating`, `ReplicaMembership.isDropping`): not hosted empty here.
   */
  readonly creating?: (group: GroupId) => boolean;
  /**
   * Whether a drop in flight here is deleting rows of `range` (`ReplicaMembership.dropOverlaps`):
   * a child is not hosted over them (docs/adr/0010-splits.md "Replica divergence found by digests").
   */
  readonly dropping?: (range: HashRange) => boolean;
  readonly intervalMs?: number;
  readonly applyWaitMs?: number;
}

export interface SplitOutcome {
  /** False when the map already had this split (a repeated request). */
  readonly changed: boolean;
  readonly epoch: bigint;
  readonly partitionId: number;
  readonly newPartitionId: number;
  readonly atHash: bigint;
  /** The split is applied on this node's replica of the partition (false: not hosted here, or not yet). */
  readonly applied: boolean;
}

/** The part of a partition map the reconciler reads. */
export interface RoutingMap {
  readonly epoch: bigint;
  readonly partitions: readonly Pick<MetaPartition, 'id' | 'start' | 'end' | 'generation' | 'replicas'>[];
}

export class SplitCoordinator {
  readonly stats = { splitsProposed: 0, splitProposalsFailed: 0, emptyChildrenHosted: 0 };
  private readonly o: SplitCoordinatorOptions;
  private readonly inflight = new Set<GroupId>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  /** The node is draining: calls waiting for an apply answer now (`drain`). */
  private draining = false;
  private readonly passes = new CoalescedRun(
    () => this.reconcile(),
    (e) => this.o.log?.warn({ err: e }, 'split reconcile failed; will retry'),
  );

  constructor(o: SplitCoordinatorOptions) {
    this.o = o;
  }

  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => this.kick(), this.o.intervalMs ?? RECONCILE_INTERVAL_MS);
    this.timer.unref();
    this.unsubscribe = this.o.meta.onChange(() => this.kick());
  }

  /**
   * The node is draining (a graceful stop): calls waiting to see their change applied answer now
   * with `applied: false` instead of holding the drain for up to the apply wait; the change
   * itself is in the map, and whichever node leads next finishes it.
   */
  drain(): void {
    this.draining = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.unsubscribe?.();
    await this.passes.stop();
  }

  /** Runs a reconcile pass soon (coalesced). */
  kick(): void {
    if (!this.stopped) this.passes.request();
  }

  /** The Admin call (see the file comment). */
  async splitPartition(partitionId: number, atHash: bigint | undefined): Promise<SplitOutcome> {
    if (!Number.isInteger(partitionId) || partitionId < 0 || partitionId > PARTITION_ID_MAX)
      throw new KeyVaError('INVALID_ARGUMENT', `partition_id ${partitionId} is not a partition id`, { field: 'partition_id' });
    for (let attempt = 0; ; attempt++) {
      await this.o.meta.readBarrier();
      const s = this.o.meta.state;
      if (s.epoch === 0n) throw new KeyVaError('UNAVAILABLE', 'the partition map is not bootstrapped yet; retry');
      const p = s.partitions.find((x) => x.id === partitionId);
      if (p === undefined)
        throw new KeyVaError('INVALID_ARGUMENT', `partition ${partitionId} does not exist (map epoch ${s.epoch})`, { field: 'partition_id' });
      const at = atHash ?? p.start + (p.end - p.start) / 2n;
      if (at <= p.start || at >= p.end) {
        const right = s.partitions.find((x) => x.start === at);
        if (atHash !== undefined && p.end === at && right !== undefined) return this.finish(false, s.epoch, partitionId, right.id, at);
        throw new KeyVaError(
          'INVALID_ARGUMENT',
          atHash === undefined
            ? `partition ${partitionId}'s range [${p.start}, ${p.end}) is too small to split`
            : `split point ${at} is not strictly inside partition ${partitionId}'s range [${p.start}, ${p.end}); nothing changed`,
          { field: 'at_hash', partitionId: String(partitionId), start: p.start.toString(), end: p.end.toString() },
        );
      }
      const newId = nextPartitionId(s);
      if (newId > PARTITION_ID_MAX) throw new KeyVaError('INTERNAL', `no partition id left above ${PARTITION_ID_MAX}`);
      const r = await this.o.meta.proposeMetaChange(
        { kind: 'splitPartition', partitionId: partitionId as PartitionId, atHash: at, newPartitionId: newId as PartitionId, expectedEpoch: s.epoch },
        { forward: true },
      );
      if (r.ok) {
        this.o.log?.info({ partitionId, newPartitionId: newId, atHash: at.toString(), epoch: r.epoch.toString() }, 'split: recorded in the partition map');
        return this.finish(true, r.epoch, partitionId, newId, at);
      }
      if (r.reason !== 'staleEpoch' || attempt >= STALE_EPOCH_RETRIES) throw refusalError(r);
    }
  }

  private async finish(changed: boolean, epoch: bigint, partitionId: number, newPartitionId: number, atHash: bigint): Promise<SplitOutcome> {
    const g = groupOf(partitionId);
    const applied = await awaitApplied({
      applied: () => {
        const r = this.o.raft.rangeOf(g);
        return r !== undefined && r.end <= atHash && this.o.raft.rangeOf(groupOf(newPartitionId)) !== undefined;
      },
      gone: () => this.o.raft.rangeOf(g) === undefined || this.stopped || this.draining,
      nudge: () => this.kick(),
      waitMs: this.o.applyWaitMs ?? SPLIT_APPLY_WAIT_MS,
      pollMs: 20,
    });
    return { changed, epoch, partitionId, newPartitionId, atHash, applied };
  }

  private async reconcile(): Promise<void> {
    const s = this.o.map?.() ?? this.o.meta.state;
    if (s.epoch === 0n) return;
    for (const g of this.o.raft.groups()) {
      if (g === 0 || this.inflight.has(g)) continue;
      this.maybeProposeSplit(s, g);
    }
    await this.hostOrphans(s);
  }

  /** Leader of `group`: proposes the next split the map shows and the group has not applied. */
  private maybeProposeSplit(s: RoutingMap, g: GroupId): void {
    const st = this.o.raft.status(g);
    const local = this.o.raft.rangeOf(g);
    const mp = s.partitions.find((x) => groupOf(x.id) === g);
    if (st === undefined || !st.serving || local === undefined || mp === undefined) return;
    if (mp.start !== local.start || mp.end >= local.end) return;
    // The child with the highest range first: the one holding local.end - 1.
    const child = s.partitions.find((x) => x.start <= local.end - 1n && local.end - 1n < x.end);
    if (child === undefined || child.start < mp.end || child.end !== local.end || child.start <= local.start) {
      this.o.log?.warn(
        { group: g, map: [mp.start.toString(), mp.end.toString()], local: [local.start.toString(), local.end.toString()] },
        'split: the map does not split this group cleanly; not splitting',
      );
      return;
    }
    const rs = this.o.raft.raftStatus(g);
    if (rs === undefined) return;
    // The child's founding membership is the group's at the split: wait while a change is pending.
    const pending = this.o.raft.logEntries(g, rs.applied + 1, rs.lastIndex + 1).some((e) => e.type === 'confChange');
    if (pending) return;
    const command = {
      at: child.start,
      childGroup: groupOf(child.id),
      childEnd: local.end,
      voters: [...rs.confState.voters],
      learners: [...rs.confState.learners],
    };
    this.inflight.add(g);
    this.stats.splitsProposed++;
    this.o.log?.info({ group: g, childGroup: command.childGroup, at: command.at.toString() }, 'split: proposing the split through the group log');
    this.o.raft.propose(g, splitProposal(command)).then(
      (r) => {
        this.inflight.delete(g);
        if (r.ok)
          this.kick(); // the next split of this group, if the map shows one
        else this.stats.splitProposalsFailed++; // refused (nothing proposed): the next timer pass retries
      },
      (e: unknown) => {
        this.inflight.delete(g);
        this.stats.splitProposalsFailed++;
        this.o.log?.debug({ err: e, group: g }, 'split proposal not applied; the next reconcile pass retries');
      },
    );
  }

  /**
   * Split-off partitions of the map that list this node but are not hosted, once no group here
   * owns any of their range (the parent skipped the split by a snapshot): hosted empty.
   */
  private async hostOrphans(s: RoutingMap): Promise<void> {
    const hosted = new Set(this.o.raft.groups());
    const owned = [...hosted].flatMap((g) => {
      const r = g === 0 ? undefined : this.o.raft.rangeOf(g);
      return r === undefined ? [] : [r];
    });
    for (const p of s.partitions) {
      const g = groupOf(p.id);
      if (p.generation <= 1n || !p.replicas.includes(this.o.self) || hosted.has(g) || this.o.creating?.(g) === true) continue;
      if (owned.some((r) => r.start < p.end && p.start < r.end) || this.o.dropping?.({ start: p.start, end: p.end }) === true) continue;
      if ((await this.o.engine.getRaw(tombstoneKey(g))) !== undefined) continue;
      // Checked again after the read: a replica of g dropped meanwhile must not come back empty.
      if (this.stopped || this.o.raft.groups().includes(g) || this.o.creating?.(g) === true || this.o.dropping?.({ start: p.start, end: p.end }) === true)
        continue;
      const range = { start: p.start, end: p.end };
      await writeHosting(this.o.engine, g, range);
      await this.o.raft.addGroup({ group: g, range });
      this.stats.emptyChildrenHosted++;
      this.o.log?.info({ group: g }, 'split: hosting an empty replica of a split-off partition (its leader sends a snapshot)');
    }
  }
}

/** One above the highest id in the map, and never an id a merged partition had (`MetaState.idFloor`). */
function nextPartitionId(s: MetaState): number {
  let max = -1;
  for (const p of s.partitions) if (p.id > max) max = p.id;
  return Math.max(max + 1, s.idFloor ?? 0);
}
