import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { lowerThreadsNamed } from './thread-priority.ts';

/** This process's threads: name and nice value (field 19 of /proc/<tid>/stat). */
function threads(): { name: string; nice: number }[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { name: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), nice: Number(fields[16]) };
  });
}
const niceOf = (prefix: string) =>
  threads()
    .filter((t) => t.name.startsWith(prefix))
    .map((t) => t.nice);

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function open(backgroundNice: number): Promise<RocksDbEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'keyva-thread-priority-'));
  dirs.push(dir);
  const e = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 }, { backgroundNice, startDumpThread: true });
  await e.open();
  return e;
}

async function eventually(check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.runIf(process.platform === 'linux')('background threads at a lower priority (ADR 0016)', () => {
  test('compactions and the dump thread run at the nice value given; flushes, the writer and the event loop do not', async () => {
    const e = await open(7);
    try {
      await eventually(() => niceOf('keyva-rocksdb-d').length === 1 && niceOf('keyva-rocksdb-d')[0] === 7);
      expect(niceOf('rocksdb:low').length).toBeGreaterThan(0);
      expect(niceOf('rocksdb:low').every((n) => n === 7)).toBe(true);
      expect(niceOf('rocksdb:high').every((n) => n === 0)).toBe(true);
      expect(niceOf('keyva-rocksdb-w')).toEqual([0]);
      expect(threads()[0]?.nice).toBe(0); // the main thread (the first task listed is the process itself)
    } finally {
      await e.close();
    }
  });

  test('never raises a thread back: a second database asking for less leaves the shared pools as they are', async () => {
    const first = await open(9);
    const second = await open(4);
    try {
      expect(niceOf('rocksdb:low').every((n) => n === 9)).toBe(true);
      expect(lowerThreadsNamed(/^rocksdb:low/, 5)).toBe(0);
      expect(lowerThreadsNamed(/^rocksdb:low/, 11)).toBeGreaterThan(0);
      expect(niceOf('rocksdb:low').every((n) => n === 11)).toBe(true);
    } finally {
      await second.close();
      await first.close();
    }
  });

  test('0 changes nothing', () => {
    expect(lowerThreadsNamed(/./, 0)).toBe(0);
    expect(threads()[0]?.nice).toBe(0);
  });
});
