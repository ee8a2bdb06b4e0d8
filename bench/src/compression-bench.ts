#!/usr/bin/env node
/**
 * Block compression micro-benchmark behind ADR 0015. Run: `node bench/src/compression-bench.ts
 * [--mib 128] [--rounds 2] [--value-size 1024]`.
 *
 * For each setting of the node's `--compression` (tiered, zstd, none) and two kinds of values
 * (random bytes, which do not compress, and text-like bytes, which do), writes `--mib` MiB of
 * 1 KiB records through `RocksDbEngine` (256 per batch, not synced), reopens the database (the
 * open flushes the rest of the WAL into an SST file), waits until RocksDB's background threads
 * are idle (flushes and compactions done), and reports the CPU seconds those threads used, the
 * whole process's CPU (the reopen's flush included), the write time and the SST bytes on disk.
 * Settings run in turn, their order rotating every round; the ratios are against `zstd` (the
 * binding's default) measured in the same run. Needs KeyVa's build of the RocksDB binding for `tiered`
 * (`bash scripts/rocksdb-native.sh`); Linux (/proc) for the thread CPU.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RocksDbEngine } from '../../node/src/engine/index.ts';
import type { Mutation, RocksDbOptions } from '../../node/src/engine/types.ts';
import { processCpuSec, threadsCpuSec } from './proc-cpu.ts';

type Setting = Extract<RocksDbOptions['compression'], 'tiered' | 'zstd' | 'none'>;
type Kind = 'random' | 'text';
const SETTINGS: readonly Setting[] = ['tiered', 'zstd', 'none'];
const KINDS: readonly Kind[] = ['random', 'text'];
const BATCH_ROWS = 256;

interface Run {
  readonly writeSec: number;
  readonly backgroundCpuSec: number;
  readonly processCpuSec: number;
  readonly sstMiB: number;
}

const { values: args } = parseArgs({
  options: { mib: { type: 'string', default: '128' }, rounds: { type: 'string', default: '2' }, 'value-size': { type: 'string', default: '1024' } },
});
const mib = Number(args.mib);
const rounds = Number(args.rounds);
const valueSize = Number(args['value-size']);
if (!(mib > 0) || !Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(valueSize) || valueSize < 16) {
  process.stderr.write('usage: node bench/src/compression-bench.ts [--mib <n> > 0] [--rounds <n> >= 1] [--value-size <bytes> >= 16]\n');
  process.exit(2);
}

const WORDS = ['partition', 'replica', 'leader', 'follower', 'snapshot', 'compaction', 'ring', 'epoch', 'learner', 'quorum'];
/** About 1 KiB of words with random numbers: compresses roughly 3-4x, like JSON or log lines. */
function textValue(bytes: number): Buffer {
  let s = '';
  while (s.length < bytes) s += `${WORDS[Math.floor(Math.random() * WORDS.length)]}=${Math.floor(Math.random() * 100_000)} `;
  return Buffer.from(s.slice(0, bytes));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const backgroundCpu = () => threadsCpuSec(process.pid, 'rocksdb');

async function runOnce(setting: Setting, kind: Kind): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-compression-bench-'));
  const open = async () => {
    const e = new RocksDbEngine({ path: dir, compression: setting, bloomBitsPerKey: 10, blockCacheBytes: 64 << 20 });
    await e.open();
    return e;
  };
  let engine: RocksDbEngine | undefined;
  try {
    engine = await open();
    const rows = Math.ceil((mib * 2 ** 20) / valueSize);
    const bg0 = backgroundCpu();
    const cpu0 = processCpuSec(process.pid);
    const t0 = performance.now();
    let ts = 1n;
    for (let i = 0; i < rows; i += BATCH_ROWS) {
      const mutations: Mutation[] = [];
      for (let j = i; j < Math.min(rows, i + BATCH_ROWS); j++) {
        // Half the keys are written twice: compactions have older versions to drop.
        const k = j % Math.ceil(rows / 2);
        const value = kind === 'random' ? randomBytes(valueSize) : textValue(valueSize);
        mutations.push({ type: 'put', hash: (BigInt(k) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn, key: Buffer.from(`record-${k}`), value, expiresAtMs: 0 });
      }
      await engine.write({ commitTs: ts++, mutations, nowMs: Date.now(), sync: false });
    }
    const writeSec = (performance.now() - t0) / 1000;
    // Close and reopen: the open flushes what was left in the WAL into an SST file under this
    // setting, so all the data is in SST files (a small run would otherwise write none).
    await engine.close();
    engine = undefined; // closed: not closed again below should the reopen fail
    engine = await open();
    // Background work done: its threads used no CPU for 2 s (at most 60 s).
    let last = backgroundCpu();
    for (let idle = 0, waited = 0; idle < 4 && waited < 120; waited++) {
      await sleep(500);
      const now = backgroundCpu();
      idle = now === last ? idle + 1 : 0;
      last = now;
    }
    let sst = 0;
    for (const f of readdirSync(dir)) if (f.endsWith('.sst')) sst += statSync(join(dir, f)).size;
    return { writeSec, backgroundCpuSec: last - bg0, processCpuSec: processCpuSec(process.pid) - cpu0, sstMiB: sst / 2 ** 20 };
  } finally {
    await engine?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = new Map<string, Run[]>();
const keyOf = (s: Setting, k: Kind) => `${k}/${s}`;
process.stdout.write(`# compression-bench ${new Date().toISOString()}: ${mib} MiB of ${valueSize}-byte values per run, ${rounds} round(s)\n`);
for (let round = 0; round < rounds; round++) {
  for (const kind of KINDS) {
    for (let i = 0; i < SETTINGS.length; i++) {
      const setting = SETTINGS[(i + round) % SETTINGS.length]!;
      const r = await runOnce(setting, kind);
      results.set(keyOf(setting, kind), [...(results.get(keyOf(setting, kind)) ?? []), r]);
      process.stdout.write(
        `round ${round + 1} ${kind.padEnd(6)} ${setting.padEnd(6)} write ${r.writeSec.toFixed(1)} s, background CPU ${r.backgroundCpuSec.toFixed(2)} s, process CPU ${r.processCpuSec.toFixed(1)} s, SST ${r.sstMiB.toFixed(0)} MiB\n`,
      );
    }
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ratio = (a: number, b: number) => (b === 0 ? 'n/a' : `${(a / b).toFixed(2)}x`);
process.stdout.write(
  '\n| values | compression | write (s) | background CPU (s) | vs zstd | CPU ms per MiB written | process CPU (s) | vs zstd | SST on disk (MiB) | vs zstd |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n',
);
for (const kind of KINDS) {
  const z = results.get(keyOf('zstd', kind))!;
  for (const setting of SETTINGS) {
    const rs = results.get(keyOf(setting, kind))!;
    const bg = mean(rs.map((r) => r.backgroundCpuSec));
    const cpu = mean(rs.map((r) => r.processCpuSec));
    const sst = mean(rs.map((r) => r.sstMiB));
    process.stdout.write(
      `| ${kind} | ${setting} | ${mean(rs.map((r) => r.writeSec)).toFixed(1)} | ${bg.toFixed(2)} | ${ratio(bg, mean(z.map((r) => r.backgroundCpuSec)))} | ${((bg * 1000) / mib).toFixed(0)} | ${cpu.toFixed(1)} | ${ratio(cpu, mean(z.map((r) => r.processCpuSec)))} | ${sst.toFixed(0)} | ${ratio(sst, mean(z.map((r) => r.sstMiB)))} |\n`,
    );
  }
}
