/**
 * Child process of the bulk-load kill -9 test (`rocksdb-load-durability.test.ts`). Opens a
 * RocksDbEngine at argv[2] and, round after round until killed, does what a snapshot install
 * does: `LOADS_PER_ROUND` unsynced bulk loads of `ROWS_PER_LOAD` rows (each row its own version,
 * a raw marker per load in the same write), then ONE synced raw write recording the round done
 * (the install's applied state). For each acknowledged round it prints `ack <round>`.
 *
 * Row keys: `r<round>/l<load>/<i>` at hash `round * 1000 + load`, version `1000 + i`; a load's
 * raw marker `xload/<round>/<load>`; a round's record `xround/<round>`.
 */
import { RocksDbEngine } from '../rocksdb-engine.ts';
import type { ScanItem } from '../types.ts';

export const LOADS_PER_ROUND = 4;
export const ROWS_PER_LOAD = 200;
export const VALUE_BYTES = 1024;

export function loadHash(round: number, load: number): bigint {
  return BigInt(round * 1000 + load);
}

export function loadRows(round: number, load: number): ScanItem[] {
  return Array.from({ length: ROWS_PER_LOAD }, (_, i) => ({
    hash: loadHash(round, load),
    key: Buffer.from(`r${round}/l${load}/${String(i).padStart(4, '0')}`),
    value: Buffer.alloc(VALUE_BYTES, (round + load + i) % 251),
    version: 1000n + BigInt(i),
    expiresAtMs: 0,
  }));
}

export const loadMarker = (round: number, load: number): Buffer => Buffer.from(`xload/${round}/${load}`);
export const roundRecord = (round: number): Buffer => Buffer.from(`xround/${round}`);

if (import.meta.main) {
  const path = process.argv[2];
  if (path === undefined) throw new Error('usage: crash-loader.ts <path>');
  const engine = new RocksDbEngine({ path, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
  await engine.open();
  for (let round = 0; ; round++) {
    const loads: Promise<void>[] = [];
    for (let l = 0; l < LOADS_PER_ROUND; l++)
      loads.push(engine.load({ rows: loadRows(round, l), raw: [{ key: loadMarker(round, l), value: Buffer.from('1') }] }));
    const done = engine.write({ mutations: [{ type: 'rawPut', key: roundRecord(round), value: Buffer.from('1') }], commitTs: 1n, nowMs: 0, sync: true });
    await Promise.all(loads);
    const r = await done;
    if (!r.ok) throw new Error(`round ${round} record failed`);
    process.stdout.write(`ack ${round}\n`);
  }
}
