/**
 * kill -9 and bulk loads (`StorageEngine.load`, what a snapshot install writes): a child process
 * runs rounds of unsynced loads, each round closed by a synced record (the install's applied
 * state), and is SIGKILLed mid-stream. After reopening: every load is all-or-nothing (its rows,
 * their latest entries and its raw marker), and every round whose record is there — every
 * acknowledged round, at least — has all its loads: the record, written after them, never
 * survives without them (the WAL is replayed as a prefix). This is the discipline
 * `snapshot-install.ts` relies on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { runRoundsUntilKilled } from '../testing/kill-child.ts';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { LOADS_PER_ROUND, loadHash, loadMarker, loadRows, ROWS_PER_LOAD, roundRecord } from './testing/crash-loader.ts';
import { MAX_TS } from './types.ts';

const ROUNDS_BEFORE_KILL = 25;
const KILL_DELAY_MS_MAX = 50;

it('kill -9 during bulk loads: each load is all-or-nothing and a later synced record implies every load before it', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-load-crash-'));
  try {
    const script = fileURLToPath(new URL('./testing/crash-loader.ts', import.meta.url));
    const { signal, stderr, acked } = await runRoundsUntilKilled(script, [dir], ROUNDS_BEFORE_KILL, KILL_DELAY_MS_MAX);
    expect(signal, stderr).toBe('SIGKILL');
    expect(acked + 1).toBeGreaterThanOrEqual(ROUNDS_BEFORE_KILL);

    const engine = new RocksDbEngine({ path: dir, compression: 'zstd', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
    await engine.open();
    try {
      let loadsFound = 0;
      let recorded = 0;
      for (let round = 0; ; round++) {
        const record = await engine.getRaw(roundRecord(round));
        let present = 0;
        for (let l = 0; l < LOADS_PER_ROUND; l++) {
          const marker = await engine.getRaw(loadMarker(round, l));
          const page = await engine.scan({ startHash: loadHash(round, l), endHash: loadHash(round, l) + 1n }, MAX_TS, 0, ROWS_PER_LOAD + 1);
          // All or nothing: the rows (read through the latest space) and the marker of one write.
          expect([page.items.length, marker !== undefined], `round ${round} load ${l}`).toEqual(marker === undefined ? [0, false] : [ROWS_PER_LOAD, true]);
          if (marker === undefined) continue;
          present++;
          const want = loadRows(round, l);
          for (let i = 0; i < ROWS_PER_LOAD; i += 37) {
            const v = await engine.get(want[i]!.hash, want[i]!.key, MAX_TS, 0);
            expect(v?.version).toBe(want[i]!.version);
            expect(v?.value.equals(want[i]!.value)).toBe(true);
          }
        }
        loadsFound += present;
        if (record !== undefined) {
          recorded++;
          expect(present, `round ${round} is recorded, so all its loads are there`).toBe(LOADS_PER_ROUND);
        } else {
          expect(round, 'an acknowledged round lost its record').toBeGreaterThan(acked);
        }
        if (record === undefined && present === 0) break;
      }
      console.log(`kill -9 bulk loads: ${acked + 1} rounds acknowledged, ${recorded} recorded on disk, ${loadsFound} complete loads, none partial`);
    } finally {
      await engine.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
