/**
 * Removes exactly-once request records past retention (docs/adr/0011-exactly-once-writes.md).
 *
 * Expiry is a replicated event, never a local decision: the LEADER of the group owning a record
 * proposes an ordinary command deleting it, so every replica stops knowing the request id at the
 * same log position (a resend applied after it applies again, on every replica alike). The
 * leader picks records whose version (commit timestamp) is older than `retentionMs` by its hybrid
 * clock, from the local index (`request-record.ts`) ordered by version.
 *
 * Every node, leader or not, also drops index entries whose record is gone (deleted by this GC
 * on another leader, or by a snapshot install), so the index does not outgrow the records.
 */
import { msFromTs, tsFromMs } from '../clock/hybrid-clock.ts';
import { MAX_TS, type StorageEngine, type Timestamp } from '../engine/types.ts';
import type { GroupId } from './raft-keys.ts';
import type { DataMutation } from './replicated-command.ts';
import { decodeRecordIndexKey, REQUEST_ID_RETENTION_MS, recordDelete, recordIndexRange, requestRecordKey } from './request-record.ts';

export interface RequestRecordGcOptions {
  readonly engine: StorageEngine;
  /** The node's hybrid clock (`now()` is a commit-timestamp-scale value). */
  readonly now: () => Timestamp;
  /** Data groups hosted on this node (their index ranges are swept). */
  readonly groups: () => readonly GroupId[];
  /** The group that owns `hash` here, if this node leads it and may propose to it. */
  readonly leaderOf: (hash: bigint) => GroupId | undefined;
  /** Proposes deletes to a group; resolves once applied (any rejection leaves the index entries for the next run). */
  readonly propose: (group: GroupId, mutations: DataMutation[]) => Promise<unknown>;
  readonly retentionMs?: number;
  /** Index entries read (and deletes proposed, per group) at once. */
  readonly batchMax?: number;
  /** Index entries looked at per group per run, at most. */
  readonly sweepMax?: number;
}

export interface RequestRecordGcStats {
  runs: number;
  /** Records whose delete was proposed and applied. */
  deleted: number;
  /** Index entries dropped (their record was gone). */
  indexDropped: number;
  failures: number;
}

export class RequestRecordGc {
  readonly stats: RequestRecordGcStats = { runs: 0, deleted: 0, indexDropped: 0, failures: 0 };
  private readonly o: RequestRecordGcOptions;
  private running: Promise<void> | undefined;

  constructor(o: RequestRecordGcOptions) {
    this.o = o;
  }

  /** One sweep of every hosted group (a sweep already running is joined). */
  run(): Promise<void> {
    this.running ??= this.sweep().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sweep(): Promise<void> {
    this.stats.runs++;
    const cutoff: Timestamp = tsFromMs(msFromTs(this.o.now()) - (this.o.retentionMs ?? REQUEST_ID_RETENTION_MS));
    if (cutoff <= 0n) return;
    for (const group of this.o.groups()) {
      try {
        await this.sweepGroup(group, cutoff);
      } catch {
        this.stats.failures++;
      }
    }
  }

  /** Sweeps a group's index below `cutoff`, batch by batch, at most `sweepMax` entries per run. */
  private async sweepGroup(group: GroupId, cutoff: Timestamp): Promise<void> {
    const batchMax = this.o.batchMax ?? 256;
    const sweepMax = this.o.sweepMax ?? 65_536;
    let { lo } = recordIndexRange(group, cutoff);
    const { hi } = recordIndexRange(group, cutoff);
    for (let seen = 0; seen < sweepMax; ) {
      const rows = await this.o.engine.scanRaw(lo, hi, batchMax);
      if (rows.length === 0) return;
      await this.sweepBatch(rows);
      seen += rows.length;
      if (rows.length < batchMax) return;
      lo = Buffer.concat([(rows[rows.length - 1] as { key: Buffer }).key, Buffer.from([0])]);
    }
  }

  private async sweepBatch(rows: readonly { key: Buffer }[]): Promise<void> {
    const { engine } = this.o;
    const drop: Buffer[] = [];
    const deletes = new Map<GroupId, { mutations: DataMutation[]; index: Buffer[] }>();
    for (const row of rows) {
      const e = decodeRecordIndexKey(row.key);
      if (e === undefined) continue;
      const key = requestRecordKey(e.requestId);
      const live = await engine.get(e.hash, key, MAX_TS, 0);
      // Gone, or recorded again since (a resend after retention): this entry is stale.
      if (live === undefined || live.version !== e.version) {
        drop.push(row.key);
        continue;
      }
      const owner = this.o.leaderOf(e.hash);
      if (owner === undefined) continue; // another node leads it: its GC deletes the record
      let d = deletes.get(owner);
      if (d === undefined) {
        d = { mutations: [], index: [] };
        deletes.set(owner, d);
      }
      d.mutations.push(recordDelete(e.hash, key));
      d.index.push(row.key);
    }
    for (const [owner, d] of deletes) {
      try {
        await this.o.propose(owner, d.mutations);
        this.stats.deleted += d.mutations.length;
        drop.push(...d.index);
      } catch {
        this.stats.failures++;
      }
    }
    if (drop.length > 0) {
      await engine.write({ mutations: drop.map((key) => ({ type: 'rawDelete', key })), commitTs: 1n, nowMs: 0, sync: false });
      this.stats.indexDropped += drop.length;
    }
  }
}
