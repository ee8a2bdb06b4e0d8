/**
 * Differential property test: random histories of writes, deletes, TTLs and GC on an engine
 * versus a naive model that keeps every version. GC must not change any read at or above the
 * watermark (with a wall clock at or after the GC's); scans must equal the model's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryEngine } from './memory-engine.ts';
import { RocksDbEngine } from './rocksdb-engine.ts';
import { HASH_SPACE_END, type Mutation, type StorageEngine, type Timestamp } from './types.ts';

interface Version {
  readonly ts: Timestamp;
  readonly value: string | undefined;
  readonly expiresAtMs: number;
}

type Step = { kind: 'write'; ops: { key: number; del: boolean; ttl: number }[] } | { kind: 'gc'; back: number; nowAdvance: number };

const KEYS = 6;
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      ops: fc.array(fc.record({ key: fc.nat(KEYS - 1), del: fc.boolean(), ttl: fc.constantFrom(0, 0, 5, 20) }), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gc' as const), back: fc.nat(4), nowAdvance: fc.nat(15) }) },
);

const hashOf = (k: number) => BigInt(k % 3);
const keyOf = (k: number) => Buffer.from(`k${k}`);

function modelRead(versions: Version[], readTs: Timestamp, nowMs: number): Version | undefined {
  let best: Version | undefined;
  for (const v of versions) if (v.ts <= readTs && (best === undefined || v.ts > best.ts)) best = v;
  if (best === undefined || best.value === undefined || (best.expiresAtMs !== 0 && best.expiresAtMs <= nowMs)) return undefined;
  return best;
}

async function runHistory(engine: StorageEngine, steps: Step[]): Promise<void> {
  const model = new Map<number, Version[]>();
  let ts = 10n;
  let now = 1000;
  let watermark = 0n;
  let gcNow = 0;
  const commits: Timestamp[] = [];
  for (const step of steps) {
    if (step.kind === 'write') {
      ts += 10n;
      now += 1;
      const mutations: Mutation[] = [];
      const seen = new Set<number>();
      for (const op of step.ops) {
        if (seen.has(op.key)) continue;
        seen.add(op.key);
        const exp = op.ttl === 0 ? 0 : now + op.ttl;
        mutations.push(
          op.del
            ? { type: 'delete', hash: hashOf(op.key), key: keyOf(op.key) }
            : { type: 'put', hash: hashOf(op.key), key: keyOf(op.key), value: Buffer.from(`v${ts}`), expiresAtMs: exp },
        );
        const list = model.get(op.key) ?? [];
        list.push({ ts, value: op.del ? undefined : `v${ts}`, expiresAtMs: op.del ? 0 : exp });
        model.set(op.key, list);
      }
      const r = await engine.write({ commitTs: ts, mutations, nowMs: now, sync: false });
      expect(r.ok).toBe(true);
      commits.push(ts);
    } else {
      const wm = commits[Math.max(0, commits.length - 1 - step.back)] ?? 0n;
      now += step.nowAdvance;
      await engine.gc(wm, now);
      if (wm > watermark) watermark = wm;
      gcNow = Math.max(gcNow, now);
    }
  }
  // Check every read at or above the watermark, at clocks at or after the last GC.
  const readTss = [...new Set([watermark, ...commits.filter((c) => c >= watermark), ts + 5n])];
  for (const readTs of readTss) {
    for (const nowMs of [Math.max(now, gcNow), Math.max(now, gcNow) + 30]) {
      const expected: string[] = [];
      for (let k = 0; k < KEYS; k++) {
        const want = modelRead(model.get(k) ?? [], readTs, nowMs);
        const got = await engine.get(hashOf(k), keyOf(k), readTs, nowMs);
        expect(got?.value.toString(), `key ${k} at ${readTs}/${nowMs}`).toBe(want?.value);
        expect(got?.version).toBe(want?.ts);
        if (want !== undefined) expected.push(`${hashOf(k)}/k${k}=${want.value}`);
      }
      const page = await engine.scan({ startHash: 0n, endHash: HASH_SPACE_END }, readTs, nowMs, 100);
      const got = page.items.map((i) => `${i.hash}/${i.key}=${i.value}`);
      expect(got).toEqual([...expected].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    }
  }
}

describe('MVCC model', () => {
  it('memory engine: reads and scans match a model that never forgets, across GC', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), async (steps) => {
        const engine = new MemoryEngine();
        await engine.open();
        await runHistory(engine, steps);
        await engine.close();
      }),
      { numRuns: 300 },
    );
  });

  it('rocksdb engine (GC in 3-row chunks): same property', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyva-model-'));
    const engine = new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 }, { groupLimits: { gcChunkRowsMax: 3 } });
    await engine.open();
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 20 }), async (steps) => {
          // One database for all runs (opening is slow): each run gets its own empty slate.
          run++;
          await engine.deleteRange(0n, HASH_SPACE_END);
          await runHistoryFresh(engine, steps, run);
        }),
        { numRuns: 25 },
      );
    } finally {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** runHistory on a reused engine: shifts all timestamps above the previous runs' watermark. */
async function runHistoryFresh(engine: StorageEngine, steps: Step[], run: number): Promise<void> {
  const base = BigInt(run) * 1_000_000n;
  const shifted: StorageEngine = {
    kind: engine.kind,
    supports: engine.supports,
    open: () => engine.open(),
    close: () => engine.close(),
    write: (b) => engine.write({ ...b, commitTs: b.commitTs + base }),
    get: async (h, k, readTs, nowMs) => {
      const v = await engine.get(h, k, readTs + base, nowMs);
      return v && { ...v, version: v.version - base };
    },
    scan: (r, readTs, nowMs, limit, keysOnly) => engine.scan(r, readTs + base, nowMs, limit, keysOnly),
    load: (l) => engine.load({ ...l, rows: l.rows.map((r) => ({ ...r, version: r.version + base })) }),
    deleteRange: (a, b) => engine.deleteRange(a, b),
    gc: (wm, nowMs) => engine.gc(wm + base, nowMs),
    get gcWatermark() {
      return engine.gcWatermark - base;
    },
    getRaw: (k) => engine.getRaw(k),
    scanRaw: (a, b, n) => engine.scanRaw(a, b, n),
    stats: () => engine.stats(),
  };
  await runHistory(shifted, steps);
}
