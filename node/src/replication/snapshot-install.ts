/**
 * Writing a completely staged snapshot (`SnapshotStaging`) into the partition's data range,
 * for `GroupStateMachine.installSnapshot`, which records the applied state after. Once the
 * staging is found complete (else nothing is touched), the range is deleted
 * (`engine.deleteRange`), then the rows are written as bulk loads (`engine.load`,
 * `engine/bulk-load.ts`): every row keeps its own version, and the engine writes its derived key
 * spaces (the `l` latest-version space) in the same write, with no per-row lookups (the range
 * was just emptied; a snapshot holds one row per key).
 *
 * Pacing against live traffic: a staged chunk is cut into loads of at most `loadBytesMax` row
 * bytes, and only ONE load is in the writer thread's queue at a time: the live writes that queue
 * up while a load is written run before the next load (the writer is FIFO), so a client write
 * waits behind at most one bounded load. The main thread decodes and checks the next rows
 * while the writer writes.
 *
 * A snapshot staged as SST files (ADR 0013) is not read back: its files are hard-linked and the
 * links ingested by the engine (`SstSnapshots.ingest`: the range deleted first unless empty, then
 * one atomic ingestion, with the group's exactly-once index entries), the staged files kept until
 * the caller clears the staging, so a crash before the applied state is durable installs again.
 *
 * Crash safety is the caller's discipline, unchanged: the loads are unsynced; the applied state
 * is written after the last load (later in the WAL, which RocksDB replays as a prefix), and
 * until it is, the log's snapshot index is above the applied index, so `addGroup` installs the
 * snapshot again from its staging (range delete first) before the group runs.
 */
import { copyFile, link, rm } from 'node:fs/promises';
import { KeyVaError } from '@keyva/proto/errors';
import type { RawPut } from '../engine/bulk-load.ts';
import type { ScanItem, SstKind, StorageEngine } from '../engine/types.ts';
import { decodeRows, type HashRange, rowBytes } from './partition-snapshot.ts';
import { isRequestRecord, recordIndexPut, recordIndexSpace, requestIdOfRecordKey } from './request-record.ts';
import type { SnapshotStaging, StagedSnapshotId, StagedSstFile } from './snapshot-staging.ts';

/** Row bytes per bulk load, at most (one larger row goes alone): bounds how long a live write waits behind one. */
export const INSTALL_LOAD_BYTES_MAX = 256 << 10;

export interface InstallOptions {
  readonly loadBytesMax?: number;
}

export async function writeStagedRows(
  engine: StorageEngine,
  staging: SnapshotStaging,
  group: number,
  range: HashRange,
  id: StagedSnapshotId,
  o: InstallOptions = {},
): Promise<{ rows: number; bytes: number; loads: number }> {
  const totals = await staging.totals(group, id);
  if (totals === undefined) throw new KeyVaError('STORAGE_ERROR', `group ${group}: snapshot ${id.index}/${id.term} is not staged on this node`);
  if (totals.sst !== undefined) {
    await ingestStagedSst(engine, staging, group, range, id, totals.sst);
    return { rows: totals.rows, bytes: totals.bytes, loads: 1 };
  }
  const loadBytesMax = o.loadBytesMax ?? INSTALL_LOAD_BYTES_MAX;
  await engine.deleteRange(range.start, range.end);
  let rows = 0;
  let bytes = 0;
  let loads = 0;
  let inFlight: Promise<void> = Promise.resolve();
  const send = async (piece: ScanItem[]): Promise<void> => {
    const raw: RawPut[] = [];
    // Exactly-once records the snapshot brings get their local GC index entry (request-record.ts).
    for (const r of piece) {
      if (!isRequestRecord(r.hash, r.key)) continue;
      const m = recordIndexPut({ group, version: r.version, hash: r.hash, requestId: requestIdOfRecordKey(r.key) });
      if (m.type === 'rawPut') raw.push({ key: m.key, value: m.value });
    }
    await inFlight; // one load queued at a time (see the file comment)
    loads++;
    inFlight = engine.load({ rows: piece, raw });
    inFlight.catch(() => undefined); // awaited by the next load or below
  };
  for await (const chunk of staging.chunks(group, id, totals.chunks)) {
    bytes += chunk.length;
    // Views into `chunk` (a fresh buffer): the engine copies what it writes.
    let piece: ScanItem[] = [];
    let size = 0;
    for (const r of decodeRows(chunk, false)) {
      if (r.hash < range.start || r.hash >= range.end) throw new KeyVaError('STORAGE_ERROR', `staged snapshot row outside group ${group}'s range`);
      rows++;
      const n = rowBytes(r);
      if (size > 0 && size + n > loadBytesMax) {
        await send(piece);
        piece = [];
        size = 0;
      }
      piece.push(r);
      size += n;
    }
    if (piece.length > 0) await send(piece);
  }
  await inFlight;
  if (rows !== totals.rows || bytes !== totals.bytes) {
    throw new KeyVaError(
      'STORAGE_ERROR',
      `group ${group}: staged snapshot holds ${rows} rows / ${bytes} bytes, its record says ${totals.rows} / ${totals.bytes}`,
    );
  }
  return { rows, bytes, loads };
}

async function ingestStagedSst(
  engine: StorageEngine,
  staging: SnapshotStaging,
  group: number,
  range: HashRange,
  id: StagedSnapshotId,
  files: readonly StagedSstFile[],
): Promise<void> {
  const sst = engine.sst;
  const staged = staging.sst;
  if (sst === undefined || staged === undefined)
    throw new KeyVaError('STORAGE_ERROR', `group ${group}: snapshot ${id.index}/${id.term} is staged as SST files, which this node's engine cannot ingest`);
  const links: { kind: SstKind; path: string }[] = [];
  try {
    for (const f of files) {
      const path = `${staged.sstPath(group, id, f.kind)}.ingest`;
      await rm(path, { force: true });
      await link(staged.sstPath(group, id, f.kind), path).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EXDEV' && e.code !== 'EPERM') throw e;
        await copyFile(staged.sstPath(group, id, f.kind), path);
      });
      links.push({ kind: f.kind, path });
    }
    const index = recordIndexSpace(group);
    await sst.ingest(range.start, range.end, links, { gte: index.gte, lt: index.lt });
  } finally {
    // Gone after an ingestion (moved in); left by a failed one.
    await Promise.all(links.map((l) => rm(l.path, { force: true })));
  }
}
