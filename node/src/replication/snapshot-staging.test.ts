/**
 * The snapshot staging contract (`SnapshotStaging`) on both implementations: raw engine rows
 * (`EngineSnapshotStaging`, on the memory engine) and files (`FileSnapshotStaging`, in a temp
 * dir); then what only files have: checksums, truncation, the sweep, and kill -9 — a snapshot
 * whose `complete` returned is whole after the process is killed, and nothing incomplete ever
 * reads as complete.
 */
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { runRoundsUntilKilled } from '../testing/kill-child.ts';
import type { SnapshotStaging, StagedSnapshotId } from './snapshot-staging.ts';
import { EngineSnapshotStaging } from './snapshot-staging-engine.ts';
import { FileSnapshotStaging } from './snapshot-staging-files.ts';
import { CHUNK_BYTES, CHUNKS, chunkOf, GROUP, idOf, sstFilesOf, sstKindOf } from './testing/crash-stager.ts';

const dirs: string[] = [];
const stagings: SnapshotStaging[] = [];
afterAll(async () => {
  for (const s of stagings) await s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function files(dir: string): FileSnapshotStaging {
  const s = new FileSnapshotStaging(dir);
  stagings.push(s);
  return s;
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'keyva-staging-'));
  dirs.push(d);
  return d;
}

const chunk = (n: number, fill: number) => Buffer.alloc(n, fill);

async function readAll(s: SnapshotStaging, group: number, id: StagedSnapshotId): Promise<Buffer[]> {
  const t = await s.totals(group, id);
  if (t === undefined) throw new Error('not complete');
  const out: Buffer[] = [];
  for await (const c of s.chunks(group, id, t.chunks)) out.push(Buffer.from(c));
  return out;
}

async function stageAll(s: SnapshotStaging, group: number, id: StagedSnapshotId, chunks: Buffer[]): Promise<void> {
  await Promise.all(chunks.map((c, seq) => s.stage(group, id, seq, c)));
}

const implementations: [string, () => Promise<SnapshotStaging>][] = [
  [
    'engine rows',
    async () => {
      const e = new MemoryEngine();
      await e.open();
      return new EngineSnapshotStaging(e);
    },
  ],
  ['files', async () => files(join(await tempDir(), 'snapshots'))],
];

describe.each(implementations)('snapshot staging in %s', (_name, make) => {
  const A = { index: 10, term: 2 };
  const B = { index: 12, term: 3 };

  it('a snapshot reads back only once complete, chunk for chunk', async () => {
    const s = await make();
    const chunks = [chunk(1000, 1), chunk(1, 2), chunk(70_000, 3)];
    await stageAll(s, 1, A, chunks);
    expect(await s.totals(1, A)).toBeUndefined();
    expect(await s.ids(1)).toEqual([A]);
    await s.complete(1, A, { chunks: 3, rows: 42, bytes: 71_001 });
    expect(await s.totals(1, A)).toEqual({ chunks: 3, rows: 42, bytes: 71_001 });
    expect(await readAll(s, 1, A)).toEqual(chunks);
    expect(await s.ids(2)).toEqual([]);
  });

  it('an empty snapshot (no chunks) completes', async () => {
    const s = await make();
    await s.complete(1, A, { chunks: 0, rows: 0, bytes: 0 });
    expect(await s.totals(1, A)).toEqual({ chunks: 0, rows: 0, bytes: 0 });
    expect(await readAll(s, 1, A)).toEqual([]);
  });

  it('a second transfer of the same snapshot replaces what the first staged', async () => {
    const s = await make();
    await stageAll(s, 1, A, [chunk(10, 1), chunk(10, 2), chunk(10, 3)]);
    await s.clear(1, { only: A }); // what the receiver does before a transfer
    await stageAll(s, 1, A, [chunk(5, 9)]);
    await s.complete(1, A, { chunks: 1, rows: 1, bytes: 5 });
    expect(await readAll(s, 1, A)).toEqual([chunk(5, 9)]);
  });

  it('clear deletes every snapshot, only one, those up to an index, never the one kept', async () => {
    const s = await make();
    const C = { index: 15, term: 3 };
    for (const id of [A, B, C]) {
      await stageAll(s, 1, id, [chunk(3, id.index)]);
      await s.complete(1, id, { chunks: 1, rows: 1, bytes: 3 });
    }
    await stageAll(s, 2, A, [chunk(3, 7)]);
    expect(await s.ids(1)).toEqual([A, B, C]);
    expect(await s.clear(1, { upTo: 12, keep: A })).toBeGreaterThan(0);
    expect(await s.ids(1)).toEqual([A, C]);
    await s.clear(1, { only: C });
    expect(await s.ids(1)).toEqual([A]);
    await s.clear(1);
    expect(await s.ids(1)).toEqual([]);
    expect(await s.ids(2)).toEqual([A]); // other groups untouched
  });
});

describe('snapshot staging in files', () => {
  const A = { index: 10, term: 2 };

  it('refuses chunks out of order and a completion with a wrong chunk count', async () => {
    const s = files(join(await tempDir(), 'snapshots'));
    await expect(s.stage(1, A, 1, chunk(3, 1))).rejects.toThrow(/arrived before chunk 0/);
    await s.stage(1, A, 0, chunk(3, 1));
    await expect(s.stage(1, A, 2, chunk(3, 1))).rejects.toThrow(/expected 1/);
    await expect(s.complete(1, A, { chunks: 2, rows: 1, bytes: 3 })).rejects.toThrow(/1 chunks staged, 2 to complete/);
    expect(await s.totals(1, A)).toBeUndefined();
  });

  it('a corrupted or truncated file is a STORAGE_ERROR when read back, never wrong rows', async () => {
    const dir = join(await tempDir(), 'snapshots');
    const s = files(dir);
    await stageAll(s, 1, A, [chunk(100, 1), chunk(100, 2)]);
    await s.complete(1, A, { chunks: 2, rows: 2, bytes: 200 });
    const path = join(dir, 'g1-10-2.snap');
    const bytes = await readFile(path);
    const flipped = Buffer.from(bytes);
    flipped[8 + 100 + 8 + 50] = (flipped[8 + 100 + 8 + 50] as number) ^ 0xff; // inside chunk 1
    await writeFile(path, flipped);
    await expect(readAll(s, 1, A)).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: /chunk 1 fails its checksum/ });
    await writeFile(path, bytes);
    expect(await readAll(s, 1, A)).toEqual([chunk(100, 1), chunk(100, 2)]);
    await truncate(path, bytes.length - 5);
    await expect(s.totals(1, A)).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: /no valid trailer/ });
  });

  it('SST files (ADR 0013): staged piece by piece, complete only with every file listed with its size and CRC-32', async () => {
    const dir = join(await tempDir(), 'snapshots');
    const s = files(dir);
    const data = [chunk(1000, 1), chunk(500, 2)];
    const raw = [chunk(700, 3)];
    const listed = [
      { kind: 'data' as const, bytes: 1500, crc32: crc32(Buffer.concat(data)) },
      { kind: 'raw' as const, bytes: 700, crc32: crc32(Buffer.concat(raw)) },
    ];
    await s.sst.stageSst(1, A, 'data', data[0] as Buffer, true);
    await s.sst.stageSst(1, A, 'data', data[1] as Buffer, false);
    await expect(s.sst.stageSst(1, A, 'raw', chunk(1, 1), false)).rejects.toThrow(/continued before it began/);
    await s.sst.stageSst(1, A, 'raw', raw[0] as Buffer, true);
    expect(await s.totals(1, A)).toBeUndefined();
    // Not listed, wrong size, wrong crc: refused, nothing complete.
    await expect(s.sst.completeSst(1, A, listed.slice(0, 1), { rows: 3, bytes: 2200 })).rejects.toThrow(/raw file was staged but not listed/);
    expect(await s.totals(1, A)).toBeUndefined();

    const B = { index: 11, term: 2 };
    await s.sst.stageSst(1, B, 'data', chunk(10, 1), true);
    await expect(s.sst.completeSst(1, B, [{ kind: 'data', bytes: 10, crc32: 1 }], { rows: 1, bytes: 10 })).rejects.toThrow(/crc/);
    await s.sst.stageSst(1, B, 'data', chunk(10, 1), true); // a second transfer starts the file anew
    await expect(s.sst.completeSst(1, B, [{ kind: 'data', bytes: 11, crc32: crc32(chunk(10, 1)) }], { rows: 1, bytes: 10 })).rejects.toThrow(/staged 10 bytes/);
    expect(await s.totals(1, B)).toBeUndefined();

    // A third transfer of A, whole.
    await s.sst.stageSst(1, A, 'data', data[0] as Buffer, true);
    await s.sst.stageSst(1, A, 'data', data[1] as Buffer, false);
    await s.sst.stageSst(1, A, 'raw', raw[0] as Buffer, true);
    await s.sst.completeSst(1, A, listed, { rows: 3, bytes: 2200 });
    expect(await s.totals(1, A)).toEqual({ chunks: 0, rows: 3, bytes: 2200, sst: listed });
    expect(await files(dir).totals(1, A)).toEqual({ chunks: 0, rows: 3, bytes: 2200, sst: listed }); // from disk alone
    expect((await readFile(s.sst.sstPath(1, A, 'data'))).equals(Buffer.concat(data))).toBe(true);
    expect((await readFile(s.sst.sstPath(1, A, 'raw'))).equals(Buffer.concat(raw))).toBe(true);
    const snap = join(dir, 'g1-10-2.snap');
    const trailer = await readFile(snap);
    const flipped = Buffer.from(trailer);
    flipped[20] = (flipped[20] as number) ^ 0xff;
    await writeFile(snap, flipped);
    await expect(s.totals(1, A)).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: /no valid SST trailer/ });
    await writeFile(snap, trailer);

    // Exports live apart and go at the sweep; clear removes every file of the snapshot.
    const base = await s.sst.exportBase(1, A);
    expect(base.startsWith(join(dir, 'export'))).toBe(true);
    await writeFile(`${base}.d.sst`, 'x');
    expect(await s.clear(1, { only: A })).toBe(3); // two SST files and the .snap
    expect(await s.ids(1)).toEqual([B]);
    await s.sweep(new Set([1]));
    expect((await readdir(dir)).sort()).toEqual(['g1-11-2.d.sst']);
  });

  it('the sweep deletes the staging of groups no longer hosted', async () => {
    const dir = join(await tempDir(), 'snapshots');
    const s = files(dir);
    for (const g of [1, 2, 3]) await stageAll(s, g, A, [chunk(3, g)]);
    await s.complete(2, A, { chunks: 1, rows: 1, bytes: 3 });
    expect(await s.sweep(new Set([1]))).toBe(2);
    expect(await readdir(dir)).toEqual(['g1-10-2.part']);
    expect(await files(join(dir, 'never-made')).sweep(new Set())).toBe(0);
  });

  it('kill -9 while staging: every completed snapshot is whole afterwards; nothing incomplete reads as complete', { timeout: 120_000 }, async () => {
    const dir = join(await tempDir(), 'snapshots');
    const script = fileURLToPath(new URL('./testing/crash-stager.ts', import.meta.url));
    // Killed somewhere inside a later round: its chunks or its completion.
    const { signal, stderr, acked } = await runRoundsUntilKilled(script, [dir], 16, 30);
    expect(signal, stderr).toBe('SIGKILL');

    const s = files(dir);
    const ids = await s.ids(GROUP);
    let complete = 0;
    for (const id of ids) {
      const round = id.index - 1;
      const t = await s.totals(GROUP, id);
      if (t === undefined) {
        expect(round, `round ${round} was acknowledged, so it is complete`).toBeGreaterThan(acked);
        continue;
      }
      complete++;
      if (round % 2 === 1) {
        expect(t).toEqual({ chunks: 0, rows: round, bytes: CHUNKS * CHUNK_BYTES, sst: sstFilesOf(round) });
        for (const kind of ['data', 'raw'] as const) {
          const want = Buffer.concat(Array.from({ length: CHUNKS }, (_, seq) => (sstKindOf(seq) === kind ? chunkOf(round, seq) : Buffer.alloc(0))));
          expect((await readFile(s.sst.sstPath(GROUP, id, kind))).equals(want), `round ${round}'s ${kind} file`).toBe(true);
        }
        continue;
      }
      expect(t).toEqual({ chunks: CHUNKS, rows: round, bytes: CHUNKS * CHUNK_BYTES });
      const got = await readAll(s, GROUP, id);
      expect(
        got.every((c, seq) => c.equals(chunkOf(round, seq))),
        `round ${round}'s chunks`,
      ).toBe(true);
    }
    for (let round = 0; round <= acked; round++) expect(await s.totals(GROUP, idOf(round)), `acknowledged round ${round}`).toBeDefined();
    console.log(`kill -9 staging: ${acked + 1} snapshots acknowledged, ${complete} complete on disk, ${ids.length - complete} incomplete`);
  });
});
