/**
 * Replica membership of the partition groups on this node (the data-plane half of placement):
 * what a placement controller calls through the Admin API, and the node-to-node steps behind it.
 *
 * Leader side (served by the partition's Raft leader; NOT_LEADER with the leader hint elsewhere).
 * Each call is idempotent — its goal is checked against the applied membership first, so a
 * controller that crashed may send it again — and maps to one Raft conf change through the
 * group's log (the core refuses a second one while one is pending: UNAVAILABLE, retry):
 * - `addLearner`: asks the node to host an empty replica (`HostReplica`, durable on that node),
 *   then proposes AddLearner; the leader catches the learner up by snapshot and log;
 * - `promoteLearner`: only when the learner acknowledged log entries and its match index is within `lagMax` of the leader's last
 *   index (CONDITION_FAILED learnerBehind otherwise);
 * - `removeReplica`: refused below the replication factor (unless `force`) and for the leader
 *   itself (transfer first); once applied, the leader asks the removed node to drop its replica
 *   (`DropReplica` with the removal entry's index and term), retrying for a few seconds;
 * - `transferLeader`, `replicas` (per replica: role, match, applied, caught up).
 * Each answers once the change is applied on the leader (or DEADLINE_EXCEEDED: outcome unknown,
 * call again).
 *
 * Target side: `hostReplica` creates an empty group that waits for its leader's snapshot (never
 * from an unsolicited Raft message); `dropReplica` stops the group and deletes its data only when
 * this replica can confirm its own removal (`removalConfirmed`): never for a group it still
 * belongs to. A background sweep drops replicas whose own log shows their applied removal (the
 * leader's DropReplica may not have reached them).
 */
import type { NodeId } from '@keyva/client/keyspace';
import type {
  DropReplicaResponse,
  HostReplicaResponse,
  LocalReplicaResponse,
  LocalReplicaResponseOut,
  MembershipChangeResponse,
  PartitionReplicasResponse,
  ReplicaStatus,
  TransferLeaderResponse,
} from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import type { StorageEngine } from '../engine/types.ts';
import type { PartitionSize } from '../kv/partition-size.ts';
import type { Logger } from '../observability/logger.ts';
import { isLearner, isMember, isVoter } from '../raft/conf-change.ts';
import type { RaftStatus } from '../raft/raft.ts';
import { Refusal } from '../raft/results.ts';
import { type ConfChange, ConfChangeType, type ConfState, type Entry, type ReplicaId, Role } from '../raft/types.ts';
import type { GroupContent } from '../replication/group-state-machine.ts';
import { GROUPS_MAX, type MultiRaft, NO_RANGE } from '../replication/multi-raft.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import { nodeOf, replicaOf } from '../replication/replica-id.ts';
import type { PeerAdmin } from './peer-admin.ts';
import { dropGroupData, writeHosting } from './replica-hosting.ts';

/** A learner may be promoted when its match index trails the leader's last index by at most this. */
export const PROMOTE_LAG_MAX = 100;

/**
 * A replica is caught up when it acknowledged part of the log (match > 0: in a short log a replica
 * that never answered would otherwise count, and promoting a dead learner can cost the quorum)
 * and trails the leader's last index by at most `lagMax`.
 */
function caughtUp(match: number, lastIndex: number, lagMax: number): boolean {
  return match > 0 && match + lagMax >= lastIndex;
}
/**
 * A learner is added only once the leader's log keeps at most this many entries past its snapshot
 * (a longer log is compacted first): the learner then gets one streamed snapshot instead of a
 * replay of the log entry by entry, which took ~27 s for 10,000 entries here and stalled the
 * leader's event loop while it packed them (issue #4's move benchmark).
 */
export const LEARNER_LOG_REPLAY_MAX = 1_000;
/** How long `addLearner` waits for that compaction before adding the learner anyway. */
export const LEARNER_COMPACT_WAIT_MS = 5_000;
/** How long a change may take to commit and apply on the leader before the answer is "unknown". */
export const CONF_CHANGE_TIMEOUT_MS = 10_000;
export const TRANSFER_TIMEOUT_MS = 5_000;
/** How long the leader keeps asking a removed node to drop its replica. */
export const DROP_RETRY_MS = 5_000;
export const SWEEP_INTERVAL_MS = 1_000;
/**
 * A replica that counts itself a member but has heard no leader for this long asks the other
 * nodes whether it was removed while it was away (its own log then never shows the removal).
 */
export const ORPHAN_CHECK_AFTER_MS = 10_000;
/**
 * The partition id that names the meta group (group 0) in this API: one past the largest
 * partition id (never a partition). The Admin wire carries `meta_group` instead.
 */
export const META_PARTITION = 0xffff_ffff;
const POLL_MS = 10;

export interface MembershipStats {
  confChangesProposed: number;
  replicasHosted: number;
  replicasDropped: number;
  dropsRefused: number;
  dropsUnconfirmed: number;
}

export interface ReplicaMembershipOptions {
  readonly self: NodeId;
  readonly raft: MultiRaft;
  readonly engine: StorageEngine;
  /** Voters a group keeps at least, unless a removal is forced. */
  readonly replicationFactor: number;
  /** The partition's hash range from the map (what AddLearner tells the new replica). */
  readonly rangeOf: (partitionId: number) => HashRange | undefined;
  /** gRPC address of a node (registry, then --peers). */
  readonly addressOf: (node: NodeId) => string | undefined;
  readonly peers: PeerAdmin;
  readonly log?: Logger;
  readonly lagMax?: number;
  readonly confChangeTimeoutMs?: number;
  readonly transferTimeoutMs?: number;
  readonly dropRetryMs?: number;
  readonly sweepIntervalMs?: number;
  /** The live data size of a partition's range, reported by `replicas` (placement's size splits). */
  readonly sizeOf?: (group: GroupId, range: HashRange) => Promise<PartitionSize>;
  /** Keys read and written per second on this node (the leader's: all of a partition's load). */
  readonly loadOf?: (partitionId: number) => number;
  /** The meta group's content (its state machine), so this node can host a meta replica it is asked to. */
  readonly metaContent?: GroupContent;
  /** Nodes to ask, beyond a group's own members, whether a replica here was removed while away (the registry). */
  readonly knownNodes?: () => readonly NodeId[];
  /** How long a replica that counts itself a member may hear no leader before it asks (default `ORPHAN_CHECK_AFTER_MS`). */
  readonly orphanCheckAfterMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function refused(reason: string, message: string, details: Record<string, string> = {}): KeyVaError {
  return new KeyVaError('CONDITION_FAILED', message, { reason, ...details });
}

function groupOf(partitionId: number): GroupId {
  if (partitionId === META_PARTITION) return 0;
  if (!Number.isInteger(partitionId) || partitionId < 0 || partitionId > 0xffff_fffe)
    throw new KeyVaError('INVALID_ARGUMENT', `partition_id ${partitionId} is not a partition id`, { field: 'partition_id' });
  return partitionId + 1;
}

/** A group's name in messages. */
function what(partitionId: number): string {
  return partitionId === META_PARTITION ? 'the meta group' : `partition ${partitionId}`;
}

/** What a Peer Admin request names: a partition, or the meta group. */
function target(partitionId: number): { partitionId: number; metaGroup?: true } {
  return partitionId === META_PARTITION ? { partitionId: 0, metaGroup: true } : { partitionId };
}

function checkNodeId(id: string, field: string): NodeId {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id)) throw new KeyVaError('INVALID_ARGUMENT', `${field} '${id}' is not a node id`, { field });
  return id as NodeId;
}

/** Whether this replica's own log shows it removed by a committed, applied entry (and not re-added). */
export function removalConfirmed(
  self: ReplicaId,
  st: Pick<RaftStatus, 'applied' | 'confState' | 'lastIndex'>,
  entries: readonly Entry[],
  proof?: { index: number; term: number },
): boolean {
  const changesOfSelf = entries.filter((e): e is Extract<Entry, { type: 'confChange' }> => e.type === 'confChange' && e.change.replica === self);
  const lastRemoval = (upTo: number) => [...changesOfSelf].reverse().find((e) => e.index <= upTo && e.change.type === ConfChangeType.RemoveReplica);
  const readdedAfter = (index: number) => changesOfSelf.some((e) => e.index > index && e.change.type === ConfChangeType.AddLearner);
  // 1. Applied here: not a member any more, and the removal is in the applied log.
  if (!isMember(st.confState, self)) {
    const r = lastRemoval(st.applied);
    if (r !== undefined && !readdedAfter(r.index)) return true;
  }
  // 2. The leader applied the removal at (index, term): a committed entry; our log holds the same one.
  if (proof !== undefined && proof.index > 0) {
    const e = changesOfSelf.find((x) => x.index === proof.index);
    if (e !== undefined && e.term === proof.term && e.change.type === ConfChangeType.RemoveReplica && !readdedAfter(e.index)) return true;
  }
  return false;
}

/** WRONG_PARTITION: `self` hosts no replica of the partition (or the meta group). */
export function notHostedError(self: NodeId, partitionId: number): KeyVaError {
  return new KeyVaError('WRONG_PARTITION', `${what(partitionId)} is not hosted on node ${self}`, { partitionId: String(partitionId) });
}

/** NOT_LEADER with the leader's id and address as hints (empty when unknown). */
export function notLeaderError(self: NodeId, partitionId: number, leader: NodeId | undefined, addressOf: (node: NodeId) => string | undefined): KeyVaError {
  const details: Record<string, string> = { partitionId: String(partitionId), leaderHint: leader ?? '', leaderAddress: '' };
  if (leader !== undefined) details.leaderAddress = addressOf(leader) ?? '';
  return new KeyVaError(
    'NOT_LEADER',
    `node ${self} does not lead ${what(partitionId)}${leader === undefined ? ' (no leader known)' : `; its leader is ${leader}`}`,
    details,
  );
}

export class ReplicaMembership {
  readonly stats: MembershipStats = { confChangesProposed: 0, replicasHosted: 0, replicasDropped: 0, dropsRefused: 0, dropsUnconfirmed: 0 };
  private readonly o: ReplicaMembershipOptions;
  /** One membership operation per group at a time on this node. */
  private readonly locks = new Map<GroupId, Promise<unknown>>();
  /** Recent removals this leader applied, to re-send DropReplica when RemoveReplica is repeated. */
  private readonly removals = new Map<string, { index: number; term: number }>();
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  /** Member replicas with no known leader, since when (see `ORPHAN_CHECK_AFTER_MS`). */
  private readonly leaderlessSince = new Map<GroupId, number>();
  /** Groups being dropped (stopped in the runtime, their data not yet deleted), with the range the drop deletes. */
  private readonly dropsInFlight = new Map<GroupId, HashRange>();

  constructor(o: ReplicaMembershipOptions) {
    this.o = o;
  }

  /**
   * A replica of `group` is being dropped here right now (between stopping it and its synced
   * tombstone): nothing else may host the group meanwhile (the split reconciler would otherwise
   * see the group gone while the map still lists this node, and host an empty orphan).
   */
  isDropping(group: GroupId): boolean {
    return this.dropsInFlight.has(group);
  }

  /** A drop in flight here is deleting rows of `range` (nothing may be hosted over them meanwhile). */
  dropOverlaps(range: HashRange): boolean {
    for (const r of this.dropsInFlight.values()) if (r.start < range.end && range.start < r.end) return true;
    return false;
  }

  /** Starts the background sweep (drops replicas whose own log shows their removal). */
  start(): void {
    if (this.sweepTimer !== undefined || this.stopped) return;
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((e) => this.o.log?.warn({ err: e }, 'replica sweep failed'));
    }, this.o.sweepIntervalMs ?? SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    await Promise.all([...this.locks.values()].map((p) => p.catch(() => undefined)));
  }

  // --- leader side ------------------------------------------------------------------------------

  addLearner(partitionId: number, nodeIdText: string): Promise<MembershipChangeResponse> {
    const group = groupOf(partitionId);
    const node = checkNodeId(nodeIdText, 'node_id');
    return this.exclusive(group, async () => {
      const st = this.leaderStatus(group, partitionId);
      const rid = replicaOf(node);
      if (isMember(st.confState, rid)) return { changed: false, replicas: await this.replicasOf(group, partitionId), dropped: false };
      const address = this.o.addressOf(node);
      if (address === undefined) throw refused('unknownNode', `node ${node} has no known address (register it first)`, { nodeId: node });
      const range = group === 0 ? NO_RANGE : (this.o.raft.rangeOf(group) ?? this.o.rangeOf(partitionId));
      if (range === undefined) throw new KeyVaError('INTERNAL', `${what(partitionId)}: no hash range known`);
      // The new replica must exist (empty) before the leader sends it anything.
      try {
        await this.o.peers.call(address, 'HostReplica', {
          ...target(partitionId),
          start: range.start.toString(),
          end: range.end === 1n << 64n ? '0' : range.end.toString(),
        });
      } catch (e) {
        throw new KeyVaError(
          'UNAVAILABLE',
          `node ${node} could not be asked to host ${what(partitionId)} (${(e as Error).message}); nothing was proposed, retry`,
          { nodeId: node, partitionId: String(partitionId) },
          { cause: e },
        );
      }
      await this.compactForLearner(group);
      await this.change(group, partitionId, { type: ConfChangeType.AddLearner, replica: rid }, (c) => isMember(c, rid));
      return { changed: true, replicas: await this.replicasOf(group, partitionId), dropped: false };
    });
  }

  /** Compacts a long log before a learner joins (see `LEARNER_LOG_REPLAY_MAX`); bounded wait, never fails. */
  private async compactForLearner(group: GroupId): Promise<void> {
    const applied = this.o.raft.raftStatus(group)?.applied;
    const snapshot = this.o.raft.snapshotIndex(group);
    if (applied === undefined || snapshot === undefined || applied - snapshot <= LEARNER_LOG_REPLAY_MAX) return;
    const until = Date.now() + LEARNER_COMPACT_WAIT_MS;
    while (!this.stopped && (this.o.raft.snapshotIndex(group) ?? applied) < applied && Date.now() < until) {
      this.o.raft.compactSoon(group);
      await sleep(POLL_MS * 2);
    }
  }

  promoteLearner(partitionId: number, nodeIdText: string): Promise<MembershipChangeResponse> {
    const group = groupOf(partitionId);
    const node = checkNodeId(nodeIdText, 'node_id');
    return this.exclusive(group, async () => {
      const st = this.leaderStatus(group, partitionId);
      const rid = replicaOf(node);
      if (isVoter(st.confState, rid)) return { changed: false, replicas: await this.replicasOf(group, partitionId), dropped: false };
      if (!isLearner(st.confState, rid))
        throw refused('notLearner', `node ${node} is not a learner of ${what(partitionId)}: AddLearner first`, {
          nodeId: node,
          partitionId: String(partitionId),
        });
      const match = st.progress.get(rid)?.match ?? 0;
      const lagMax = this.o.lagMax ?? PROMOTE_LAG_MAX;
      if (!caughtUp(match, st.lastIndex, lagMax))
        throw refused(
          'learnerBehind',
          match === 0
            ? `learner ${node} of ${what(partitionId)} has not acknowledged any log entry yet (down or unreachable?): promoting it could cost the group its quorum; retry once it caught up`
            : `learner ${node} of ${what(partitionId)} is not caught up: match index ${match}, leader's last index ${st.lastIndex} (at most ${lagMax} behind); retry later`,
          { nodeId: node, partitionId: String(partitionId), matchIndex: String(match), lastIndex: String(st.lastIndex), lagMax: String(lagMax) },
        );
      await this.change(group, partitionId, { type: ConfChangeType.PromoteLearner, replica: rid }, (c) => isVoter(c, rid));
      return { changed: true, replicas: await this.replicasOf(group, partitionId), dropped: false };
    });
  }

  removeReplica(partitionId: number, nodeIdText: string, force: boolean): Promise<MembershipChangeResponse> {
    const group = groupOf(partitionId);
    const node = checkNodeId(nodeIdText, 'node_id');
    return this.exclusive(group, async () => {
      const st = this.leaderStatus(group, partitionId);
      const rid = replicaOf(node);
      const key = `${group}/${node}`;
      if (!isMember(st.confState, rid)) {
        // Already removed: make sure the node dropped its replica (a repeated call after a crash).
        const proof = this.removals.get(key);
        const dropped = proof === undefined ? false : await this.askDrop(node, partitionId, proof, 1);
        return { changed: false, replicas: await this.replicasOf(group, partitionId), dropped };
      }
      if (node === this.o.self)
        throw refused('removingLeader', `node ${node} leads ${what(partitionId)}: TransferLeader to another voter first`, {
          partitionId: String(partitionId),
        });
      const rf = this.o.replicationFactor;
      if (isVoter(st.confState, rid) && !force) {
        // Count what remains by health at execution time, not by membership: a removal planned
        // before another voter went down must not leave fewer than RF working copies (ADR 0009).
        const remaining = (await this.replicasOf(group, partitionId)).replicas?.filter((r) => r.role === 'VOTER' && r.nodeId !== node) ?? [];
        const healthy = remaining.filter((r) => r.reachable && r.caughtUp).length;
        if (healthy < rf)
          throw refused(
            'belowReplicationFactor',
            `removing voter ${node} would leave ${what(partitionId)} ${healthy} reachable caught-up voters (of ${remaining.length}), below the replication factor ${rf}; add and promote a replacement first (or bring the others back), or set force`,
            { partitionId: String(partitionId), voters: String(st.confState.voters.length), healthyRemaining: String(healthy), replicationFactor: String(rf) },
          );
      }
      const at = await this.change(group, partitionId, { type: ConfChangeType.RemoveReplica, replica: rid }, (c) => !isMember(c, rid));
      this.removals.set(key, at);
      if (this.removals.size > 1024) this.removals.delete(this.removals.keys().next().value as string);
      const dropped = await this.askDrop(node, partitionId, at, this.o.dropRetryMs ?? DROP_RETRY_MS);
      return { changed: true, replicas: await this.replicasOf(group, partitionId), dropped };
    });
  }

  async transferLeader(partitionId: number, toText: string): Promise<TransferLeaderResponse> {
    const group = groupOf(partitionId);
    const to = checkNodeId(toText, 'to_node_id');
    const s = this.o.raft.status(group);
    if (s?.leader === to) return { changed: false, leader: to };
    this.leaderStatus(group, partitionId);
    const r = this.o.raft.transferLeader(group, to);
    if (r === undefined) throw this.notHosted(partitionId);
    if (!r.ok) {
      if (r.reason === Refusal.NotVoter) throw refused('notVoter', `node ${to} is not a voter of ${what(partitionId)}`, { nodeId: to });
      throw this.refusalError(group, partitionId, r.reason, r.leader);
    }
    const end = Date.now() + (this.o.transferTimeoutMs ?? TRANSFER_TIMEOUT_MS);
    while (Date.now() < end) {
      const now = this.o.raft.status(group);
      if (now?.leader === to) return { changed: true, leader: to };
      await sleep(POLL_MS);
    }
    throw new KeyVaError('UNAVAILABLE', `${what(partitionId)}: leadership did not move to ${to} in time (abandoned); retry`, {
      partitionId: String(partitionId),
    });
  }

  /**
   * Admin `GetPartitionReplicas` on the leader. `leaderViewOnly`: no other replica is asked its
   * applied index (their `appliedIndex` 0, `reachable` false): one call instead of one per replica,
   * for a controller that polls every partition.
   */
  async replicas(partitionId: number, leaderViewOnly = false): Promise<PartitionReplicasResponse> {
    const group = groupOf(partitionId);
    this.leaderStatus(group, partitionId);
    return this.replicasOf(group, partitionId, leaderViewOnly);
  }

  /**
   * Admin `ListPartitionReplicas`: the leader's view (as `replicas(id, true)`) of each listed
   * partition this node leads and serves; the others are left out. Refuses more than GROUPS_MAX ids.
   */
  async leaderViews(partitionIds: readonly number[]): Promise<PartitionReplicasResponse[]> {
    if (partitionIds.length > GROUPS_MAX)
      throw new KeyVaError('INVALID_ARGUMENT', `at most ${GROUPS_MAX} partition ids per call, got ${partitionIds.length}`, { field: 'partition_ids' });
    const ids = [...new Set(partitionIds)];
    for (const id of ids) groupOf(id); // an id that is not a partition id refuses the call
    // A partition this node does not lead and serve (or does not host) answers an error: left out.
    const views = await Promise.all(ids.map((id) => this.replicas(id, true).catch(() => undefined)));
    return views.filter((v) => v !== undefined);
  }

  // --- target side ------------------------------------------------------------------------------

  hostReplica(partitionId: number, range: HashRange): Promise<HostReplicaResponse> {
    const group = groupOf(partitionId);
    const meta = group === 0;
    if (meta && this.o.metaContent === undefined)
      throw refused('noMetaContent', `node ${this.o.self} cannot host a meta replica (it runs without a meta state machine)`);
    if (!meta && (range.start < 0n || range.end <= range.start || range.end > 1n << 64n))
      throw new KeyVaError('INVALID_ARGUMENT', `HostReplica: [${range.start}, ${range.end}) is not a hash range`, { field: 'start' });
    return this.exclusive(group, async () => {
      if (this.o.raft.status(group) !== undefined) return { changed: false };
      if (!meta) this.refuseOverlap(group, partitionId, range);
      await writeHosting(this.o.engine, group, meta ? NO_RANGE : range);
      await this.o.raft.addGroup(meta ? { group, range: NO_RANGE, content: this.o.metaContent } : { group, range });
      this.stats.replicasHosted++;
      this.o.log?.info({ group, partitionId }, 'hosting an empty replica: waiting for the leader');
      return { changed: true };
    });
  }

  dropReplica(partitionId: number, proof: { index: number; term: number }): Promise<DropReplicaResponse> {
    const group = groupOf(partitionId);
    return this.exclusive(group, async () => {
      const st = this.o.raft.raftStatus(group);
      if (st === undefined) return { changed: false };
      const entries = this.o.raft.logEntries(group, st.firstIndex, st.lastIndex + 1);
      if (!removalConfirmed(replicaOf(this.o.self), st, entries, proof)) {
        this.stats.dropsRefused++;
        throw refused(
          'cannotConfirmRemoval',
          `node ${this.o.self} cannot confirm its removal from ${what(partitionId)} (entry ${proof.index} of term ${proof.term} is not in its log, and its applied membership includes it); nothing deleted`,
          { partitionId: String(partitionId) },
        );
      }
      await this.drop(group, partitionId);
      return { changed: true };
    });
  }

  /** This node's view of its replica of a partition's group (or of the meta group, group 0). */
  localReplica(partitionId: number, metaGroup = false): LocalReplicaResponse {
    const group = metaGroup ? 0 : groupOf(partitionId);
    const s = this.o.raft.status(group);
    if (s === undefined)
      return { hosted: false, appliedIndex: '0', lastIndex: '0', term: '0', leader: '', lastTerm: '0', commitIndex: '0', voters: [], learners: [] };
    return {
      hosted: true,
      appliedIndex: String(s.applied.index),
      lastIndex: String(s.lastIndex),
      term: String(s.term),
      leader: s.leader ?? '',
      lastTerm: String(this.o.raft.logTerm(group, s.lastIndex) ?? 0),
      commitIndex: String(s.commit),
      voters: [...s.voters],
      learners: (this.o.raft.raftStatus(group)?.confState.learners ?? []).map((r) => nodeOf(r)),
    };
  }

  // --- internals --------------------------------------------------------------------------------

  /**
   * Data rows on a node are shared by hash, not by group: two groups hosted here must never own
   * overlapping ranges, else one group's writes, snapshot install or drop change the other's rows
   * (docs/adr/0010-splits.md "Replica divergence found by digests"). That happens for a moment
   * around a split: a replica of the parent that has not applied the split yet still owns the
   * child's range (or a drop of it is deleting that range). Hosting the other side then is refused
   * (retryable, nothing changed): the split applies or the drop finishes, and the caller retries.
   */
  private refuseOverlap(group: GroupId, partitionId: number, range: HashRange): void {
    const owners: [GroupId, HashRange | undefined][] = [
      ...this.o.raft.groups().map((g): [GroupId, HashRange | undefined] => [g, g === 0 ? undefined : this.o.raft.rangeOf(g)]),
      ...this.dropsInFlight,
    ];
    for (const [g, r] of owners) {
      if (g === group || r === undefined || !(r.start < range.end && range.start < r.end)) continue;
      throw new KeyVaError(
        'UNAVAILABLE',
        `node ${this.o.self} cannot host ${what(partitionId)} over [${range.start}, ${range.end}) yet: group ${g} here still owns [${r.start}, ${r.end}) (a split or a drop is being applied); nothing changed, retry`,
        { partitionId: String(partitionId), overlappingGroup: String(g) },
      );
    }
  }

  private async drop(group: GroupId, partitionId: number): Promise<void> {
    const range = this.o.raft.rangeOf(group) ?? { start: 0n, end: 0n };
    this.dropsInFlight.set(group, range);
    let rawRows: number;
    try {
      await this.o.raft.removeGroup(group);
      ({ rawRows } = await dropGroupData(this.o.engine, group, range));
    } finally {
      this.dropsInFlight.delete(group);
    }
    this.stats.replicasDropped++;
    this.o.log?.info({ group, partitionId, rawRows }, 'removed from the group: replica stopped and its data deleted');
  }

  /** Drops hosted data groups whose own applied log shows this replica removed. */
  private async sweep(): Promise<void> {
    const me = replicaOf(this.o.self);
    const now = Date.now();
    for (const group of this.o.raft.groups()) {
      if (this.stopped) continue;
      const st = this.o.raft.raftStatus(group);
      if (st === undefined) continue;
      const partitionId = group === 0 ? META_PARTITION : group - 1;
      let removed = false;
      if (!isMember(st.confState, me)) {
        removed = removalConfirmed(me, st, this.o.raft.logEntries(group, st.firstIndex, st.lastIndex + 1));
      } else if (this.o.raft.status(group)?.leader !== undefined) {
        this.leaderlessSince.delete(group);
      } else {
        const since = this.leaderlessSince.get(group) ?? now;
        this.leaderlessSince.set(group, since);
        if (now - since < (this.o.orphanCheckAfterMs ?? ORPHAN_CHECK_AFTER_MS)) continue;
        this.leaderlessSince.set(group, now); // ask again one period later at the earliest
        removed = await this.removedWhileAway(group, partitionId, st);
      }
      if (!removed) continue;
      this.leaderlessSince.delete(group);
      await this.exclusive(group, async () => {
        if (this.o.raft.status(group) !== undefined) await this.drop(group, partitionId);
      });
    }
  }

  /**
   * Whether another node proves this replica was removed while it was away: a replica of the
   * same group that applied past this one's applied index, with this node in neither its voters
   * nor its learners. Applied entries are committed, and this replica's own membership was
   * established at or before its applied index, so that node applied the membership with this
   * one and later a committed removal. (A node that never hosted the group proves nothing.)
   */
  private async removedWhileAway(group: GroupId, partitionId: number, st: RaftStatus): Promise<boolean> {
    const me = replicaOf(this.o.self);
    const applied = this.o.raft.status(group)?.applied.index ?? 0;
    const members = [...st.confState.voters, ...st.confState.learners].filter((r) => r !== me).map(nodeOf);
    const ask = [...new Set([...members, ...(this.o.knownNodes?.() ?? [])])].filter((n) => n !== this.o.self);
    for (const node of ask) {
      const address = this.o.addressOf(node);
      if (address === undefined) continue;
      try {
        const r = await this.o.peers.call<object, LocalReplicaResponseOut>(address, 'LocalReplica', target(partitionId), 1000);
        if (!r.hosted || Number(r.appliedIndex) <= applied) continue;
        if (r.voters.includes(this.o.self) || r.learners.includes(this.o.self)) return false;
        this.o.log?.warn(
          { group, partitionId, by: node, theirApplied: r.appliedIndex, ourApplied: applied },
          'this replica was removed from its group while it was away (another replica applied the removal); dropping it',
        );
        return true;
      } catch {
        // not reachable: ask the next one
      }
    }
    return false;
  }

  /** Asks `node` to drop its replica, retrying for `retryMs`; true once it confirmed. */
  private async askDrop(node: NodeId, partitionId: number, proof: { index: number; term: number }, retryMs: number): Promise<boolean> {
    const end = Date.now() + retryMs;
    for (;;) {
      const address = this.o.addressOf(node);
      try {
        if (address !== undefined) {
          await this.o.peers.call(address, 'DropReplica', { ...target(partitionId), index: String(proof.index), term: String(proof.term) });
          return true;
        }
      } catch (e) {
        this.o.log?.debug({ err: e, node, partitionId }, 'DropReplica not confirmed yet');
      }
      if (Date.now() >= end || this.stopped) {
        this.stats.dropsUnconfirmed++;
        this.o.log?.warn({ node, partitionId }, 'the removed replica did not confirm dropping its data; it drops it once its log shows the removal');
        return false;
      }
      await sleep(100);
    }
  }

  /**
   * Proposes `change` and waits until the leader applied it (`done` holds for the applied
   * membership). Returns the entry's index and term.
   */
  private async change(group: GroupId, partitionId: number, change: ConfChange, done: (c: ConfState) => boolean): Promise<{ index: number; term: number }> {
    const r = this.o.raft.proposeConfChange(group, change);
    if (r === undefined) throw this.notHosted(partitionId);
    if (!r.ok) throw this.refusalError(group, partitionId, r.reason, r.leader);
    this.stats.confChangesProposed++;
    const end = Date.now() + (this.o.confChangeTimeoutMs ?? CONF_CHANGE_TIMEOUT_MS);
    const unknown = (why: string) =>
      new KeyVaError(
        'DEADLINE_EXCEEDED',
        `${what(partitionId)}: ${change.type} of ${nodeOf(change.replica)} ${why}; outcome unknown, call again (idempotent)`,
        {
          partitionId: String(partitionId),
        },
      );
    while (Date.now() < end) {
      const st = this.o.raft.raftStatus(group);
      if (st === undefined) throw unknown('stopped: the group is no longer hosted here');
      if (st.applied >= r.index) {
        if (done(st.confState)) return { index: r.index, term: r.term };
        throw unknown(`was applied without effect (entry ${r.index})`);
      }
      if (st.hardState.term !== r.term) throw unknown(`lost leadership (term ${r.term} → ${st.hardState.term}) before it applied`);
      await sleep(POLL_MS);
    }
    throw unknown(`did not apply within ${this.o.confChangeTimeoutMs ?? CONF_CHANGE_TIMEOUT_MS} ms`);
  }

  /** The core's status if this node leads `group` and serves; NOT_LEADER / UNAVAILABLE / WRONG_PARTITION otherwise. */
  private leaderStatus(group: GroupId, partitionId: number): RaftStatus {
    const s = this.o.raft.status(group);
    const st = this.o.raft.raftStatus(group);
    if (s === undefined || st === undefined) throw this.notHosted(partitionId);
    if (st.softState.role !== Role.Leader) throw this.notLeader(partitionId, s.leader);
    if (!s.serving)
      throw new KeyVaError('UNAVAILABLE', `${what(partitionId)}: the leader is warming up; retry`, {
        reason: 'warmingUp',
        partitionId: String(partitionId),
      });
    return st;
  }

  private notHosted(partitionId: number): KeyVaError {
    return notHostedError(this.o.self, partitionId);
  }

  private notLeader(partitionId: number, leader: NodeId | undefined): KeyVaError {
    return notLeaderError(this.o.self, partitionId, leader, this.o.addressOf);
  }

  private refusalError(_group: GroupId, partitionId: number, reason: string, leader: ReplicaId | undefined): KeyVaError {
    switch (reason) {
      case Refusal.NotLeader:
        return this.notLeader(partitionId, leader === undefined ? undefined : nodeOf(leader));
      case Refusal.ConfChangePending:
      case Refusal.LeaderNotReady:
      case Refusal.LeaderTransferring:
      case Refusal.TooManyUncommitted:
        return new KeyVaError('UNAVAILABLE', `${what(partitionId)}: cannot change membership now (${reason}); nothing was proposed, retry`, {
          reason,
          partitionId: String(partitionId),
        });
      default:
        return refused(reason, `${what(partitionId)}: membership change refused (${reason})`, { partitionId: String(partitionId) });
    }
  }

  private async replicasOf(group: GroupId, partitionId: number, leaderViewOnly = false): Promise<PartitionReplicasResponse> {
    const st = this.o.raft.raftStatus(group);
    if (st === undefined) throw this.notHosted(partitionId);
    const lagMax = this.o.lagMax ?? PROMOTE_LAG_MAX;
    const leading = st.softState.role === Role.Leader;
    const one = async (rid: ReplicaId, role: 'VOTER' | 'LEARNER'): Promise<ReplicaStatus> => {
      const node = nodeOf(rid);
      const match = rid === st.id ? st.lastIndex : (st.progress.get(rid)?.match ?? 0);
      let applied = 0;
      let reachable = false;
      if (node === this.o.self) {
        applied = this.o.raft.status(group)?.applied.index ?? 0;
        reachable = true;
      } else if (!leaderViewOnly) {
        const address = this.o.addressOf(node);
        if (address !== undefined) {
          try {
            const r = await this.o.peers.call<object, LocalReplicaResponseOut>(address, 'LocalReplica', target(partitionId), 1000);
            if (r.hosted) {
              applied = Number(r.appliedIndex);
              reachable = true;
            }
          } catch {
            reachable = false;
          }
        }
      }
      return {
        nodeId: node,
        role,
        matchIndex: String(leading ? match : 0),
        appliedIndex: String(applied),
        caughtUp: leading && caughtUp(match, st.lastIndex, lagMax),
        reachable,
      };
    };
    const replicas = await Promise.all([...st.confState.voters.map((v) => one(v, 'VOTER')), ...st.confState.learners.map((l) => one(l, 'LEARNER'))]);
    const s = this.o.raft.status(group);
    const range = this.o.raft.rangeOf(group);
    const size = group === 0 || range === undefined || this.o.sizeOf === undefined ? undefined : await this.o.sizeOf(group, range).catch(() => undefined);
    return {
      sizeBytes: String(size?.bytes ?? 0),
      keys: String(size?.keys ?? 0),
      sizeExact: size?.exact ?? false,
      splitHint: String(size?.splitHint ?? 0n),
      qps: group === 0 ? 0 : Math.round(this.o.loadOf?.(partitionId) ?? 0),
      partitionId,
      leader: s?.leader ?? '',
      term: String(st.hardState.term),
      lastIndex: String(st.lastIndex),
      commitIndex: String(st.hardState.commit),
      confChangePending: st.confState.voters.length === 0 ? false : this.pendingConfChange(group, st),
      replicas,
    };
  }

  /** A conf change entry in the log above the applied index. */
  private pendingConfChange(group: GroupId, st: RaftStatus): boolean {
    return this.o.raft.logEntries(group, st.applied + 1, st.lastIndex + 1).some((e) => e.type === 'confChange');
  }

  private exclusive<T>(group: GroupId, fn: () => Promise<T>): Promise<T> {
    if (this.stopped) return Promise.reject(new KeyVaError('UNAVAILABLE', `node ${this.o.self} is stopping`));
    const prev = this.locks.get(group) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.locks.set(group, tail);
    tail.then(() => {
      if (this.locks.get(group) === tail) this.locks.delete(group);
    });
    return run;
  }
}
