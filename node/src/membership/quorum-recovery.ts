/**
 * Unsafe recovery of a Raft group that lost a majority of its voters for good (Admin
 * `UnsafeRecoverPartition`, docs/adr/0012-unsafe-quorum-recovery.md; compare TiKV's
 * unsafe-recover and CockroachDB's `debug recover`). Served by a surviving replica:
 *
 * 1. asks every other member of the group (`LocalReplica`, short deadline) whether it answers,
 *    whom it knows as leader, and how far its log goes;
 * 2. decides (`decideRecovery`, pure): refuse unless the caller confirmed the data loss, no leader
 *    is known, fewer than a majority of the voters answer, every listed survivor answers and no
 *    other survivor's log is ahead of this one;
 * 3. stops the group here, appends to its durable log one RemoveReplica entry per lost member
 *    after the last entry, under a new term above every survivor's, and persists a hard state
 *    that commits everything up to them (one synced engine write); entries this replica held but
 *    never saw committed are kept and become committed;
 * 4. reopens the group: it applies the removals like any committed membership change, then
 *    campaigns among the survivors. Other survivors take this replica's log when it leads.
 *
 * What is lost: any write the lost replicas committed beyond this replica's last entry. The
 * answer reports this replica's last index and term, its commit index and how many uncommitted
 * entries were kept, and says so in words. The placement loop then re-replicates the group up to
 * the replication factor (learner first) and records the new replicas in the map.
 */
import type { NodeId } from '@keyva/client/keyspace';
import type { LocalReplicaResponse, UnsafeRecoverPartitionResponse } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import type { StorageEngine } from '../engine/types.ts';
import type { Logger } from '../observability/logger.ts';
import { applyConfChange, confState } from '../raft/conf-change.ts';
import { type ConfChange, ConfChangeType, type ConfState, type Entry } from '../raft/types.ts';
import { DurableRaftLog } from '../replication/durable-raft-log.ts';
import type { GroupContent } from '../replication/group-state-machine.ts';
import { type MultiRaft, NO_RANGE } from '../replication/multi-raft.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import { nodeOf, replicaOf } from '../replication/replica-id.ts';
import type { PeerAdmin } from './peer-admin.ts';
import { decideRecovery, type LocalGroupView, type PeerGroupView } from './quorum-recovery-plan.ts';

/** How long a member may take to answer the "are you alive" question. */
export const PROBE_DEADLINE_MS = 1500;
/** How long the recovered group may take to apply its recovery entries and elect a leader. */
export const RECOVERY_WAIT_MS = 10_000;
const POLL_MS = 20;
const META_GROUP: GroupId = 0;

export interface QuorumRecoveryOptions {
  readonly self: NodeId;
  readonly raft: MultiRaft;
  readonly engine: StorageEngine;
  readonly peers: PeerAdmin;
  readonly addressOf: (node: NodeId) => string | undefined;
  /** The meta group's content (its state machine); without it the meta group cannot be recovered here. */
  readonly metaContent?: GroupContent;
  readonly log?: Logger;
  readonly probeDeadlineMs?: number;
  readonly waitMs?: number;
}

export interface RecoverRequest {
  readonly partitionId: number;
  readonly metaGroup: boolean;
  readonly survivingReplicas: readonly string[];
  readonly confirmDataLoss: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function nodeIdOf(id: string): NodeId {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id))
    throw new KeyVaError('INVALID_ARGUMENT', `surviving_replicas: '${id}' is not a node id`, { field: 'surviving_replicas' });
  return id as NodeId;
}

export class QuorumRecovery {
  private readonly o: QuorumRecoveryOptions;
  /** One recovery at a time on this node. */
  private running: Promise<unknown> = Promise.resolve();

  constructor(o: QuorumRecoveryOptions) {
    this.o = o;
  }

  recover(req: RecoverRequest): Promise<UnsafeRecoverPartitionResponse> {
    const run = this.running.catch(() => undefined).then(() => this.recoverNow(req));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async recoverNow(req: RecoverRequest): Promise<UnsafeRecoverPartitionResponse> {
    const group = this.groupOf(req);
    const what = req.metaGroup ? 'the meta group' : `partition ${req.partitionId}`;
    if (req.survivingReplicas.length === 0)
      throw new KeyVaError('INVALID_ARGUMENT', 'surviving_replicas is empty: list the node ids of the live replicas', { field: 'surviving_replicas' });
    const survivors = req.survivingReplicas.map(nodeIdOf);
    const raft = this.o.raft;
    const st = raft.raftStatus(group);
    const s = raft.status(group);
    if (st === undefined || s === undefined)
      throw new KeyVaError('WRONG_PARTITION', `${what} is not hosted on node ${this.o.self}: send the recovery to a surviving replica`, {
        partitionId: String(req.partitionId),
      });
    if (req.metaGroup && this.o.metaContent === undefined)
      throw new KeyVaError('CONDITION_FAILED', `node ${this.o.self} cannot recover the meta group (no meta replica here)`, { reason: 'notVoter' });

    const conf = this.confAtLast(group, st.confState, st.applied, st.lastIndex);
    const local: LocalGroupView = {
      self: this.o.self,
      voters: conf.voters.map(nodeOf),
      learners: conf.learners.map(nodeOf),
      leader: s.leader,
      term: st.hardState.term,
      lastIndex: st.lastIndex,
      lastTerm: raft.logTerm(group, st.lastIndex) ?? 0,
      commit: st.hardState.commit,
      applied: s.applied.index,
    };
    const asked = [...new Set([...local.voters, ...local.learners, ...survivors])].filter((n) => n !== this.o.self);
    // Without the confirmation the decision is a refusal whatever the others say: ask nobody.
    const answers = req.confirmDataLoss ? await Promise.all(asked.map(async (n) => [n, await this.probe(n, req)] as const)) : [];
    const peers = new Map<NodeId, PeerGroupView | undefined>(answers.filter(([, v]) => v !== undefined));
    const decision = decideRecovery(local, peers, { survivors, confirmDataLoss: req.confirmDataLoss }, what);
    const base = {
      partitionId: req.metaGroup ? 0 : req.partitionId,
      metaGroup: req.metaGroup,
      lastIndex: String(local.lastIndex),
      lastTerm: String(local.lastTerm),
      commitIndex: String(local.commit),
      appliedIndex: String(local.applied),
    };
    if (decision.kind === 'refuse') {
      this.o.log?.warn({ group, survivors, reason: decision.reason }, `unsafe recovery refused: ${decision.message}`);
      throw new KeyVaError('CONDITION_FAILED', decision.message, { ...decision.details, partitionId: String(req.partitionId) });
    }
    if (decision.kind === 'done')
      return {
        ...base,
        changed: false,
        voters: [...local.voters],
        removed: [],
        uncommittedKept: '0',
        newTerm: String(local.term),
        recoveryIndex: '0',
        leader: s.leader ?? '',
        dataLossWarning: '',
      };

    // The rewrite: stop the group here, append the removals durably, reopen it.
    const range = raft.rangeOf(group) ?? NO_RANGE;
    await raft.removeGroup(group);
    const log = await DurableRaftLog.open(this.o.engine, group);
    const last = log.lastIndex();
    const lastTerm = log.term(last) ?? 0;
    const term = Math.max(decision.newTerm, log.hardState().term + 1, lastTerm + 1);
    const entries: Entry[] = decision.removed.map((n, i) => ({
      type: 'confChange',
      term,
      index: last + 1 + i,
      change: { type: ConfChangeType.RemoveReplica, replica: replicaOf(n) } satisfies ConfChange,
    }));
    const recoveryIndex = last + entries.length;
    const staged = { snapshot: undefined, entries, hardState: { term, vote: undefined, commit: recoveryIndex } };
    const kept = Math.max(0, last - log.hardState().commit);
    const warning =
      `${what} was forced to voters ${survivors.join(',')} on node ${this.o.self}. Writes the lost replicas (${decision.removed.join(',') || 'none'}) ` +
      `committed after index ${last} (term ${lastTerm}) are LOST. Entries ${log.hardState().commit + 1}..${last} (${kept}) were not known to be committed here ` +
      'and were kept and committed. Re-replicate to the replication factor (the placement loop adds learners).';
    this.o.log?.warn(
      { group, survivors, removed: decision.removed, lastIndex: last, lastTerm, commit: log.hardState().commit, newTerm: term, recoveryIndex },
      `UNSAFE quorum-loss recovery: ${warning}`,
    );
    await this.o.engine.write({ mutations: log.stage(staged), commitTs: 1n, nowMs: 0, sync: true });
    try {
      await raft.addGroup(req.metaGroup ? { group, range: NO_RANGE, content: this.o.metaContent } : { group, range });
    } catch (e) {
      throw new KeyVaError(
        'INTERNAL',
        `${what}: the recovery entries are durable but the group did not reopen (${(e as Error).message}); restart node ${this.o.self} to reopen it`,
        {},
        { cause: e },
      );
    }
    const leader = await this.elect(group, recoveryIndex);
    return {
      ...base,
      lastIndex: String(last),
      lastTerm: String(lastTerm),
      commitIndex: String(log.hardState().commit),
      changed: true,
      voters: [...survivors].sort(),
      removed: [...decision.removed],
      uncommittedKept: String(kept),
      newTerm: String(term),
      recoveryIndex: String(recoveryIndex),
      leader: leader ?? '',
      dataLossWarning: warning,
    };
  }

  /** Waits for the recovery entries to apply, campaigns, and waits (bounded) for a leader. */
  private async elect(group: GroupId, recoveryIndex: number): Promise<NodeId | undefined> {
    const end = Date.now() + (this.o.waitMs ?? RECOVERY_WAIT_MS);
    let campaigned = false;
    while (Date.now() < end) {
      const st = this.o.raft.raftStatus(group);
      const s = this.o.raft.status(group);
      if (s?.leader !== undefined && (s.leader !== this.o.self || s.serving)) return s.leader;
      if (!campaigned && st !== undefined && st.applied >= recoveryIndex) {
        campaigned = this.o.raft.campaign(group);
      }
      await sleep(POLL_MS);
    }
    return this.o.raft.status(group)?.leader;
  }

  /** Membership as of the last log entry: the applied one plus the changes still in the log. */
  private confAtLast(group: GroupId, applied: ConfState, appliedIndex: number, lastIndex: number): ConfState {
    let c = confState(applied.voters, applied.learners);
    for (const e of this.o.raft.logEntries(group, appliedIndex + 1, lastIndex + 1)) if (e.type === 'confChange') c = applyConfChange(c, e.change);
    return c;
  }

  /** A member's answer about its replica; undefined if it did not answer or does not host the group. */
  private async probe(node: NodeId, req: RecoverRequest): Promise<PeerGroupView | undefined> {
    const address = this.o.addressOf(node);
    if (address === undefined) return undefined;
    try {
      const r = await this.o.peers.call<object, LocalReplicaResponse>(
        address,
        'LocalReplica',
        { partitionId: req.metaGroup ? 0 : req.partitionId, metaGroup: req.metaGroup },
        this.o.probeDeadlineMs ?? PROBE_DEADLINE_MS,
      );
      if (!r.hosted) return undefined;
      return {
        leader: r.leader === '' || r.leader === undefined ? undefined : (r.leader as NodeId),
        term: Number(r.term ?? 0),
        lastIndex: Number(r.lastIndex ?? 0),
        lastTerm: Number(r.lastTerm ?? 0),
      };
    } catch (e) {
      this.o.log?.info({ node, err: e }, 'unsafe recovery: member did not answer');
      return undefined;
    }
  }

  private groupOf(req: RecoverRequest): GroupId {
    if (req.metaGroup) return META_GROUP;
    const p = req.partitionId;
    if (!Number.isInteger(p) || p < 0 || p > 0xffff_fffe)
      throw new KeyVaError('INVALID_ARGUMENT', `partition_id ${p} is not a partition id`, { field: 'partition_id' });
    return p + 1;
  }
}
