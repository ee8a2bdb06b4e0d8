/**
 * The node's KV operations, independent of transport: validates input against the limits,
 * routes every key to its partition, stamps writes with hybrid-clock commit timestamps, and
 * reads through the MVCC engine. gRPC unary, the pipelined stream and REST all call this.
 */
import { hashTag, keyHash, tagHash } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import type { ClockGuard } from '../clock/clock-guard.ts';
import type { HybridClock } from '../clock/hybrid-clock.ts';
import { msFromTs, tsFromMs } from '../clock/hybrid-clock.ts';
import { HASH_SPACE_END, MAX_TS, type Mutation, type ScanRange, type StorageEngine, type Timestamp } from '../engine/types.ts';
import { withSpan } from '../observability/tracing.ts';
import type { PartitionTable } from '../partition/partition-table.ts';
import type { GroupStatus } from '../replication/group-driver.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import type { ProposeResult } from '../replication/replication-results.ts';
import { checkBatch, checkKey, checkTtl, checkValue, type Limits } from './limits.ts';
import { decodeCursor, encodeCursor, scanFingerprint } from './scan-cursor.ts';
import type { DeleteInput, GetInput, GetOutput, KeyValueOut, MutationInput, PutInput, ReadSpec, ScanChunk, ScanInput } from './types.ts';

export interface KvStoreOptions extends Limits {
  readonly snapshotSkewMsMax: number;
  /** Items per streamed scan chunk. */
  readonly scanChunkItemsMax?: number;
}

const SCAN_CHUNK_ITEMS_MAX = 256;

/** What the store needs from the Multi-Raft runtime in replicated mode (`MultiRaft` implements it). */
export interface Replicator {
  propose(group: GroupId, mutations: readonly DataMutation[]): Promise<ProposeResult>;
  read(group: GroupId): Promise<void>;
  status(group: GroupId): GroupStatus | undefined;
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

  constructor(engine: StorageEngine, partitions: PartitionTable, clock: HybridClock, opts: KvStoreOptions, guard?: ClockGuard, raft?: Replicator) {
    this.engine = engine;
    this.guard = guard;
    this.raft = raft;
    this.partitions = partitions;
    this.clock = clock;
    this.opts = opts;
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
    const hash = keyHash(input.key);
    const partition = this.partitions.route(hash);
    if (this.raft !== undefined && input.read.consistency !== 'follower') await this.leaderRead(partition.id);
    const { engineTs, reportedTs } = this.readTs(input.read);
    const v = await withSpan('keyva.storage.get', { 'keyva.partition': partition.id }, () => this.engine.get(hash, input.key, engineTs, this.clock.nowMs()));
    return v
      ? { found: true, value: v.value, version: v.version, expiresAtMs: v.expiresAtMs, readTs: reportedTs }
      : { found: false, value: Buffer.alloc(0), version: 0n, expiresAtMs: 0, readTs: reportedTs };
  }

  async batchGet(keys: readonly Buffer[], read: ReadSpec): Promise<GetOutput[]> {
    checkBatch(keys.length, this.opts, 'batch get');
    for (const k of keys) checkKey(k, this.opts);
    return Promise.all(keys.map((key) => this.get({ key, read })));
  }

  async put(input: PutInput): Promise<Timestamp> {
    const [version] = await this.batchWrite([{ type: 'put', ...input }]);
    return version as Timestamp;
  }

  async delete(input: DeleteInput): Promise<{ deleted: boolean; version: Timestamp }> {
    const { versions, existed } = await this.write([{ type: 'delete', ...input }]);
    return { deleted: existed[0] ?? false, version: versions[0] as Timestamp };
  }

  async batchWrite(mutations: readonly MutationInput[]): Promise<Timestamp[]> {
    return (await this.write(mutations)).versions;
  }

  /** Validates everything first, so a bad mutation anywhere leaves stored data untouched. */
  private async write(mutations: readonly MutationInput[]): Promise<{ versions: Timestamp[]; existed: readonly boolean[] }> {
    if (mutations.length === 0) throw new KeyVaError('INVALID_ARGUMENT', 'a batch needs at least one mutation', { field: 'mutations' });
    checkBatch(mutations.length, this.opts, 'batch write');
    const nowMs = this.clock.nowMs();
    const prepared: Mutation[] = [];
    const partitionIds = new Set<number>();
    for (const m of mutations) {
      checkKey(m.key, this.opts);
      const hash = keyHash(m.key);
      partitionIds.add(this.partitions.route(hash).id);
      if (m.type === 'put') {
        checkValue(m.value, this.opts);
        checkTtl(m.ttlMs, this.opts);
        prepared.push({ type: 'put', hash, key: m.key, value: m.value, expiresAtMs: m.ttlMs > 0 ? nowMs + m.ttlMs : 0, condition: m.condition });
      } else {
        prepared.push({ type: 'delete', hash, key: m.key, condition: m.condition });
      }
    }
    if (this.raft !== undefined) return this.replicatedWrite(this.raft, prepared, partitionIds);
    // One node holds every partition, so the whole batch is one atomic engine write.
    await this.guard?.ensure();
    const commitTs = this.clock.now();
    const result = await withSpan('keyva.storage.write', { 'keyva.mutations': prepared.length, 'keyva.partitions': partitionIds.size }, () =>
      this.engine.write({ mutations: prepared, commitTs, nowMs, sync: true }),
    );
    if (!result.ok) {
      throw new KeyVaError('CONDITION_FAILED', `condition failed for mutation ${result.failedIndex}; nothing was written`, {
        index: String(result.failedIndex),
        currentVersion: result.currentVersion.toString(),
      });
    }
    return { versions: prepared.map(() => commitTs), existed: result.existed };
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
  ): Promise<{ versions: Timestamp[]; existed: readonly boolean[] }> {
    if (partitionIds.size > 1)
      throw new KeyVaError(
        'INVALID_ARGUMENT',
        `the batch touches ${partitionIds.size} partitions; in a replicated cluster a batch is atomic within one partition only: give its keys one hash tag ({tag}key) or write them separately`,
        { field: 'mutations' },
      );
    const partitionId = [...partitionIds][0] as number;
    await this.guard?.ensure();
    const r = await withSpan('keyva.storage.propose', { 'keyva.mutations': prepared.length, 'keyva.partition': partitionId }, () =>
      raft.propose(groupOf(partitionId), prepared as DataMutation[]),
    );
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
      await raft.read(group);
    } catch (e) {
      if (e instanceof KeyVaError && e.code === 'NOT_LEADER') {
        const leader = raft.status(group)?.leader;
        if (leader !== undefined && leader !== this.partitions.nodeId) throw this.notLeader(partitionId, leader);
        throw new KeyVaError('UNAVAILABLE', `partition ${partitionId}: leadership is changing; retry`, this.routing(partitionId));
      }
      throw e;
    }
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
    // Replicated mode: a new linearizable scan first waits, on every partition it reads, until
    // this replica applied what its leader had committed (ReadIndex works on followers too).
    if (this.raft !== undefined && cursor === undefined && input.read.consistency === 'linearizable') {
      const raft = this.raft;
      const ids = tag.length > 0 ? [this.partitions.route(tagHash(tag)).id] : this.partitions.hosted().map((p) => p.id);
      await Promise.all(ids.map((id) => raft.read(groupOf(id)))).catch((e: unknown) => {
        if (e instanceof KeyVaError && e.code === 'NOT_LEADER') throw new KeyVaError('UNAVAILABLE', `scan: ${e.message}; retry`, {});
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
    const watermark = tsFromMs(this.clock.nowMs() - retentionMs);
    if (watermark <= this.engine.gcWatermark) return 0;
    return withSpan('keyva.storage.gc', {}, () => this.engine.gc(watermark, this.clock.nowMs()));
  }
}

function nonEmpty(b: Buffer): Buffer | undefined {
  return b.length > 0 ? b : undefined;
}

function sameTag(key: Buffer, tag: Buffer): boolean {
  const t = hashTag(key);
  return t !== undefined && Buffer.compare(Buffer.from(t), tag) === 0;
}
