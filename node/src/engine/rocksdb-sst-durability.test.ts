/**
 * kill -9 and SST ingestion (ADR 0013; what a snapshot install as SST files does): a child process
 * ingests round after round of exported SST files into a RocksDB engine, each round closed by a
 * synced record (the install's applied state), and is SIGKILLed mid-stream. After reopening:
 * every round's range holds all its rows (with their latest entries) or none, and every round
 * whose record is there — every acknowledged round, at least — holds all of them: an ingestion
 * is durable once it returned, before the record written after it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { runRoundsUntilKilled } from '../testing/kill-child.ts';
import { openEngine, ROWS, roundRange, roundRecord, rowHash, rowKey, rowValue } from './testing/crash-ingester.ts';
import { MAX_TS } from './types.ts';

const ROUNDS_BEFORE_KILL = 20;
const KILL_DELAY_MS_MAX = 150;

it('kill -9 during SST ingestions: each round is all-or-nothing and a later synced record implies its rows', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-sst-crash-'));
  try {
    const script = fileURLToPath(new URL('./testing/crash-ingester.ts', import.meta.url));
    const { signal, stderr, acked } = await runRoundsUntilKilled(script, [dir], ROUNDS_BEFORE_KILL, KILL_DELAY_MS_MAX);
    expect(signal, stderr).toBe('SIGKILL');
    expect(acked + 1).toBeGreaterThanOrEqual(ROUNDS_BEFORE_KILL);

    const engine = await openEngine(join(dir, 'dst'));
    try {
      let whole = 0;
      let recorded = 0;
      for (let round = 0; ; round++) {
        const record = await engine.getRaw(roundRecord(round));
        const { start, end } = roundRange(round);
        const page = await engine.scan({ startHash: start, endHash: end }, MAX_TS, 0, ROWS + 1);
        expect([0, ROWS], `round ${round}: all its rows or none`).toContain(page.items.length);
        if (page.items.length === ROWS) {
          whole++;
          for (let i = 0; i < ROWS; i += 29) {
            const v = await engine.get(rowHash(round, i), rowKey(round, i), MAX_TS, 0);
            expect(v?.value.equals(rowValue(round, i)), `round ${round} row ${i}`).toBe(true);
          }
        }
        if (record !== undefined) {
          recorded++;
          expect(page.items.length, `round ${round} is recorded, so its rows are there`).toBe(ROWS);
        } else {
          expect(round, 'an acknowledged round lost its record').toBeGreaterThan(acked);
        }
        if (record === undefined && page.items.length === 0) break;
      }
      expect(engine.latestSpaceMismatches(true)).toEqual([]);
      console.log(`kill -9 SST ingestion: ${acked + 1} rounds acknowledged, ${recorded} recorded on disk, ${whole} whole ranges, none partial`);
    } finally {
      await engine.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
