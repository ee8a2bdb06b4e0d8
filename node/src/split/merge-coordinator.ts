/**
 * Partition merges on a node (docs/adr/0010-splits.md, "Merges"): the Admin `MergePartitions`
 * call and the reconciler that makes the data plane follow a merged map.
 *
 * - `mergePartitions(left, right)` (any node): refuses what cannot be merged (unknown, the same,
 *   not adjacent: INVALID_ARGUMENT; replica sets or live memberships that differ, a replica that
 *   does not answer or is not hosted: CONDITION_FAILED with `reason`), then records the merge in
 *   the meta map (compare-and-set on the epoch) and waits (bounded) until this node's replica of
 *   the left group covers the merged range. A repeat after the map changed answers `changed: false`.
 * - The reconciler (every `intervalMs` and on every map change) for the groups of this node:
 *   1. freeze: the leader of a group the map no longer lists, whose range the partition before it
 *      now covers, proposes the freeze through its log;
 *   2. absorb: the leader of a group the map extends, once the group starting at its end is
 *      frozen into it and every replica of that group applied the freeze (asked with
 *      `LocalReplica`) and both memberships are equal, proposes the absorb through its log,
 *      naming that membership: every replica refuses it on apply if the left group's membership
 *      at its log position differs (a conf change landed first); the next pass proposes again
 *      once the memberships are equal (`absorbsRefused` counts the refusals);
 *   3. retire: a group a local group's range record lists as absorbed is closed and its Raft state
 *      deleted here (`merge-retire.ts`), its rows kept.
 *   Everything is derived from the map and the groups' range records, so a crash anywhere is
 *   finished by whichever node leads next.
 */
import type { NodeId, PartitionId } from '@keyva/client/keyspace';
import type { LocalReplicaResponse, MergePartitionsResponseOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { HASH_SPACE_END, type StorageEngine } from '../engine/types.ts';
import { groupOf } from '../kv/kv-store.ts';
import type { MetaService } from '../meta/meta-service.ts';
import { PARTITION_ID_MAX } from '../meta/meta-state.ts';
import { refusalError } from '../meta/meta-wire.ts';
import type { Logger } from '../observability/logger.ts';
import type { RaftStatus } from '../raft/raft.ts';
import type { Entry } from '../raft/types.ts';
import type { GroupStatus } from '../replication/group-driver.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import { nodeOf } from '../replication/replica-id.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import type { ProposeResult } from '../replication/replication-results.ts';
import { awaitApplied } from './await-applied.ts';
import { CoalescedRun } from './coalesced-run.ts';
import { absorbProposal, freezeProposal } from './merge-command.ts';
import { retireAbsorbedGroup } from './merge-retire.ts';
import type { RangeRecord } from './split-command.ts';
import type { RoutingMap } from './split-coordinator.ts';

export const MERGE_RECONCILE_INTERVAL_MS = 500;
/** How long MergePartitions waits for the merge to apply on the answering node. */
export const MERGE_APPLY_WAIT_MS = 15_000;
const PROBE_DEADLINE_MS = 2000;
const FORWARD_DEADLINE_MS = 25_000;
const RETRY_SOON_MS = 50;
const STALE_EPOCH_RETRIES = 5;

/** What the coordinator needs from the Multi-Raft runtime (`MultiRaft` implements it). */
export interface MergeRaft {
  groups(): GroupId[];
  status(group: GroupId): GroupStatus | undefined;
  raftStatus(group: GroupId): RaftStatus | undefined;
  logEntries(group: GroupId, lo: number, hi: number): Entry[];
  rangeRecordOf(group: GroupId): RangeRecord | undefined;
  propose(group: GroupId, mutations: readonly DataMutation[]): Promise<ProposeResult>;
  removeGroup(group: GroupId): Promise<boolean>;
}

/** Other nodes' Admin `LocalReplica` (`PeerAdmin` implements it). */
export interface MergePeers {
  call<Req, Res>(address: string, method: string, req: Req, deadlineMs?: number): Promise<Res>;
}

export interface MergeCoordinatorOptions {
  readonly self: NodeId;
  readonly raft: MergeRaft;
  readonly meta: MetaService;
  /** The map this node routes by; default: the meta state. */
  readonly map?: () => RoutingMap;
  readonly peers: MergePeers;
  readonly addressOf: (node: NodeId) => string | undefined;
  readonly engine: StorageEngine;
  readonly log?: Logger;
  readonly intervalMs?: number;
  readonly applyWaitMs?: number;
}

export interface MergeOutcome {
  /** False when the map already had this merge (a repeated request). */
  readonly changed: boolean;
  readonly epoch: bigint;
  readonly leftId: number;
  readonly rightId: number;
  /** The merged range. */
  readonly start: bigint;
  readonly end: bigint;
  /** This node's replica of the left partition covers the merged range (false: not hosted here, or not yet). */
  readonly applied: boolean;
}

interface ReplicaView {
  readonly hosted: boolean;
  readonly applied: number;
  readonly voters: readonly string[];
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

function refuse(reason: string, message: string, details: Record<string, string> = {}): KeyVaError {
  return new KeyVaError('CONDITION_FAILED', `${message}; nothing was changed`, { reason, ...details });
}

export class MergeCoordinator {
  readonly stats = { freezesProposed: 0, absorbsProposed: 0, absorbsRefused: 0, groupsRetired: 0, proposalsFailed: 0, waitingForReplicas: 0 };
  private readonly o: MergeCoordinatorOptions;
  private readonly inflight = new Set<GroupId>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  /** The node is draining: calls waiting for an apply answer now (`drain`). */
  private draining = false;
  private readonly passes = new CoalescedRun(
    () => this.reconcile(),
    (e) => this.o.log?.warn({ err: e }, 'merge reconcile failed; will retry'),
  );
  private retry: ReturnType<typeof setTimeout> | undefined;

  constructor(o: MergeCoordinatorOptions) {
    this.o = o;
  }

  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => this.kick(), this.o.intervalMs ?? MERGE_RECONCILE_INTERVAL_MS);
    this.timer.unref();
    // After the other listeners (the routing table) saw the change.
    this.unsubscribe = this.o.meta.onChange(() => setImmediate(() => this.kick()));
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
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.unsubscribe?.();
    await this.passes.stop();
  }

  /** Runs a reconcile pass soon (coalesced). */
  kick(): void {
    if (!this.stopped) this.passes.request();
  }

  /** The Admin call (see the file comment). */
  async mergePartitions(leftId: number, rightId: number): Promise<MergeOutcome> {
    for (const [field, id] of [
      ['left_id', leftId],
      ['right_id', rightId],
    ] as const)
      if (!Number.isInteger(id) || id < 0 || id > PARTITION_ID_MAX) throw new KeyVaError('INVALID_ARGUMENT', `${field} ${id} is not a partition id`, { field });
    if (leftId === rightId)
      throw new KeyVaError('INVALID_ARGUMENT', `cannot merge partition ${leftId} with itself; nothing was changed`, { field: 'right_id' });
    for (let attempt = 0; ; attempt++) {
      await this.o.meta.readBarrier();
      const s = this.o.meta.state;
      if (s.epoch === 0n) throw new KeyVaError('UNAVAILABLE', 'the partition map is not bootstrapped yet; retry');
      const l = s.partitions.find((x) => x.id === leftId);
      const r = s.partitions.find((x) => x.id === rightId);
      if (l === undefined)
        throw new KeyVaError('INVALID_ARGUMENT', `partition ${leftId} does not exist (map epoch ${s.epoch}); nothing was changed`, { field: 'left_id' });
      if (r === undefined) {
        const right = this.o.raft.rangeRecordOf(groupOf(rightId));
        const absorbed = this.o.raft.rangeRecordOf(groupOf(leftId))?.absorbed?.find((a) => a.group === groupOf(rightId));
        // Already merged into `left` (this node still hosts the right group inside left's range, or its left group absorbed it).
        const inLeft = (x: { start: bigint; end: bigint } | undefined) => x !== undefined && x.start >= l.start && x.end <= l.end && x.start > l.start;
        if (inLeft(absorbed) || inLeft(right)) return this.finish(false, s.epoch, leftId, rightId, l.start, l.end);
        throw new KeyVaError('INVALID_ARGUMENT', `partition ${rightId} does not exist (map epoch ${s.epoch}); nothing was changed`, { field: 'right_id' });
      }
      if (l.end !== r.start)
        throw new KeyVaError(
          'INVALID_ARGUMENT',
          `partitions ${leftId} [${l.start}, ${l.end}) and ${rightId} [${r.start}, ${r.end}) are not adjacent (the left one must end where the right one starts); nothing was changed`,
          { field: 'right_id', reason: 'notAdjacent' },
        );
      if (!sameSet(l.replicas, r.replicas))
        throw refuse(
          'replicasDiffer',
          `partitions ${leftId} (on ${l.replicas.join(', ')}) and ${rightId} (on ${r.replicas.join(', ')}) are not on the same nodes; move one first`,
          { leftReplicas: l.replicas.join(','), rightReplicas: r.replicas.join(',') },
        );
      await this.checkLive(leftId, rightId, l.replicas);
      let res: Awaited<ReturnType<MetaService['proposeMetaChange']>>;
      try {
        // Not forwarded as a bare map change (UpdatePartitionMap refuses merges): on a follower of
        // the meta group the whole call goes to its leader, which checks again and records it.
        res = await this.o.meta.proposeMetaChange({
          kind: 'mergePartitions',
          leftId: leftId as PartitionId,
          rightId: rightId as PartitionId,
          expectedEpoch: s.epoch,
        });
      } catch (e) {
        const address = e instanceof KeyVaError && e.code === 'NOT_LEADER' ? e.details.leaderAddress : undefined;
        if (address === undefined || address === '') throw e;
        const f = await this.o.peers.call<object, MergePartitionsResponseOut>(address, 'MergePartitions', { leftId, rightId }, FORWARD_DEADLINE_MS);
        this.kick();
        const end = BigInt(f.end) === 0n ? HASH_SPACE_END : BigInt(f.end);
        return this.finish(f.changed, BigInt(f.epoch), leftId, rightId, BigInt(f.start), end);
      }
      if (res.ok) {
        this.o.log?.info({ leftId, rightId, epoch: res.epoch.toString() }, 'merge: recorded in the partition map');
        this.kick();
        return this.finish(true, res.epoch, leftId, rightId, l.start, r.end);
      }
      if (res.reason !== 'staleEpoch' || attempt >= STALE_EPOCH_RETRIES) throw refusalError(res);
    }
  }

  /** Every replica answers, hosts both groups, and both groups have the map's voters (no learners). */
  private async checkLive(leftId: number, rightId: number, replicas: readonly NodeId[]): Promise<void> {
    for (const node of replicas) {
      for (const id of [leftId, rightId]) {
        const v = await this.replicaView(node, groupOf(id));
        if (v === undefined || !v.hosted)
          throw refuse('replicaUnavailable', `node ${node} ${v === undefined ? 'does not answer' : `does not host partition ${id}`}`, { nodeId: node });
        if (!sameSet(v.voters, replicas))
          throw refuse('membershipDiffers', `partition ${id}'s Raft voters on node ${node} are ${v.voters.join(', ')}, not the map's ${replicas.join(', ')}`, {
            nodeId: node,
            partitionId: String(id),
          });
      }
    }
    for (const id of [leftId, rightId]) {
      const g = groupOf(id);
      const rs = this.o.raft.raftStatus(g);
      if (rs !== undefined && rs.confState.learners.length > 0)
        throw refuse('membershipDiffers', `partition ${id} has learners (a replica move is in progress)`, { partitionId: String(id) });
      const rec = this.o.raft.rangeRecordOf(g);
      if (rec?.frozen !== undefined) throw refuse('mergeInProgress', `partition ${id} is being merged already`, { partitionId: String(id) });
    }
  }

  /** A node's replica of `group`: locally from the runtime, else through its Admin `LocalReplica`; undefined if it does not answer. */
  private async replicaView(node: NodeId, group: GroupId): Promise<ReplicaView | undefined> {
    if (node === this.o.self) {
      const st = this.o.raft.status(group);
      return st === undefined ? { hosted: false, applied: 0, voters: [] } : { hosted: true, applied: st.applied.index, voters: st.voters };
    }
    const address = this.o.addressOf(node);
    if (address === undefined) return undefined;
    try {
      const r = await this.o.peers.call<object, LocalReplicaResponse>(address, 'LocalReplica', { partitionId: group - 1 }, PROBE_DEADLINE_MS);
      return { hosted: r.hosted === true, applied: Number(r.appliedIndex ?? 0), voters: r.voters ?? [] };
    } catch {
      return undefined;
    }
  }

  private async finish(changed: boolean, epoch: bigint, leftId: number, rightId: number, start: bigint, end: bigint): Promise<MergeOutcome> {
    const g = groupOf(leftId);
    const applied = await awaitApplied({
      applied: () => {
        const rec = this.o.raft.rangeRecordOf(g);
        return rec !== undefined && rec.end >= end;
      },
      gone: () => this.o.raft.rangeRecordOf(g) === undefined || this.stopped || this.draining,
      nudge: () => this.kick(),
      waitMs: this.o.applyWaitMs ?? MERGE_APPLY_WAIT_MS,
      pollMs: 25,
    });
    return { changed, epoch, leftId, rightId, start, end, applied };
  }

  /** One reconcile pass now (the timer and map changes run them otherwise). */
  async reconcileNow(): Promise<void> {
    await this.passes.idle();
    await this.reconcile();
  }

  private async reconcile(): Promise<void> {
    // The newer of the routing map and this node's meta state (a node without a meta replica has only the first).
    const routing = this.o.map?.();
    const s = routing === undefined || this.o.meta.state.epoch >= routing.epoch ? this.o.meta.state : routing;
    if (s.epoch === 0n) return;
    const hosted = this.o.raft.groups().filter((g) => g !== 0);
    // 3. Retire groups a local group absorbed.
    for (const g of hosted) {
      for (const a of this.o.raft.rangeRecordOf(g)?.absorbed ?? []) {
        if (!this.o.raft.groups().includes(a.group) || this.inflight.has(a.group)) continue;
        this.inflight.add(a.group);
        try {
          const moved = await retireAbsorbedGroup(this.o.engine, this.o.raft, a.group, g);
          this.stats.groupsRetired++;
          this.o.log?.info({ group: a.group, into: g, requestRecordIndexMoved: moved }, 'merge: the absorbed group is retired here (its rows stay)');
        } finally {
          this.inflight.delete(a.group);
        }
      }
    }
    // The routing map may trail this node's data plane (a split child exists here before the map
    // shows it, which looks like a merge): act only on a map confirmed with the meta group.
    // Every group is looked at on every pass (twice a second): one map lookup each, and a group's
    // status only once its range and the map's entry differ (never in the steady state).
    const listedOf = new Map<GroupId, RoutingMap['partitions'][number]>();
    for (const p of s.partitions) if (!listedOf.has(groupOf(p.id))) listedOf.set(groupOf(p.id), p);
    let confirmed: RoutingMap | undefined;
    for (const g of this.o.raft.groups()) {
      if (g === 0 || this.inflight.has(g)) continue;
      const rec = this.o.raft.rangeRecordOf(g);
      if (rec === undefined || rec.frozen !== undefined) continue;
      const candidate = listedOf.get(g);
      if (candidate !== undefined && !(candidate.start === rec.start && candidate.end > rec.end)) continue;
      const st = this.o.raft.status(g);
      if (st === undefined || !st.serving) continue;
      if (confirmed === undefined) {
        await this.o.meta.readBarrier();
        confirmed = this.o.meta.state;
      }
      if (confirmed.epoch === 0n) return;
      const listed = confirmed.partitions.find((p) => groupOf(p.id) === g);
      if (listed === undefined) {
        // 1. Merged away in the map: the partition covering this group's start begins before it.
        const cover = confirmed.partitions.find((p) => p.start <= rec.start && rec.start < p.end);
        if (cover !== undefined && cover.start < rec.start && cover.end >= rec.end) this.proposeFreeze(g, groupOf(cover.id), rec);
      } else if (listed.start === rec.start && listed.end > rec.end) {
        // 2. The map extends this group: absorb the frozen group that starts at its end.
        const right = this.o.raft.groups().find((x) => {
          const r = this.o.raft.rangeRecordOf(x);
          return x !== g && r !== undefined && r.start === rec.end && r.frozen?.into === g;
        });
        if (right !== undefined) await this.maybeAbsorb(g, rec, right);
      }
    }
  }

  private pendingConfChange(g: GroupId): RaftStatus | undefined {
    const rs = this.o.raft.raftStatus(g);
    if (rs === undefined) return undefined;
    return this.o.raft.logEntries(g, rs.applied + 1, rs.lastIndex + 1).some((e) => e.type === 'confChange') ? undefined : rs;
  }

  private proposeFreeze(g: GroupId, into: GroupId, rec: RangeRecord): void {
    // The freeze names the membership every replica must confirm: wait while a change is pending.
    const rs = this.pendingConfChange(g);
    if (rs === undefined) return;
    const c = { into, start: rec.start, end: rec.end, voters: [...rs.confState.voters], learners: [...rs.confState.learners] };
    this.o.log?.info({ group: g, into }, 'merge: freezing the group through its log');
    this.track(g, this.o.raft.propose(g, freezeProposal(c)), 'freeze');
  }

  private async maybeAbsorb(g: GroupId, rec: RangeRecord, right: GroupId): Promise<void> {
    const rr = this.o.raft.rangeRecordOf(right);
    const frozen = rr?.frozen;
    const rightStatus = this.pendingConfChange(right);
    const leftStatus = this.pendingConfChange(g);
    if (rr === undefined || frozen === undefined || rightStatus === undefined || leftStatus === undefined) return;
    const voters = rightStatus.confState.voters.map((r) => nodeOf(r) as NodeId);
    const learners = rightStatus.confState.learners.map((r) => nodeOf(r) as NodeId);
    // The left group's replicas at the absorb's position are exactly those that froze the right one.
    if (!sameSet(leftStatus.confState.voters, rightStatus.confState.voters) || !sameSet(leftStatus.confState.learners, rightStatus.confState.learners)) {
      this.stats.waitingForReplicas++;
      this.o.log?.warn({ group: g, right }, 'merge: the two groups have different memberships; waiting before the absorb');
      return;
    }
    // Every replica of the frozen group applied the freeze.
    for (const node of [...voters, ...learners]) {
      const v = await this.replicaView(node, right);
      if (v === undefined || !v.hosted || v.applied < frozen.index) {
        this.stats.waitingForReplicas++;
        // Followers apply the freeze moments after this node: look again soon, not at the next timer pass.
        if (v !== undefined && this.retry === undefined && !this.stopped)
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.kick();
          }, RETRY_SOON_MS);
        this.o.log?.info({ group: g, right, node, applied: v?.applied, freezeIndex: frozen.index }, 'merge: waiting for a replica to apply the freeze');
        return;
      }
    }
    if (this.inflight.has(g) || this.o.raft.status(g)?.serving !== true) return;
    this.o.log?.info({ group: g, right, freezeIndex: frozen.index }, 'merge: absorbing the frozen group through the log');
    // The replicas just confirmed: the left group's replicas must be exactly these at the absorb's position (checked on apply).
    const confirmed = { voters: [...rightStatus.confState.voters], learners: [...rightStatus.confState.learners] };
    this.track(g, this.o.raft.propose(g, absorbProposal({ group: right, start: rr.start, end: rr.end, freezeIndex: frozen.index, confirmed })), 'absorb');
    void rec;
  }

  private track(g: GroupId, p: Promise<ProposeResult>, what: 'freeze' | 'absorb'): void {
    this.inflight.add(g);
    if (what === 'freeze') this.stats.freezesProposed++;
    else this.stats.absorbsProposed++;
    p.then(
      (r) => {
        this.inflight.delete(g);
        // Applied: the next step (after this turn of the event loop, never a tight loop).
        if (r.ok) setImmediate(() => this.kick());
        else this.stats.proposalsFailed++;
      },
      (e: unknown) => {
        this.inflight.delete(g);
        this.stats.proposalsFailed++;
        if (what === 'absorb' && e instanceof KeyVaError && e.code === 'WRONG_PARTITION') {
          // Refused on apply, on every replica alike, nothing written: the group's membership (or range) at its log position did not match.
          this.stats.absorbsRefused++;
          this.o.log?.warn(
            { group: g, membership: this.o.raft.raftStatus(g)?.confState },
            'merge: absorb refused on apply (the membership at its log position is not the one that confirmed the freeze); the right group stays frozen, retried once the memberships are equal',
          );
          return;
        }
        this.o.log?.debug({ err: e, group: g }, `merge ${what} not applied; the next reconcile pass retries`);
      },
    );
  }
}
