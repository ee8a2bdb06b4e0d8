/**
 * Child process of the SST ingestion kill -9 test (`rocksdb-sst-durability.test.ts`). Opens a
 * source engine at `<argv[2]>/src` and a target at `<argv[2]>/dst` and, round after round until
 * killed, does what a snapshot install as SST files does (ADR 0013): rows written to the
 * source, exported as an SST file, ingested into the target's range for the round (the latest
 * rows derived, one atomic ingestion), then ONE synced raw write recording the round done (the
 * install's applied state). For each acknowledged round it prints `ack <round>`.
 *
 * Round `r` owns the hash range `[r << 40, (r + 1) << 40)`: `ROWS` keys `s<r>/<i>` at hash
 * `(r << 40) + i`; its record is the raw key `xsst/<r>`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RocksDbEngine } from '../rocksdb-engine.ts';
import type { Mutation } from '../types.ts';

export const ROWS = 300;
export const VALUE_BYTES = 1024;

export const roundRange = (round: number) => ({ start: BigInt(round) << 40n, end: BigInt(round + 1) << 40n });
export const rowKey = (round: number, i: number): Buffer => Buffer.from(`s${round}/${String(i).padStart(4, '0')}`);
export const rowHash = (round: number, i: number): bigint => (BigInt(round) << 40n) + BigInt(i);
export const rowValue = (round: number, i: number): Buffer => Buffer.alloc(VALUE_BYTES, (round * 7 + i) % 251);
export const roundRecord = (round: number): Buffer => Buffer.from(`xsst/${round}`);

export const openEngine = async (path: string): Promise<RocksDbEngine> => {
  const e = new RocksDbEngine({ path, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
  await e.open();
  return e;
};

if (import.meta.main) {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: crash-ingester.ts <dir>');
  const src = await openEngine(join(dir, 'src'));
  const dst = await openEngine(join(dir, 'dst'));
  if (src.sst === undefined || dst.sst === undefined) throw new Error('the RocksDB binding has no SST calls (scripts/rocksdb-native.sh)');
  await mkdir(join(dir, 'export'), { recursive: true });
  for (let round = 0; ; round++) {
    const mutations: Mutation[] = Array.from({ length: ROWS }, (_, i) => ({
      type: 'put',
      hash: rowHash(round, i),
      key: rowKey(round, i),
      value: rowValue(round, i),
      expiresAtMs: 0,
    }));
    await src.write({ mutations, commitTs: BigInt(round + 1), nowMs: 0, sync: false });
    const { start, end } = roundRange(round);
    const exported = await src.sst.export(start, end, BigInt(round + 1), undefined, join(dir, 'export', `r${round}`));
    await dst.sst.ingest(start, end, exported.files, undefined);
    const r = await dst.write({ mutations: [{ type: 'rawPut', key: roundRecord(round), value: Buffer.from('1') }], commitTs: 1n, nowMs: 0, sync: true });
    if (!r.ok) throw new Error(`round ${round} record failed`);
    process.stdout.write(`ack ${round}\n`);
  }
}
