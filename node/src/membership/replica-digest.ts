/**
 * Replica digests (LESSONS #10; ADR 0009 invariant "replicas of a partition agree"): the Admin
 * `PartitionDigest` call on a partition's leader and the node-to-node `LocalDigest` behind it.
 *
 * The leader picks `readTs` = the highest commit timestamp it applied. Commit timestamps grow
 * along a group's log (ADR 0008 §5), so a replica that applied an entry stamped >= readTs holds
 * its final state at readTs, and replicas that agree on the log agree on that state, under load
 * too. Each replica waits (bounded) until it applied that far, then digests the leader's range of
 * the partition (a split applied later on one replica moves no rows) at readTs (`kv/partition-digest.ts`). One digest runs at a time on a node (they read the whole
 * partition); the others queue.
 */
import type { NodeId } from '@keyva/client/keyspace';
import type { LocalDigestResponse, PartitionDigestResponse, ReplicaDigest } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { HASH_SPACE_END, type StorageEngine, type Timestamp } from '../engine/types.ts';
import { groupOf } from '../kv/kv-store.ts';
import { digestPartition, type PartitionDigest } from '../kv/partition-digest.ts';
import { Role } from '../raft/types.ts';
import type { MultiRaft } from '../replication/multi-raft.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import { nodeOf } from '../replication/replica-id.ts';
import type { PeerAdmin } from './peer-admin.ts';
import { notHostedError, notLeaderError } from './replica-membership.ts';

/** How long a replica waits to apply up to readTs before it answers UNAVAILABLE. */
export const DIGEST_APPLY_WAIT_MS = 3_000;
/** Deadline of one replica's answer to the leader (waiting, queueing and reading included). */
export const DIGEST_CALL_DEADLINE_MS = 30_000;

export interface ReplicaDigestsOptions {
  readonly self: NodeId;
  readonly raft: Pick<MultiRaft, 'status' | 'raftStatus' | 'rangeOf'>;
  readonly engine: StorageEngine;
  readonly peers: Pick<PeerAdmin, 'call'>;
  readonly addressOf: (id: NodeId) => string | undefined;
  readonly rowsMax?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ReplicaDigests {
  readonly stats = { computed: 0 };
  private readonly o: ReplicaDigestsOptions;
  /** The digest running now: the next one starts after it. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(o: ReplicaDigestsOptions) {
    this.o = o;
  }

  /** Admin `PartitionDigest` (see the file comment); NOT_LEADER with a hint on a follower. */
  async partitionDigest(partitionId: number): Promise<PartitionDigestResponse> {
    const group = groupOf(partitionId);
    const s = this.o.raft.status(group);
    const st = this.o.raft.raftStatus(group);
    if (s === undefined || st === undefined) throw this.notHosted(partitionId);
    if (st.softState.role !== Role.Leader || !s.serving) throw notLeaderError(this.o.self, partitionId, s.leader, this.o.addressOf);
    const readTs = s.applied.maxCommitTs;
    const range = this.o.raft.rangeOf(group);
    if (range === undefined) throw this.notHosted(partitionId);
    const members = [...st.confState.voters, ...st.confState.learners].map((r) => nodeOf(r));
    const replicas = await Promise.all(members.map((node) => this.replicaDigest(node, partitionId, range, readTs)));
    return { readTs: readTs.toString(), replicas };
  }

  /** Node-to-node `LocalDigest`: this node's replica at `readTs`. */
  async localDigest(partitionId: number, range: HashRange, readTs: Timestamp, waitMs = DIGEST_APPLY_WAIT_MS): Promise<LocalDigestResponse> {
    if (range.start >= range.end) throw new KeyVaError('INVALID_ARGUMENT', `empty range [${range.start}, ${range.end})`, { field: 'start' });
    const d = await this.local(partitionId, range, readTs, waitMs);
    return { keyCount: String(d.keyCount), checksum: d.checksum, bytes: String(d.bytes), complete: d.complete };
  }

  private async replicaDigest(node: NodeId, partitionId: number, range: HashRange, readTs: Timestamp): Promise<ReplicaDigest> {
    try {
      if (node === this.o.self) {
        const d = await this.local(partitionId, range, readTs, DIGEST_APPLY_WAIT_MS);
        return { nodeId: node, ok: true, keyCount: String(d.keyCount), checksum: d.checksum, bytes: String(d.bytes), complete: d.complete, error: '' };
      }
      const address = this.o.addressOf(node);
      if (address === undefined) throw new KeyVaError('UNAVAILABLE', `node ${node} has no known address`);
      const r = await this.o.peers.call<object, { keyCount: string; checksum: string; bytes: string; complete: boolean }>(
        address,
        'LocalDigest',
        {
          partitionId,
          readTs: readTs.toString(),
          waitMs: DIGEST_APPLY_WAIT_MS,
          start: range.start.toString(),
          end: range.end === HASH_SPACE_END ? '0' : range.end.toString(),
        },
        DIGEST_CALL_DEADLINE_MS,
      );
      return { nodeId: node, ok: true, keyCount: r.keyCount, checksum: r.checksum, bytes: r.bytes, complete: r.complete, error: '' };
    } catch (e) {
      return { nodeId: node, ok: false, keyCount: '0', checksum: '', bytes: '0', complete: false, error: (e as Error).message };
    }
  }

  /** Waits until this replica applied up to `readTs`, then digests `range` (queued behind any other digest). */
  private async local(partitionId: number, range: HashRange, readTs: Timestamp, waitMs: number): Promise<PartitionDigest> {
    const group = groupOf(partitionId);
    const end = Date.now() + waitMs;
    for (;;) {
      const s = this.o.raft.status(group);
      if (s === undefined) throw this.notHosted(partitionId);
      if (s.installingSnapshot)
        throw new KeyVaError('UNAVAILABLE', `partition ${partitionId} on node ${this.o.self} is installing a snapshot; retry`, {
          partitionId: String(partitionId),
        });
      if (s.applied.maxCommitTs >= readTs) break;
      if (Date.now() >= end)
        throw new KeyVaError('UNAVAILABLE', `partition ${partitionId} on node ${this.o.self} has not applied up to ${readTs} yet; retry`, {
          partitionId: String(partitionId),
          readTs: readTs.toString(),
        });
      await sleep(20);
    }
    const run = this.tail.then(() => digestPartition(this.o.engine, range, readTs, this.o.rowsMax));
    this.tail = run.catch(() => undefined);
    const d = await run;
    this.stats.computed++;
    return d;
  }

  private notHosted(partitionId: number): KeyVaError {
    return notHostedError(this.o.self, partitionId);
  }
}
