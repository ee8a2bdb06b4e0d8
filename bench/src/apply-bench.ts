#!/usr/bin/env node
/**
 * What the storage engine costs per replicated write on one replica, beside raw RocksDB writes of
 * the same rows, in the same run: `node bench/src/apply-bench.ts [--seconds N] [--rounds N]`.
 *
 * A "turn" has the shape of a busy replica's Raft turn (multi-raft.ts): ONE synced log write of
 * 16 groups (an entry and a hard state each), then 16 unsynced apply writes, each a user put
 * with its exactly-once request record (a conditional put), the record's index row and the
 * group's applied state (group-state-machine.ts). Four turns are in flight at once.
 *
 * - `engine`: through `RocksDbEngine.write` (hand-off to the writer thread, planning with
 *   conditions and the latest space, group commit). CPU per apply by thread from /proc: the
 *   calling (main) thread, the writer thread, V8's GC helpers.
 * - `raw`: the rows the engine would write for those turns (`d` and `l` rows included), put into
 *   one chained batch per turn with the binding on the calling thread: no hand-off, no planning,
 *   no lookups. The floor of what the rows cost RocksDB and the binding.
 *
 * Cases alternate per round; the ratio is engine / raw within the round (this machine is noisy).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openEngine } from '../../node/src/engine/open-engine.ts';
import { createRocksLevel } from '../../node/src/engine/rocksdb-binding.ts';
import { toRocksOpenOptions } from '../../node/src/engine/rocksdb-options.ts';
import type { Mutation, RocksDbOptions, StorageEngine } from '../../node/src/engine/types.ts';
import { versionOps } from '../../node/src/engine/write-planner.ts';
import { appliedStateKey, entryKey, hardStateKey } from '../../node/src/replication/raft-keys.ts';
import type { DataMutation } from '../../node/src/replication/replicated-command.ts';
import { recordIndexPut, requestRecordOf } from '../../node/src/replication/request-record.ts';

const USAGE = 'usage: node bench/src/apply-bench.ts [--seconds N (default 5)] [--rounds N (default 2)]';
const GROUPS_PER_TURN = 16;
const TURNS_IN_FLIGHT = 4;
const VALUE = randomBytes(256);
const ENTRY = randomBytes(330); // about an encoded command with a 256 B value
const HARD_STATE = Buffer.alloc(24);
const ROCKS: RocksDbOptions = { path: '', compression: 'tiered', bloomBitsPerKey: 10, blockCacheBytes: 64 << 20, walCompression: false };

/** CPU seconds of this process's threads, by name (digits dropped: "V8Worker" for every GC helper). */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8')
        .trim()
        .replace(/[0-9]+$/, '');
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** The batches of one turn: the log write first, then the applies. */
function turnBatches(turn: number, ts: { next: bigint }): { log: Mutation[]; applies: { mutations: Mutation[]; commitTs: bigint }[] } {
  const log: Mutation[] = [];
  const applies: { mutations: Mutation[]; commitTs: bigint }[] = [];
  for (let g = 1; g <= GROUPS_PER_TURN; g++) {
    log.push({ type: 'rawPut', key: entryKey(g, turn + 1), value: ENTRY }, { type: 'rawPut', key: hardStateKey(g), value: HARD_STATE });
    const commitTs = ts.next++;
    const hash = BigInt(Math.floor(Math.random() * 2 ** 52)) << 12n;
    const requestId = randomBytes(16);
    const user: DataMutation = { type: 'put', hash, key: Buffer.from(`key-${Math.floor(Math.random() * 10_000)}`), value: VALUE, expiresAtMs: 0 };
    const record = requestRecordOf({ id: 1n, mutations: [user], commitTs, nowMs: 0, requestId }) as Mutation;
    applies.push({
      commitTs,
      mutations: [
        record,
        user,
        recordIndexPut({ group: g, version: commitTs, hash, requestId }),
        { type: 'rawPut', key: appliedStateKey(g), value: HARD_STATE },
      ],
    });
  }
  return { log, applies };
}

async function engineTurn(e: StorageEngine, turn: number, ts: { next: bigint }): Promise<void> {
  const { log, applies } = turnBatches(turn, ts);
  const writes = [e.write({ mutations: log, commitTs: 1n, nowMs: 0, sync: true })];
  for (const a of applies) writes.push(e.write({ mutations: a.mutations, commitTs: a.commitTs, nowMs: 0, sync: false }));
  await Promise.all(writes);
}

/** The same rows as the engine writes (data mutations as their `d` and `l` rows: `versionOps`), in one batch per turn. */
function rawTurn(db: ReturnType<typeof createRocksLevel>, turn: number, ts: { next: bigint }): void {
  const { log, applies } = turnBatches(turn, ts);
  const b = db.batch();
  try {
    for (const m of log) if (m.type === 'rawPut') b.put(m.key, m.value);
    for (const a of applies) {
      for (const m of a.mutations) {
        if (m.type === 'rawPut') b.put(m.key, m.value);
        if (m.type !== 'put') continue;
        for (const op of versionOps(m, a.commitTs, true, m.value, 0)) if (op.type === 'put') b.put(op.key, op.value);
      }
    }
    b._writeSync({ sync: true });
  } finally {
    b._closeSync();
  }
}

interface CaseResult {
  readonly applies: number;
  readonly seconds: number;
  /** CPU µs per apply, by thread name, and in total. */
  readonly us: Record<string, number>;
  readonly total: number;
}

async function measure(seconds: number, run: (until: number) => Promise<number>): Promise<CaseResult> {
  const warm = performance.now() + Math.min(1000, seconds * 200);
  await run(warm);
  const before = threadCpu();
  const t0 = performance.now();
  const applies = await run(t0 + seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const us: Record<string, number> = {};
  let total = 0;
  for (const [name, cpu] of threadCpu()) {
    const d = cpu - (before.get(name) ?? 0);
    if (d <= 0) continue;
    us[name] = (d * 1e6) / applies;
    total += us[name];
  }
  return { applies, seconds: elapsed, us, total };
}

async function engineCase(seconds: number): Promise<CaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-apply-bench-'));
  const e = await openEngine({ kind: 'rocksdb', ...ROCKS, path: dir });
  try {
    const ts = { next: 1000n };
    let turn = 0;
    return await measure(seconds, async (until) => {
      let applies = 0;
      const loop = async (): Promise<void> => {
        while (performance.now() < until) {
          await engineTurn(e, turn++, ts);
          applies += GROUPS_PER_TURN;
        }
      };
      await Promise.all(Array.from({ length: TURNS_IN_FLIGHT }, loop));
      return applies;
    });
  } finally {
    await e.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rawCase(seconds: number): Promise<CaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-apply-bench-'));
  const db = createRocksLevel(dir);
  await db.open(toRocksOpenOptions({ ...ROCKS, path: dir }));
  try {
    const ts = { next: 1000n };
    let turn = 0;
    return await measure(seconds, async (until) => {
      let applies = 0;
      while (performance.now() < until) {
        rawTurn(db, turn++, ts);
        applies += GROUPS_PER_TURN;
      }
      return applies;
    });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function parse(argv: string[]): { seconds: number; rounds: number } {
  const { values } = parseArgs({ args: argv, options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '2' } } });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  if (!(seconds > 0 && seconds <= 600) || !Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('bad arguments');
  return { seconds, rounds };
}

const us = (n: number | undefined): string => (n === undefined ? '0' : n.toFixed(0));

async function main(): Promise<number> {
  let o: { seconds: number; rounds: number };
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${USAGE}\n(${(e as Error).message})\n`);
    return 2;
  }
  const lines = [
    `Apply path: CPU per replicated write on one replica (a user put with its request record, index row and applied state, plus a 1/16 share of a synced log write of 16 groups), ${o.seconds} s per case, ${o.rounds} round(s); Node ${process.version}; ${new Date().toISOString()}.`,
    '',
    '| round | case | applies/s | main µs | writer µs | GC µs | total µs | vs raw |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  for (let r = 1; r <= o.rounds; r++) {
    const raw = await rawCase(o.seconds);
    const engine = await engineCase(o.seconds);
    for (const [name, c] of [
      ['raw', raw],
      ['engine', engine],
    ] as const) {
      const row = `| ${r} | ${name} | ${Math.round(c.applies / c.seconds).toLocaleString('en-US')} | ${us(c.us.MainThread)} | ${us(c.us['keyva-rocksdb-w'])} | ${us(c.us.V8Worker)} | ${us(c.total)} | ${(c.total / raw.total).toFixed(2)}x |`;
      process.stdout.write(`${row}\n`);
    }
  }
  return 0;
}

process.exitCode = await main();
