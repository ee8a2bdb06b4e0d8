/**
 * The node's KV operations, independent of transport: validates input against the limits,
 * routes every key to its partition, stamps writes with hybrid-clock commit timestamps, and
 * reads through the MVCC engine. gRPC unary, the pipelined stream and REST all call this.
 */
import { hashTag, keyHash, type PartitionInfo, tagHash } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import type { ClockGuard } from '../clock/clock-guard.ts';
import type { HybridClock } from '../clock/hybrid-clock.ts';
import { msFromTs, tsFromMs } from '../clock/hybrid-clock.ts';
import { HASH_SPACE_END, MAX_TS, type Mutation, type ScanRange, type StorageEngine, type Timestamp } from '../engine/types.ts';
import { withSpan } from '../observability/tracing.ts';
import type { PartitionTable } from '../partition/partition-table.ts';
import type { GroupStatus } from '../replication/group-driver.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import { type DataMutation, REQUEST_ID_BYTES } from '../replication/replicated-command.ts';
import type { ProposeOptions, ProposeResult } from '../replication/replication-results.ts';
import { isRequestRecord, recordIndexPut, requestRecordOf } from '../replication/request-record.ts';
import { RequestRecordGc } from '../replication/request-record-gc.ts';
import { FOLLOWER_STALENESS_MS_DEFAULT, FollowerFreshness } from './follower-freshness.ts';
import { checkBatch, checkKey, checkTtl, checkValue, type Limits } from './limits.ts';
import { PartitionLoad } from './partition-load.ts';
import { decodeCursor, encodeCursor, scanFingerprint } from './scan-cursor.ts';
import {
  type DeleteInput,
  type GetInput,
  type GetOutput,
  type KeyValueOut,
  MAJORITY,
  type MutationInput,
  type PutInput,
  type ReadSpec,
  type ScanChunk,
  type ScanInput,
  type WriteSpec,
} from './types.ts';

export interface KvStoreOptions extends Limits {
  readonly snapshotSkewMsMax: number;
  /** Items per streamed scan chunk. */
  readonly scanChunkItemsMax?: number;
  /** Default bound of a `follower` read's staleness (ms). */
  readonly followerStalenessMs?: number;
  /** How long a write's request id is remembered (default `REQUEST_ID_RETENTION_MS`, 10 min). */
  readonly requestIdRetentionMs?: number;
}

/** Largest staleness a follower read may ask for (ms). */
export const FOLLOWER_STALENESS_MS_MAX = 3_600_000;

/** Keys of a batch get that this node cannot serve: they go to `leader` (NOT_LEADER here). */
export interface RemoteKeys {
  readonly leader: string;
  readonly indexes: number[];
}

const SCAN_CHUNK_ITEMS_MAX = 256;

/** What the store needs from the Multi-Raft runtime in replicated mode (`MultiRaft` implements it). */
export interface Replicator {
  propose(group: GroupId, mutations: readonly DataMutation[], opts?: ProposeOptions): Promise<ProposeResult>;
  read(group: GroupId): Promise<void>;
  status(group: GroupId): GroupStatus | undefined;
  /** The hash range the group owns on this replica (narrowed by applied splits, docs/adr/0010-splits.md). */
  rangeOf?(group: GroupId): { readonly start: bigint; readonly end: bigint } | undefined;
}

/** The Raft group of a partition (ADR 0008 §1: group 0 is the meta group). */
export const groupOf = (partitionId: number): GroupId => (partitionId + 1) as GroupId;

export class KvStore {
  private readonly engine: StorageEngine;
  private readonly partitions: PartitionTable;
  private readonly clock: HybridClock;
  private readonly opts: KvStoreOptions;
  private readonly guard: ClockGuard | undefined;
  /** Replicated mode: writes are proposals to the partition's group; undefined on a lone node. */
  private readonly raft: Replicator | undefined;
  /** Replicated mode: per partition, how fresh this replica is known to be (follower reads). */
  private readonly freshness = new Map<number, FollowerFreshness>();
  /** Replicated mode, on a leader: the empty proposal closing a snapshot timestamp, per partition. */
  private readonly closing = new Map<number, { readonly ts: Timestamp; readonly done: Promise<ProposeResult> }>();
  /** Exactly-once request records: removed after their retention (runs with `gc`). */
  readonly requestGc: RequestRecordGc;
  /** Keys read and written per partition per second (placement's load splits). */
  readonly load: PartitionLoad;

  constructor(
    engine: StorageEngine,
    partitions: PartitionTable,
    clock: HybridClock,
    opts: KvStoreOptions,
    guard?: ClockGuard,
    raft?: Replicator,
    load: PartitionLoad = new PartitionLoad(),
  ) {
    this.load = load;
    this.engine = engine;
    this.guard = guard;
    this.raft = raft;
    this.partitions = partitions;
    this.clock = clock;
    this.opts = opts;
    this.requestGc = this.createRequestGc(opts.requestIdRetentionMs);
  }

  get limits(): Limits {
    return this.opts;
  }

  /** Picks the timestamp a read is served at and checks snapshot bounds. */
  private readTs(read: ReadSpec): { engineTs: Timestamp; reportedTs: Timestamp } {
    if (read.consistency === 'snapshot') {
      const ts = read.snapshotTs ?? 0n;
      if (ts === 0n)
        throw new KeyVaError('INVALID_ARGUMENT', 'snapshot reads need snapshot_ts (a version or read_ts from an earlier answer)', { field: 'snapshot_ts' });
      if (msFromTs(ts) > this.clock.nowMs() + this.opts.snapshotSkewMsMax)
        throw new KeyVaError('SNAPSHOT_IN_FUTURE', `snapshot_ts ${ts} is ahead of this node's clock`, { snapshotTs: ts.toString() });
      if (ts < this.engine.gcWatermark)
        throw new KeyVaError('SNAPSHOT_TOO_OLD', `snapshot_ts ${ts} is older than the GC watermark ${this.engine.gcWatermark}`, {
          snapshotTs: ts.toString(),
          watermark: this.engine.gcWatermark.toString(),
        });
      return { engineTs: ts, reportedTs: ts };
    }
    // One node: the newest committed data is linearizable; followers do not exist yet.
    return { engineTs: MAX_TS, reportedTs: this.clock.current() };
  }

  async get(input: GetInput): Promise<GetOutput> {
    checkKey(input.key, this.opts);
    this.checkRead(input.read);
    const hash = keyHash(input.key);
    const partition = this.partitions.route(hash);
    if (this.raft !== undefined) await this.readBarrier(partition.id, input.read);
    return this.readLocal(hash, input.key, input.read, partition.id);
  }

  private async readLocal(hash: bigint, key: Buffer, read: ReadSpec, partitionId: number): Promise<GetOutput> {
    // After the barrier: a split applied up to the read point moved this key to another group.
    this.checkOwned(partitionId, hash);
    this.load.hit(partitionId);
    const { engineTs, reportedTs } = this.raft !== undefined && read.consistency === 'follower' ? this.followerTs(partitionId) : this.readTs(read);
    const v = await withSpan('keyva.storage.get', { 'keyva.partition': partitionId }, () => this.engine.get(hash, key, engineTs, this.clock.nowMs()));
    return v
      ? { found: true, value: v.value, version: v.version, expiresAtMs: v.expiresAtMs, readTs: reportedTs }
      : { found: false, value: Buffer.alloc(0), version: 0n, expiresAtMs: 0, readTs: reportedTs };
  }

  async batchGet(keys: readonly Buffer[], read: ReadSpec): Promise<GetOutput[]> {
    const { results, remote } = await this.batchGetParts(keys, read);
    const first = remote[0];
    if (first !== undefined) throw this.notLeader(this.partitions.current.locate(keyHash(keys[first.indexes[0] as number] as Buffer)).id, first.leader);
    return results as GetOutput[];
  }

  /**
   * A batch get with ONE read barrier per partition (not per key). Keys of partitions this node
   * can serve are answered; keys of partitions whose barrier said NOT_LEADER are returned in
   * `remote`, grouped by leader, for the caller to forward (their results stay undefined).
   */
  async batchGetParts(keys: readonly Buffer[], read: ReadSpec): Promise<{ results: (GetOutput | undefined)[]; remote: RemoteKeys[] }> {
    checkBatch(keys.length, this.opts, 'batch get');
    for (const k of keys) checkKey(k, this.opts);
    this.checkRead(read);
    const byPartition = new Map<number, number[]>();
    const located = new Map<number, PartitionInfo>();
    const hashes = keys.map((k) => keyHash(k));
    for (const [i, h] of hashes.entries()) {
      // Unhosted partitions are not refused here: their keys go to `remote` below.
      const info = this.partitions.current.locate(h);
      const id = info.id;
      located.set(id, info);
      const list = byPartition.get(id);
      if (list === undefined) byPartition.set(id, [i]);
      else list.push(i);
    }
    const results: (GetOutput | undefined)[] = new Array(keys.length).fill(undefined);
    const remote = new Map<string, number[]>();
    await Promise.all(
      [...byPartition].map(async ([partitionId, indexes]) => {
        if (this.raft !== undefined) {
          try {
            this.partitions.checkHosted(located.get(partitionId) as PartitionInfo);
            await this.readBarrier(partitionId, read);
          } catch (e) {
            const leader = e instanceof KeyVaError && e.code === 'NOT_LEADER' ? e.details.leaderHint : undefined;
            if (leader === undefined || leader === '') throw e;
            remote.set(leader, [...(remote.get(leader) ?? []), ...indexes]);
            return;
          }
        }
        await Promise.all(
          indexes.map(async (i) => {
            results[i] = await this.readLocal(hashes[i] as bigint, keys[i] as Buffer, read, partitionId);
          }),
        );
      }),
    );
    return { results, remote: [...remote].map(([leader, indexes]) => ({ leader, indexes: indexes.sort((a, b) => a - b) })) };
  }

  async put(input: PutInput, write: WriteSpec = MAJORITY): Promise<Timestamp> {
    const [version] = await this.batchWrite([{ type: 'put', ...input }], write);
    return version as Timestamp;
  }

  async delete(input: DeleteInput, write: WriteSpec = MAJORITY): Promise<{ deleted: boolean; version: Timestamp }> {
    const { versions, existed } = await this.write([{ type: 'delete', ...input }], write);
    return { deleted: existed[0] ?? false, version: versions[0] as Timestamp };
  }

  async batchWrite(mutations: readonly MutationInput[], write: WriteSpec = MAJORITY): Promise<Timestamp[]> {
    return (await this.write(mutations, write)).versions;
  }

  /** Validates everything first, so a bad mutation anywhere leaves stored data untouched. */
  private async write(mutations: readonly MutationInput[], write: WriteSpec): Promise<{ versions: Timestamp[]; existed: readonly boolean[] }> {
    if (mutations.length === 0) throw new KeyVaError('INVALID_ARGUMENT', 'a batch needs at least one mutation', { field: 'mutations' });
    checkBatch(mutations.length, this.opts, 'batch write');
    const nowMs = this.clock.nowMs();
    const prepared: Mutation[] = [];
    const partitionIds = new Set<number>();
    for (const m of mutations) {
      checkKey(m.key, this.opts);
      const hash = keyHash(m.key);
      const partitionId = this.partitions.route(hash).id;
      partitionIds.add(partitionId);
      this.load.hit(partitionId);
      if (m.type === 'put') {
        checkValue(m.value, this.opts);
        checkTtl(m.ttlMs, this.opts);
        prepared.push({ type: 'put', hash, key: m.key, value: m.value, expiresAtMs: m.ttlMs > 0 ? nowMs + m.ttlMs : 0, condition: m.condition });
      } else {
        prepared.push({ type: 'delete', hash, key: m.key, condition: m.condition });
      }
    }
    if (write.concern === 'leader' && mutations.some((m) => m.condition !== undefined))
      throw new KeyVaError(
        'INVALID_ARGUMENT',
        'write concern leader answers before the write commits, so a condition cannot be checked yet: use majority or all for conditional writes',
        { field: 'write.concern' },
      );
    const requestId = write.requestId;
    if (requestId !== undefined && requestId.length !== REQUEST_ID_BYTES)
      throw new KeyVaError('INVALID_ARGUMENT', `request_id must be ${REQUEST_ID_BYTES} bytes (or empty); got ${requestId.length}`, { field: 'request_id' });
    if (this.raft !== undefined) return this.replicatedWrite(this.raft, prepared, partitionIds, write);
    // One node holds every partition, so the whole batch is one atomic engine write; with a
    // request id, the id's record goes first, as a replicated partition applies it (request-record.ts).
    await this.guard?.ensure();
    const commitTs = this.clock.now();
    const record = requestId === undefined ? undefined : requestRecordOf({ id: 0n, mutations: prepared as DataMutation[], commitTs, nowMs, requestId });
    const first = record === undefined ? 0 : 1;
    const batch =
      record === undefined || record.type !== 'put' || requestId === undefined
        ? prepared
        : [record, ...prepared, recordIndexPut({ group: groupOf(this.partitions.route(record.hash).id), version: commitTs, hash: record.hash, requestId })];
    const result = await withSpan('keyva.storage.write', { 'keyva.mutations': prepared.length, 'keyva.partitions': partitionIds.size }, () =>
      this.engine.write({ mutations: batch, commitTs, nowMs, sync: true }),
    );
    if (!result.ok) {
      // Already applied under this request id: answer with the first application's version.
      if (record !== undefined && result.failedIndex === 0) return { versions: prepared.map(() => result.currentVersion), existed: prepared.map(() => false) };
      throw new KeyVaError('CONDITION_FAILED', `condition failed for mutation ${result.failedIndex - first}; nothing was written`, {
        index: String(result.failedIndex - first),
        currentVersion: result.currentVersion.toString(),
      });
    }
    return { versions: prepared.map(() => commitTs), existed: result.existed.slice(first, first + prepared.length) };
  }

  /**
   * Replicated mode: the batch is ONE proposal to its partition's group (atomic there); the
   * leader stamps the commit timestamp. Batches spanning partitions are refused until
   * cross-partition transactions exist (keys sharing a hash tag share a partition).
   */
  private async replicatedWrite(
    raft: Replicator,
    prepared: Mutation[],
    partitionIds: ReadonlySet<number>,
    write: WriteSpec,
  ): Promise<{ versions: Timestamp[]; existed: readonly boolean[] }> {
    if (partitionIds.size > 1)
      throw new KeyVaError(
        'INVALID_ARGUMENT',
        `the batch touches ${partitionIds.size} partitions; in a replicated cluster a batch is atomic within one partition only: give its keys one hash tag ({tag}key) or write them separately`,
        { field: 'mutations' },
      );
    const partitionId = [...partitionIds][0] as number;
    for (const m of prepared) if (m.type === 'put' || m.type === 'delete') this.checkOwned(partitionId, m.hash);
    await this.guard?.ensure();
    const r = await withSpan('keyva.storage.propose', { 'keyva.mutations': prepared.length, 'keyva.partition': partitionId }, () =>
      raft.propose(groupOf(partitionId), prepared as DataMutation[], {
        concern: write.concern,
        allTimeoutMs: write.allTimeoutMs,
        requestId: write.requestId,
      }),
    ).catch((e: unknown) => {
      // Split before the entry applied (docs/adr/0010-splits.md): nothing was written; refresh the map.
      if (e instanceof KeyVaError && e.code === 'WRONG_PARTITION')
        throw new KeyVaError('WRONG_PARTITION', e.message, { ...e.details, ...this.routing(partitionId) });
      throw e;
    });
    if (r.ok) return { versions: prepared.map(() => r.commitTs), existed: r.existed };
    if (!r.refused)
      throw new KeyVaError('CONDITION_FAILED', `condition failed for mutation ${r.failedIndex}; nothing was written`, {
        index: String(r.failedIndex),
        currentVersion: r.currentVersion.toString(),
      });
    if (r.reason === 'notLeader' && r.leaderHint !== undefined && r.leaderHint !== this.partitions.nodeId) throw this.notLeader(partitionId, r.leaderHint);
    if (r.reason === 'unknownGroup')
      throw new KeyVaError('WRONG_PARTITION', `partition ${partitionId} is not hosted on node ${this.partitions.nodeId}`, this.routing(partitionId));
    // Nothing was proposed: warming up, busy, transferring, stopped, or no leader known yet.
    throw new KeyVaError('UNAVAILABLE', `partition ${partitionId} cannot take writes here right now (${r.reason}); nothing was written, retry`, {
      ...this.routing(partitionId),
      reason: r.reason,
    });
  }

  private checkRead(read: ReadSpec): void {
    const m = read.maxStalenessMs;
    if (m !== undefined && (!Number.isSafeInteger(m) || m < 1 || m > FOLLOWER_STALENESS_MS_MAX))
      throw new KeyVaError('INVALID_ARGUMENT', `maxStalenessMs must be an integer from 1 to ${FOLLOWER_STALENESS_MS_MAX}`, { field: 'maxStalenessMs' });
  }

  /**
   * Replicated mode: what must hold before this replica reads partition `partitionId` locally.
   * - `linearizable`: this node is the partition's serving leader and passed a ReadIndex barrier
   *   (otherwise NOT_LEADER with the leader's id, which the server forwards).
   * - `follower`: any replica, once it is known to be at most `maxStalenessMs` stale
   *   (`follower-freshness.ts`); if it cannot prove that (no leader reachable): UNAVAILABLE with
   *   the leader hint it has.
   * - `snapshot`: see `snapshotBarrier`.
   */
  private async readBarrier(partitionId: number, read: ReadSpec, catchUp = false): Promise<void> {
    await this.readBarrierOf(partitionId, read, catchUp);
    this.refuseWhileInstalling(partitionId);
  }

  /**
   * A replica writing a streamed snapshot into the partition's range holds neither the old state
   * nor the new one (ADR 0008 §9): no local read until the install is done.
   */
  private refuseWhileInstalling(partitionId: number): void {
    if (this.raft?.status(groupOf(partitionId))?.installingSnapshot !== true) return;
    throw new KeyVaError('UNAVAILABLE', `partition ${partitionId}: this replica is installing a snapshot; retry`, this.routing(partitionId));
  }

  private async readBarrierOf(partitionId: number, read: ReadSpec, catchUp: boolean): Promise<void> {
    if (read.consistency === 'snapshot') return this.snapshotBarrier(partitionId, read.snapshotTs ?? 0n, catchUp);
    if (read.consistency === 'follower') {
      const max = read.maxStalenessMs ?? this.opts.followerStalenessMs ?? FOLLOWER_STALENESS_MS_DEFAULT;
      try {
        await this.freshnessOf(partitionId).ensure(max);
      } catch (e) {
        const leader = this.raft?.status(groupOf(partitionId))?.leader;
        const why = e instanceof Error ? e.message : String(e);
        throw new KeyVaError('UNAVAILABLE', `partition ${partitionId}: this replica cannot serve a read at most ${max} ms stale (${why}); retry`, {
          ...this.routing(partitionId),
          ...(leader === undefined ? {} : { leaderHint: leader }),
          maxStalenessMs: String(max),
        });
      }
      return;
    }
    return this.leaderRead(partitionId);
  }

  /**
   * A follower read is served at the replica's highest applied commit timestamp, and reports it
   * as its read_ts: commit timestamps grow along the log, so every commit at or below it is
   * applied here, and the answer is exactly the partition's snapshot at that timestamp (a later
   * snapshot read at read_ts returns the same), even while newer entries are being applied.
   */
  private followerTs(partitionId: number): { engineTs: Timestamp; reportedTs: Timestamp } {
    const ts = this.raft?.status(groupOf(partitionId))?.applied.maxCommitTs ?? 0n;
    return { engineTs: ts, reportedTs: ts };
  }

  /** ReadIndex on any replica; a barrier that completes also refreshes the follower-read record. */
  private async barrier(partitionId: number): Promise<void> {
    const started = this.clock.nowMs();
    await (this.raft as Replicator).read(groupOf(partitionId));
    this.freshness.get(partitionId)?.confirm(started);
    this.refuseWhileInstalling(partitionId);
  }

  private freshnessOf(partitionId: number): FollowerFreshness {
    let f = this.freshness.get(partitionId);
    if (f === undefined) {
      f = new FollowerFreshness(
        () => (this.raft as Replicator).read(groupOf(partitionId)),
        () => this.clock.nowMs(),
      );
      this.freshness.set(partitionId, f);
    }
    return f;
  }

  /**
   * Snapshot reads at `ts` must never return what a later commit with a timestamp <= ts could
   * change. Commit timestamps grow along each group's log: a leader stamps its proposals from
   * its clock, and a new leader serves only after applying its first entry (ADR 0008 §5), by
   * which time its clock passed every earlier entry's stamp. So once a replica has APPLIED an
   * entry stamped >= ts, every later entry is stamped above ts, and its state at ts is final:
   * any replica (follower included) then reads locally, no leader needed.
   *
   * Otherwise the leader closes `ts`: it observes ts into its clock, then commits an empty
   * command (stamped above ts) and reads once that applied. Observing ts and reading after a
   * ReadIndex would NOT be enough: a later leader whose clock runs behind could still commit a
   * write stamped <= ts; the empty command carries the closed timestamp through the log to
   * every future leader. A replica that does not lead answers NOT_LEADER (forwarded); with
   * `catchUp` (scans, which are not forwarded) it first passes a ReadIndex barrier, in case the
   * leader already committed an entry stamped >= ts.
   */
  private async snapshotBarrier(partitionId: number, ts: Timestamp, catchUp = false): Promise<void> {
    const raft = this.raft as Replicator;
    const group = groupOf(partitionId);
    const s = raft.status(group);
    if (s === undefined)
      throw new KeyVaError('WRONG_PARTITION', `partition ${partitionId} is not hosted on node ${this.partitions.nodeId}`, this.routing(partitionId));
    this.readTs({ consistency: 'snapshot', snapshotTs: ts }); // validates ts before anything is proposed
    if (s.applied.maxCommitTs >= ts) return;
    if (s.leader !== undefined && s.leader !== this.partitions.nodeId) {
      if (catchUp) {
        await this.barrier(partitionId);
        if ((raft.status(group)?.applied.maxCommitTs ?? 0n) >= ts) return;
      }
      throw this.notLeader(partitionId, s.leader);
    }
    if (!s.serving) throw new KeyVaError('UNAVAILABLE', `partition ${partitionId} has no serving leader here yet; retry`, this.routing(partitionId));
    // Reads waiting for a timestamp at or below one being closed share its proposal.
    let c = this.closing.get(partitionId);
    if (c === undefined || c.ts < ts) {
      this.clock.observe(ts);
      const done = raft.propose(group, []).finally(() => {
        if (this.closing.get(partitionId)?.done === done) this.closing.delete(partitionId);
      });
      c = { ts, done };
      this.closing.set(partitionId, c);
    }
    const r = await c.done;
    if (r.ok) return;
    if (r.refused && r.reason === 'notLeader' && r.leaderHint !== undefined && r.leaderHint !== this.partitions.nodeId)
      throw this.notLeader(partitionId, r.leaderHint);
    throw new KeyVaError('UNAVAILABLE', `partition ${partitionId}: could not close snapshot timestamp ${ts} (${r.reason}); retry`, this.routing(partitionId));
  }

  /** Replicated mode: only the partition's serving leader answers, after a ReadIndex barrier. */
  private async leaderRead(partitionId: number): Promise<void> {
    const raft = this.raft as Replicator;
    const group = groupOf(partitionId);
    const s = raft.status(group);
    if (s === undefined)
      throw new KeyVaError('WRONG_PARTITION', `partition ${partitionId} is not hosted on node ${this.partitions.nodeId}`, this.routing(partitionId));
    if (s.leader !== undefined && s.leader !== this.partitions.nodeId) throw this.notLeader(partitionId, s.leader);
    if (!s.serving) throw new KeyVaError('UNAVAILABLE', `partition ${partitionId} has no serving leader here yet; retry`, this.routing(partitionId));
    try {
      await this.barrier(partitionId);
    } catch (e) {
      if (e instanceof KeyVaError && e.code === 'NOT_LEADER') {
        const leader = raft.status(group)?.leader;
        if (leader !== undefined && leader !== this.partitions.nodeId) throw this.notLeader(partitionId, leader);
        throw new KeyVaError('UNAVAILABLE', `partition ${partitionId}: leadership is changing; retry`, this.routing(partitionId));
      }
      throw e;
    }
  }

  /**
   * Replicated mode: WRONG_PARTITION when the partition's group here no longer owns `hash` (a
   * split applied, and the map this node routes by does not show it yet).
   */
  private checkOwned(partitionId: number, hash: bigint): void {
    const r = this.raft?.rangeOf?.(groupOf(partitionId));
    if (r !== undefined && (hash < r.start || hash >= r.end))
      throw new KeyVaError(
        'WRONG_PARTITION',
        `partition ${partitionId} was split: it no longer owns hash ${hash}; refresh the partition map`,
        this.routing(partitionId),
      );
  }

  private routing(partitionId: number): Record<string, string> {
    return { partitionId: String(partitionId), epoch: String(this.partitions.current.epoch) };
  }

  private notLeader(partitionId: number, leaderHint: string): KeyVaError {
    return new KeyVaError('NOT_LEADER', `node ${this.partitions.nodeId} does not lead partition ${partitionId}; its leader is ${leaderHint}`, {
      ...this.routing(partitionId),
      leaderHint,
    });
  }

  /**
   * Streams a scan in chunks. Inside a hash tag: that tag's keys in key order. Without one: the
   * whole keyspace, partition by partition in hash order (not key order). Pages share one
   * snapshot timestamp, carried in the cursor.
   */
  async *scan(input: ScanInput): AsyncGenerator<ScanChunk> {
    let tag = input.tag;
    if (tag.length === 0 && input.prefix.length > 0) {
      const t = hashTag(input.prefix);
      // A prefix that contains a complete hash tag pins the tag of every key it matches.
      if (t && input.prefix.indexOf(0x7d) >= 0) tag = Buffer.from(t);
    }
    if (input.limit < 0 || input.limit > this.opts.scanLimitMax)
      throw new KeyVaError('INVALID_ARGUMENT', `limit ${input.limit} is out of range 0..${this.opts.scanLimitMax}`, { field: 'limit' });
    if (input.start.length > 0 && input.end.length > 0 && Buffer.compare(input.start, input.end) >= 0)
      throw new KeyVaError('INVALID_ARGUMENT', 'start must sort before end', { field: 'start' });
    if (tag.length === 0 && (input.start.length > 0 || input.end.length > 0))
      throw new KeyVaError('INVALID_ARGUMENT', 'start/end ranges need a hash tag (keys are only ordered inside a tag)', { field: 'tag' });
    const scanId = scanFingerprint([tag, input.start, input.end, input.prefix, Buffer.from([input.keysOnly ? 1 : 0])]);
    const cursor = input.cursor ? decodeCursor(input.cursor, scanId) : undefined;
    this.checkRead(input.read);
    // Replicated mode: scans are served by the replica that receives them, never forwarded. A new scan first passes, on every partition it reads:
    // linearizable, a ReadIndex barrier (it works on followers too: this replica then holds what
    // the leader had committed); follower, the staleness bound; snapshot, the closed timestamp
    // (a partition whose leader is elsewhere and has not closed the timestamp yet: NOT_LEADER).
    // A node holding only some partitions (more nodes than the replication factor) cannot answer
    // a whole-keyspace scan alone: refused rather than silently incomplete.
    if (this.raft !== undefined && tag.length === 0) {
      const elsewhere = this.partitions.current.partitions.filter((p) => !p.replicas.includes(this.partitions.nodeId));
      if (elsewhere.length > 0)
        throw new KeyVaError(
          'INVALID_ARGUMENT',
          `a scan without a hash tag reads every partition, and node ${this.partitions.nodeId} hosts ${this.partitions.current.partitions.length - elsewhere.length} of ${this.partitions.current.partitions.length} (the cluster has more nodes than the replication factor); scan inside a hash tag ({tag}key) instead`,
          { field: 'tag' },
        );
    }
    if (this.raft !== undefined && cursor === undefined) {
      const ids = tag.length > 0 ? [this.partitions.route(tagHash(tag)).id] : this.partitions.hosted().map((p) => p.id);
      const read = input.read;
      await Promise.all(ids.map((id) => (read.consistency === 'linearizable' ? this.barrier(id) : this.readBarrier(id, read, true)))).catch((e: unknown) => {
        if (e instanceof KeyVaError && e.code === 'NOT_LEADER' && read.consistency === 'linearizable')
          throw new KeyVaError('UNAVAILABLE', `scan: ${e.message}; retry`, {});
        throw e;
      });
    }

    let readTs: Timestamp;
    if (cursor) readTs = cursor.readTs;
    else if (input.read.consistency === 'snapshot') readTs = this.readTs(input.read).engineTs;
    else readTs = this.clock.now();
    if (readTs < this.engine.gcWatermark)
      throw new KeyVaError('SNAPSHOT_TOO_OLD', 'the scan snapshot was garbage-collected; start the scan again', {
        watermark: this.engine.gcWatermark.toString(),
      });

    const limit = input.limit === 0 ? Number.POSITIVE_INFINITY : input.limit;
    const chunkMax = this.opts.scanChunkItemsMax ?? SCAN_CHUNK_ITEMS_MAX;
    let sent = 0;
    let after = cursor ? { hash: cursor.hash, key: cursor.key } : undefined;

    const ranges: ScanRange[] = [];
    if (tag.length > 0) {
      const h = tagHash(tag);
      this.partitions.route(h);
      ranges.push({ startHash: h, endHash: h + 1n, startKey: nonEmpty(input.start), endKey: nonEmpty(input.end), prefix: nonEmpty(input.prefix) });
    } else {
      for (const p of this.partitions.hosted()) {
        if (after && p.end <= after.hash) continue;
        ranges.push({ startHash: p.start, endHash: p.end === 0n ? HASH_SPACE_END : p.end });
      }
    }

    for (const range of ranges) {
      for (;;) {
        const want = Math.min(chunkMax, limit - sent);
        const resume = after && after.hash >= range.startHash ? after : undefined;
        const page = await withSpan('keyva.storage.scan', {}, () =>
          this.engine.scan({ ...range, after: resume }, readTs, this.clock.nowMs(), want, input.keysOnly),
        );
        const items: KeyValueOut[] = [];
        for (const it of page.items) {
          after = { hash: it.hash, key: it.key };
          if (isRequestRecord(it.hash, it.key)) continue; // exactly-once bookkeeping, not user data
          if (tag.length > 0 && !sameTag(it.key, tag)) continue;
          if (tag.length === 0 && input.prefix.length > 0 && !it.key.subarray(0, input.prefix.length).equals(input.prefix)) continue;
          items.push({ key: it.key, value: it.value, version: it.version, expiresAtMs: it.expiresAtMs });
        }
        sent += items.length;
        const limitHit = sent >= limit;
        const lastRange = range === ranges[ranges.length - 1];
        const done = !page.more && lastRange;
        // Every message says where to resume after it; the last one of a complete scan says ''.
        const nextCursor = !done && after ? encodeCursor({ readTs, hash: after.hash, key: after.key, scanId }) : '';
        if (items.length > 0 || limitHit || done) {
          yield { items, nextCursor, readTs };
          if (limitHit || done) return;
        }
        if (!page.more) break;
      }
    }
    // No range to scan at all: still answer once, so callers learn the read timestamp.
    yield { items: [], nextCursor: '', readTs };
  }

  /** Data GC: versions older than the retention window and expired values go. */
  async gc(retentionMs: number): Promise<number> {
    // Exactly-once request records past their retention (replicated deletes, proposed by leaders);
    // a failure is counted in `requestGc.stats` and never holds up the version GC.
    await this.requestGc.run().catch(() => {
      this.requestGc.stats.failures++;
    });
    const watermark = tsFromMs(this.clock.nowMs() - retentionMs);
    if (watermark <= this.engine.gcWatermark) return 0;
    return withSpan('keyva.storage.gc', {}, () => this.engine.gc(watermark, this.clock.nowMs()));
  }

  /** Removes exactly-once request records past retention (docs/adr/0011-exactly-once-writes.md). */
  private createRequestGc(retentionMs: number | undefined): RequestRecordGc {
    const raft = this.raft;
    return new RequestRecordGc({
      engine: this.engine,
      now: () => this.clock.now(),
      retentionMs,
      groups: () => this.partitions.hosted().map((p) => groupOf(p.id)),
      leaderOf: (hash) => {
        const group = groupOf(this.partitions.route(hash).id);
        if (raft === undefined) return group;
        const st = raft.status(group);
        return st?.serving === true ? group : undefined;
      },
      propose: async (group, mutations) => {
        if (raft === undefined) {
          await this.engine.write({ mutations, commitTs: this.clock.now(), nowMs: this.clock.nowMs(), sync: false });
          return;
        }
        const r = await raft.propose(group, mutations);
        if (!r.ok) throw new KeyVaError('UNAVAILABLE', `request record gc: group ${group} refused the delete (${r.reason})`);
      },
    });
  }
}

function nonEmpty(b: Buffer): Buffer | undefined {
  return b.length > 0 ? b : undefined;
}

function sameTag(key: Buffer, tag: Buffer): boolean {
  const t = hashTag(key);
  return t !== undefined && Buffer.compare(Buffer.from(t), tag) === 0;
}
