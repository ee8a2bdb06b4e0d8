/**
 * Snapshot staging in raw engine rows (`SnapshotStaging`): for the memory engine and in-process
 * tests; nodes on RocksDB stage in files (`snapshot-staging-files.ts`).
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { StorageEngine } from '../engine/types.ts';
import { RAFT_PREFIX } from './raft-keys.ts';
import { type SnapshotStaging, type StagedSnapshotId, type StagedTotals, type StagingSelection, selects } from './snapshot-staging.ts';

const STAGING = 0x78; // 'x'
const COMPLETE_SEQ = 0xffff_ffff;
/** Staged rows deleted per engine write. */
const CLEAR_BATCH_ROWS = 256;

function groupStaging(group: number, extra: number): Buffer {
  const b = Buffer.alloc(6 + extra);
  b.writeUInt8(RAFT_PREFIX, 0);
  b.writeUInt32BE(group, 1);
  b.writeUInt8(STAGING, 5);
  return b;
}

function snapshotPrefix(group: number, id: StagedSnapshotId): Buffer {
  const b = groupStaging(group, 16);
  b.writeBigUInt64BE(BigInt(id.index), 6);
  b.writeBigUInt64BE(BigInt(id.term), 14);
  return b;
}

function stagedChunkKey(group: number, id: StagedSnapshotId, seq: number): Buffer {
  if (!Number.isInteger(seq) || seq < 0 || seq >= COMPLETE_SEQ) throw new KeyVaError('INVALID_ARGUMENT', `chunk sequence out of range: ${seq}`);
  const b = Buffer.alloc(26);
  snapshotPrefix(group, id).copy(b, 0);
  b.writeUInt32BE(seq, 22);
  return b;
}

function completeKey(group: number, id: StagedSnapshotId): Buffer {
  const b = Buffer.alloc(26);
  snapshotPrefix(group, id).copy(b, 0);
  b.writeUInt32BE(COMPLETE_SEQ, 22);
  return b;
}

/** The first key after every key starting with `p`. */
function prefixEnd(p: Buffer): Buffer {
  const b = Buffer.from(p);
  for (let i = b.length - 1; i > 0; i--) {
    if (b[i] !== 0xff) {
      b[i] = (b[i] as number) + 1;
      return b.subarray(0, i + 1);
    }
  }
  throw new KeyVaError('INTERNAL', 'staging prefix has no end');
}

function idOfKey(k: Buffer): StagedSnapshotId {
  return { index: Number(k.readBigUInt64BE(6)), term: Number(k.readBigUInt64BE(14)) };
}

/**
 * Staging in raw engine rows of the group's raft key space: `r | group u32 | 'x' | index u64 |
 * term u64 | seq u32`, one row per chunk, plus a completion record at seq `0xFFFFFFFF`
 * (`chunks u32 | rows u64 | bytes u64`) written with `sync`. Dropping a group deletes its whole
 * `r | group` range, staging included.
 */
export class EngineSnapshotStaging implements SnapshotStaging {
  private readonly engine: StorageEngine;

  constructor(engine: StorageEngine) {
    this.engine = engine;
  }

  async stage(group: number, id: StagedSnapshotId, seq: number, rows: Buffer): Promise<void> {
    await this.engine.write({ mutations: [{ type: 'rawPut', key: stagedChunkKey(group, id, seq), value: rows }], commitTs: 1n, nowMs: 0, sync: false });
  }

  async complete(group: number, id: StagedSnapshotId, t: StagedTotals): Promise<void> {
    const v = Buffer.alloc(20);
    v.writeUInt32BE(t.chunks, 0);
    v.writeBigUInt64BE(BigInt(t.rows), 4);
    v.writeBigUInt64BE(BigInt(t.bytes), 12);
    // Synced, after the chunks' writes (the engine writes in submission order).
    await this.engine.write({ mutations: [{ type: 'rawPut', key: completeKey(group, id), value: v }], commitTs: 1n, nowMs: 0, sync: true });
  }

  async totals(group: number, id: StagedSnapshotId): Promise<StagedTotals | undefined> {
    const v = await this.engine.getRaw(completeKey(group, id));
    if (v === undefined) return undefined;
    if (v.length !== 20) throw new KeyVaError('STORAGE_ERROR', `group ${group}: corrupt staged snapshot record`);
    return { chunks: v.readUInt32BE(0), rows: Number(v.readBigUInt64BE(4)), bytes: Number(v.readBigUInt64BE(12)) };
  }

  async *chunks(group: number, id: StagedSnapshotId, chunks: number): AsyncGenerator<Buffer> {
    for (let seq = 0; seq < chunks; seq++) {
      const v = await this.engine.getRaw(stagedChunkKey(group, id, seq));
      if (v === undefined) throw new KeyVaError('STORAGE_ERROR', `group ${group}: staged snapshot ${id.index}/${id.term} lacks chunk ${seq}`);
      yield v;
    }
  }

  async clear(group: number, sel: StagingSelection = {}): Promise<number> {
    const lo = sel.only === undefined ? groupStaging(group, 0) : snapshotPrefix(group, sel.only);
    const hi = prefixEnd(lo);
    let from = lo;
    let deleted = 0;
    for (;;) {
      const rows = await this.engine.scanRaw(from, hi, CLEAR_BATCH_ROWS);
      if (rows.length === 0) return deleted;
      const doomed = rows.filter((r) => selects(sel, idOfKey(r.key)));
      if (doomed.length > 0) {
        await this.engine.write({ mutations: doomed.map((r) => ({ type: 'rawDelete', key: r.key })), commitTs: 1n, nowMs: 0, sync: false });
        deleted += doomed.length;
      }
      from = Buffer.concat([rows[rows.length - 1]!.key, Buffer.alloc(1)]);
    }
  }

  async close(): Promise<void> {}

  async ids(group: number): Promise<StagedSnapshotId[]> {
    const lo = groupStaging(group, 0);
    const hi = prefixEnd(lo);
    const out: StagedSnapshotId[] = [];
    let from = lo;
    for (;;) {
      const rows = await this.engine.scanRaw(from, hi, CLEAR_BATCH_ROWS);
      if (rows.length === 0) return out;
      for (const r of rows) {
        const id = idOfKey(r.key);
        const prev = out[out.length - 1];
        if (prev === undefined || prev.index !== id.index || prev.term !== id.term) out.push(id);
      }
      from = Buffer.concat([rows[rows.length - 1]!.key, Buffer.alloc(1)]);
    }
  }
}
