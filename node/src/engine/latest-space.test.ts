/**
 * The latest space (`l`) against the version history (`d`): random histories of puts, deletes,
 * TTLs, conditional writes, repeated and out-of-order commit timestamps, range deletes and GC
 * (also GC interleaved with writes, in 3-row chunks on RocksDB). After every step the latest
 * entry of every key must equal its newest `d` row byte for byte, and every point read and scan
 * served from `l` must equal the same read served from the `d` history alone, at every stored
 * timestamp; every write outcome, and at the end every read and scan at or above the GC
 * watermark, must match a model that keeps every version.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { versionsPrefix } from './key-codec.ts';
import { MemoryEngine } from './memory-engine.ts';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { type Condition, HASH_SPACE_END, MAX_TS, type Mutation, type ScanRange, type Timestamp, type WriteResult } from './types.ts';

interface Version {
  readonly value: string | undefined;
  readonly expiresAtMs: number;
}

type CondKind = 'none' | 'absent' | 'exists' | 'version' | 'value';
interface OpSpec {
  readonly key: number;
  readonly del: boolean;
  readonly ttl: number;
  readonly cond: CondKind;
}
type Step =
  | { kind: 'write'; ops: OpSpec[]; tsMode: 'fresh' | 'same' | 'older' }
  | { kind: 'gc'; back: number; nowAdvance: number; concurrentWrite: boolean }
  | { kind: 'deleteRange'; start: number; len: number };

const KEYS = 6;
const HASHES = 3;
const opArb: fc.Arbitrary<OpSpec> = fc.record({
  key: fc.nat(KEYS - 1),
  del: fc.boolean(),
  ttl: fc.constantFrom(0, 0, 5, 20),
  cond: fc.constantFrom<CondKind>('none', 'none', 'none', 'absent', 'exists', 'version', 'value'),
});
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      ops: fc.array(opArb, { minLength: 1, maxLength: 3 }),
      tsMode: fc.constantFrom('fresh' as const, 'fresh' as const, 'same' as const, 'older' as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('gc' as const), back: fc.nat(4), nowAdvance: fc.nat(15), concurrentWrite: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteRange' as const), start: fc.nat(HASHES - 1), len: fc.integer({ min: 1, max: 2 }) }) },
);

const hashOf = (k: number): bigint => BigInt(k % HASHES);
const keyOf = (k: number): Buffer => Buffer.from(`k${k}\u0000${k}`); // a 0x00 byte exercises the key escaping

interface LatestEngine {
  write: MemoryEngine['write'];
  get: MemoryEngine['get'];
  gc: MemoryEngine['gc'];
  deleteRange: MemoryEngine['deleteRange'];
  scan: MemoryEngine['scan'];
  latestSpaceMismatches(compareReads: boolean): string[];
}

/** Every item of `range`, page by page (`limit` per page, resuming with `after`). */
async function scanAll(engine: LatestEngine, range: ScanRange, readTs: Timestamp, nowMs: number, limit: number): Promise<string[]> {
  const out: string[] = [];
  let after: ScanRange['after'];
  for (;;) {
    const page = await engine.scan({ ...range, after }, readTs, nowMs, limit);
    for (const i of page.items) out.push(`${i.hash}/${i.key.toString('hex')}=${i.value}@${i.version}`);
    const last = page.items.at(-1);
    if (!page.more || last === undefined) return out;
    after = { hash: last.hash, key: last.key };
  }
}

/** Keeps every version of every key; mirrors the write planner's rules. */
class Model {
  readonly keys = new Map<number, Map<Timestamp, Version>>();

  newest(k: number): { ts: Timestamp; v: Version } | undefined {
    let best: { ts: Timestamp; v: Version } | undefined;
    for (const [ts, v] of this.keys.get(k) ?? []) if (best === undefined || ts > best.ts) best = { ts, v };
    return best;
  }

  read(k: number, readTs: Timestamp, nowMs: number): { ts: Timestamp; value: string } | undefined {
    let best: { ts: Timestamp; v: Version } | undefined;
    for (const [ts, v] of this.keys.get(k) ?? []) if (ts <= readTs && (best === undefined || ts > best.ts)) best = { ts, v };
    if (best === undefined || best.v.value === undefined || (best.v.expiresAtMs !== 0 && best.v.expiresAtMs <= nowMs)) return undefined;
    return { ts: best.ts, value: best.v.value };
  }

  /** Applies a batch like the planner would; returns the expected result. */
  apply(ts: Timestamp, nowMs: number, muts: { k: number; m: Mutation }[]): WriteResult {
    const staged = new Map<number, Map<Timestamp, Version>>();
    const versions = (k: number): Map<Timestamp, Version> => {
      let s = staged.get(k);
      if (s === undefined) {
        s = new Map(this.keys.get(k) ?? []);
        staged.set(k, s);
      }
      return s;
    };
    const existed: boolean[] = [];
    for (let i = 0; i < muts.length; i++) {
      const { k, m } = muts[i]!;
      const vs = versions(k);
      let newest: { ts: Timestamp; v: Version } | undefined;
      for (const [t, v] of vs) if (newest === undefined || t > newest.ts) newest = { ts: t, v };
      const live = newest !== undefined && newest.v.value !== undefined && (newest.v.expiresAtMs === 0 || newest.v.expiresAtMs > nowMs) ? newest : undefined;
      const cond = m.type === 'put' || m.type === 'delete' ? m.condition : undefined;
      if (cond !== undefined) {
        const holds =
          cond.kind === 'absent'
            ? live === undefined
            : cond.kind === 'exists'
              ? live !== undefined
              : cond.kind === 'versionEquals'
                ? cond.version === (live?.ts ?? 0n)
                : live?.v.value === cond.value.toString();
        if (!holds) return { ok: false, failedIndex: i, currentVersion: live?.ts ?? 0n };
      }
      existed.push(live !== undefined);
      if (m.type === 'put') vs.set(ts, { value: m.value.toString(), expiresAtMs: m.expiresAtMs });
      else vs.set(ts, { value: undefined, expiresAtMs: 0 }); // a delete always leaves a tombstone (older commits may arrive later)
    }
    for (const [k, vs] of staged) this.keys.set(k, vs);
    return { ok: true, existed };
  }
}

function condition(kind: CondKind, model: Model, k: number, nowMs: number): Condition | undefined {
  const cur = model.read(k, MAX_TS, nowMs);
  switch (kind) {
    case 'none':
      return undefined;
    case 'absent':
      return { kind: 'absent' };
    case 'exists':
      return { kind: 'exists' };
    case 'version':
      return { kind: 'versionEquals', version: cur?.ts ?? 0n };
    case 'value':
      return { kind: 'valueEquals', value: Buffer.from(cur?.value ?? 'nope') };
  }
}

/** Runs a history with timestamps above `base` (so one engine can host many runs). */
async function runHistory(engine: LatestEngine, steps: Step[], base: Timestamp): Promise<void> {
  const model = new Model();
  let ts = base + 10n;
  let lastTs = ts;
  let now = 1000;
  let watermark = base;
  let gcNow = 0;
  /** Out-of-order commits stay above every timestamp that existed at a GC (GC's contract). */
  let gcHorizon = base;
  const commits: Timestamp[] = [];
  let n = 0;

  const write = async (ops: OpSpec[], commitTs: Timestamp): Promise<void> => {
    now += 1;
    const muts = ops.map((op) => {
      const exp = op.ttl === 0 ? 0 : now + op.ttl;
      const cond = condition(op.cond, model, op.key, now);
      const m: Mutation = op.del
        ? { type: 'delete', hash: hashOf(op.key), key: keyOf(op.key), condition: cond }
        : { type: 'put', hash: hashOf(op.key), key: keyOf(op.key), value: Buffer.from(`v${n++}`), expiresAtMs: exp, condition: cond };
      return { k: op.key, m };
    });
    const want = model.apply(commitTs, now, muts);
    const got = await engine.write({ commitTs, nowMs: now, sync: false, mutations: muts.map((x) => x.m) });
    expect(got).toEqual(want);
    if (!commits.includes(commitTs)) commits.push(commitTs);
  };

  for (const step of steps) {
    if (step.kind === 'write') {
      let commitTs: Timestamp;
      if (step.tsMode === 'same' && lastTs > gcHorizon) commitTs = lastTs;
      else if (step.tsMode === 'older' && lastTs - 5n > gcHorizon) commitTs = lastTs - 5n;
      else {
        ts += 10n;
        commitTs = ts;
      }
      lastTs = commitTs;
      await write(step.ops, commitTs);
    } else if (step.kind === 'gc') {
      const sorted = [...commits].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const wm = sorted[Math.max(0, sorted.length - 1 - step.back)] ?? base;
      now += step.nowAdvance;
      gcHorizon = ts;
      const gc = engine.gc(wm, now);
      if (step.concurrentWrite) {
        ts += 10n;
        lastTs = ts;
        // Its timestamp exists while the GC runs (the GC may see it), so it is within the horizon.
        gcHorizon = ts;
        await write(
          [
            { key: 0, del: false, ttl: 0, cond: 'none' },
            { key: 4, del: true, ttl: 0, cond: 'none' },
          ],
          ts,
        );
      }
      await gc;
      if (wm > watermark) watermark = wm;
      gcNow = Math.max(gcNow, now);
    } else {
      const start = BigInt(step.start);
      const end = BigInt(Math.min(HASHES, step.start + step.len));
      await engine.deleteRange(start, end);
      for (const k of [...model.keys.keys()]) if (hashOf(k) >= start && hashOf(k) < end) model.keys.delete(k);
    }
    // The latest entries equal the newest versions, and reads and scans served from them equal
    // reads and scans of the history alone, at every timestamp.
    expect(engine.latestSpaceMismatches(true), `after ${JSON.stringify(step)}`).toEqual([]);
  }
  const readTss = [...new Set([watermark, ...commits.filter((c) => c >= watermark), ...commits.map((c) => c + 1n).filter((c) => c >= watermark), MAX_TS])];
  for (const readTs of readTss) {
    for (const nowMs of [Math.max(now, gcNow), Math.max(now, gcNow) + 30]) {
      for (let k = 0; k < KEYS; k++) {
        const want = model.read(k, readTs, nowMs);
        const got = await engine.get(hashOf(k), keyOf(k), readTs, nowMs);
        expect(got?.value.toString(), `key ${k} at ${readTs}/${nowMs}`).toBe(want?.value);
        expect(got?.version, `key ${k} at ${readTs}/${nowMs}`).toBe(want?.ts);
      }
      // Scans (served from the latest space) list the same live versions, in storage order.
      const inOrder = [...Array(KEYS).keys()].sort((a, c) => Buffer.compare(versionsPrefix(hashOf(a), keyOf(a)), versionsPrefix(hashOf(c), keyOf(c))));
      const want = (ks: number[]): string[] =>
        ks.flatMap((k) => {
          const v = model.read(k, readTs, nowMs);
          return v === undefined ? [] : [`${hashOf(k)}/${keyOf(k).toString('hex')}=${v.value}@${v.ts}`];
        });
      expect(await scanAll(engine, { startHash: 0n, endHash: HASH_SPACE_END }, readTs, nowMs, 100)).toEqual(want(inOrder));
      expect(await scanAll(engine, { startHash: 0n, endHash: HASH_SPACE_END }, readTs, nowMs, 2)).toEqual(want(inOrder));
      expect(await scanAll(engine, { startHash: 1n, endHash: 2n, prefix: Buffer.from('k4') }, readTs, nowMs, 1)).toEqual(want([4]));
    }
  }
}

describe('latest space', () => {
  it('memory engine: latest entries mirror the newest versions after every kind of mutation', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 30 }), async (steps) => {
        const engine = new MemoryEngine();
        await engine.open();
        await runHistory(engine, steps, 0n);
        await engine.close();
      }),
      { numRuns: 300 },
    );
  });

  it('rocksdb engine (GC in 3-row chunks, interleaved with writes): same property', { timeout: 180_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyva-latest-'));
    const engine = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 }, { groupLimits: { gcChunkRowsMax: 3 } });
    await engine.open();
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), async (steps) => {
          // One database for all runs (opening is slow): each run starts empty, above the last watermark.
          run++;
          await engine.deleteRange(0n, HASH_SPACE_END);
          await runHistory(engine, steps, BigInt(run) * 1_000_000n);
        }),
        { numRuns: 60 },
      );
    } finally {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
