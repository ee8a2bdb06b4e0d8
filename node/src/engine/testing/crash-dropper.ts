/**
 * Child process of the range delete kill -9 test (`rocksdb-file-drop.test.ts`, ADR 0017). Opens a
 * source engine at `<argv[2]>/src` and a target at `<argv[2]>/dst`, fills `PARTITIONS` hash
 * ranges of the target by SST ingestion (bottom-level files, one partition's rows each), then
 * round after round until killed: round `r` deletes the even partition `roundPartition(r)` (its
 * range delete drops its files whole) or ingests it again (`roundDeletes`), and prints
 * `ack <r> <bytes of files dropped so far>` once the engine call returned. The odd partitions,
 * between them, are never touched.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RocksDbEngine } from '../rocksdb-engine.ts';
import type { Mutation } from '../types.ts';
import { openEngine } from './crash-ingester.ts';

export const PARTITIONS = 16;
export const ROWS = 200;
export const VALUE_BYTES = 1024;

const WIDTH = (1n << 64n) / BigInt(PARTITIONS);
export const partitionRange = (p: number) => ({ start: BigInt(p) * WIDTH, end: BigInt(p + 1) * WIDTH });
/** Rows spread over the whole range (and so over every top-hash-byte bucket in it). */
export const rowHash = (p: number, i: number): bigint => BigInt(p) * WIDTH + BigInt(i) * (WIDTH / BigInt(ROWS));
export const rowKey = (p: number, i: number): Buffer => Buffer.from(`p${p}/${String(i).padStart(4, '0')}`);
export const rowValue = (p: number, i: number): Buffer => Buffer.alloc(VALUE_BYTES, (p * 13 + i) % 251);
/** Partitions the rounds take turns on: the even ones. */
export const TOUCHED = PARTITIONS / 2;
export const roundPartition = (r: number): number => 2 * (r % TOUCHED);
/** Whether round `r` deletes its partition (else it ingests it again). */
export const roundDeletes = (r: number): boolean => Math.floor(r / TOUCHED) % 2 === 0;

/** Writes every partition's rows to `src` and ingests each partition into `dst` from an export. */
export async function fillByIngestion(src: RocksDbEngine, dst: RocksDbEngine, exportDir: string): Promise<void> {
  const mutations: Mutation[] = [];
  for (let p = 0; p < PARTITIONS; p++)
    for (let i = 0; i < ROWS; i++) mutations.push({ type: 'put', hash: rowHash(p, i), key: rowKey(p, i), value: rowValue(p, i), expiresAtMs: 0 });
  await src.write({ mutations, commitTs: 1n, nowMs: 0, sync: false });
  for (let p = 0; p < PARTITIONS; p++) await ingestPartition(src, dst, exportDir, p, `fill-${p}`);
}

export async function ingestPartition(src: RocksDbEngine, dst: RocksDbEngine, exportDir: string, p: number, name: string): Promise<void> {
  if (src.sst === undefined || dst.sst === undefined) throw new Error('the RocksDB binding has no SST calls (scripts/rocksdb-native.sh)');
  const { start, end } = partitionRange(p);
  const exported = await src.sst.export(start, end, 1n, undefined, join(exportDir, name));
  await dst.sst.ingest(start, end, exported.files, undefined);
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: crash-dropper.ts <dir>');
  const src = await openEngine(join(dir, 'src'));
  const dst = await openEngine(join(dir, 'dst'));
  const exportDir = join(dir, 'export');
  await mkdir(exportDir, { recursive: true });
  await fillByIngestion(src, dst, exportDir);
  for (let r = 0; ; r++) {
    const p = roundPartition(r);
    if (roundDeletes(r)) await dst.deleteRange(partitionRange(p).start, partitionRange(p).end);
    else await ingestPartition(src, dst, exportDir, p, `r${r}`);
    process.stdout.write(`ack ${r} ${dst.stats().rangeDroppedFileBytes ?? 0}\n`);
  }
}
