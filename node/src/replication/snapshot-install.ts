/**
 * Writing a completely staged snapshot (`snapshot-staging.ts`) into the partition's data range,
 * for `GroupStateMachine.installSnapshot`, which records the applied state after. Once the
 * staging is found complete (else nothing is touched), the range is deleted
 * (`engine.deleteRange`), then the rows are written chunk by chunk (bounded memory): rows are
 * re-checked against the range and written with one engine write per distinct version (a
 * write stamps its commit timestamp on every row), through the engine's ordinary write path, so
 * the engine keeps every key space it derives from the data (the `l` latest-version space) in
 * step, as for any write.
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { Mutation, ScanItem, StorageEngine, Timestamp } from '../engine/types.ts';
import { decodeRows, type HashRange } from './partition-snapshot.ts';
import { isRequestRecord, recordIndexPut, requestIdOfRecordKey } from './request-record.ts';
import { type StagedSnapshotId, stagedChunks, stagedTotals } from './snapshot-staging.ts';

export async function writeStagedRows(engine: StorageEngine, group: number, range: HashRange, id: StagedSnapshotId): Promise<{ rows: number; bytes: number }> {
  const totals = await stagedTotals(engine, group, id);
  if (totals === undefined) throw new KeyVaError('STORAGE_ERROR', `group ${group}: snapshot ${id.index}/${id.term} is not staged on this node`);
  await engine.deleteRange(range.start, range.end);
  let rows = 0;
  let bytes = 0;
  // The writes of one chunk run while the next chunk is read and decoded (at most two chunks in
  // flight): the writer thread, which plans every row, is the bottleneck; keep it busy.
  let previous: Promise<unknown> = Promise.resolve();
  for await (const chunk of stagedChunks(engine, group, id, totals.chunks)) {
    bytes += chunk.length;
    const byVersion = new Map<Timestamp, ScanItem[]>();
    // Views into `chunk` (a fresh buffer): the engine copies what it writes.
    for (const r of decodeRows(chunk, false)) {
      if (r.hash < range.start || r.hash >= range.end) throw new KeyVaError('STORAGE_ERROR', `staged snapshot row outside group ${group}'s range`);
      const list = byVersion.get(r.version);
      if (list === undefined) byVersion.set(r.version, [r]);
      else list.push(r);
      rows++;
    }
    const writes: Promise<unknown>[] = [];
    for (const [version, list] of byVersion) {
      const mutations: Mutation[] = list.map((r) => ({ type: 'put', hash: r.hash, key: r.key, value: r.value, expiresAtMs: r.expiresAtMs }));
      // Exactly-once records the snapshot brings get their local GC index entry (request-record.ts).
      for (const r of list)
        if (isRequestRecord(r.hash, r.key)) mutations.push(recordIndexPut({ group, version, hash: r.hash, requestId: requestIdOfRecordKey(r.key) }));
      writes.push(engine.write({ mutations, commitTs: version, nowMs: 0, sync: false }));
    }
    await previous;
    previous = Promise.all(writes);
    previous.catch(() => undefined); // awaited on the next chunk or below
  }
  await previous;
  if (rows !== totals.rows || bytes !== totals.bytes) {
    throw new KeyVaError(
      'STORAGE_ERROR',
      `group ${group}: staged snapshot holds ${rows} rows / ${bytes} bytes, its record says ${totals.rows} / ${totals.bytes}`,
    );
  }
  return { rows, bytes };
}
