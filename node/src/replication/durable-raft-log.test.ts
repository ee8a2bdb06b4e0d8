import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { RocksDbEngine } from '../engine/rocksdb-engine.ts';
import type { StorageEngine } from '../engine/types.ts';
import { MemoryRaftStorage } from '../raft/memory-storage.ts';
import type { Entry, ReplicaId } from '../raft/types.ts';
import { DurableRaftLog, type StagedWrite } from './durable-raft-log.ts';

const conf = { voters: ['a', 'b', 'c'] as ReplicaId[], learners: [] as ReplicaId[] };
const entry = (index: number, term: number, tag = ''): Entry => ({ type: 'normal', index, term, data: new Uint8Array(Buffer.from(`e${index}t${term}${tag}`)) });

async function persist(engine: StorageEngine, log: DurableRaftLog, w: StagedWrite): Promise<void> {
  const mutations = log.stage(w);
  if (mutations.length > 0) await engine.write({ mutations, commitTs: 1n, nowMs: 0, sync: true });
  log.commit(w);
}

function same(a: DurableRaftLog | MemoryRaftStorage, b: DurableRaftLog | MemoryRaftStorage): void {
  expect(a.hardState()).toEqual(b.hardState());
  expect(a.snapshotMetadata()).toEqual(b.snapshotMetadata());
  expect([a.firstIndex(), a.lastIndex()]).toEqual([b.firstIndex(), b.lastIndex()]);
  if (a.lastIndex() >= a.firstIndex()) {
    const ea = a.entries(a.firstIndex(), a.lastIndex() + 1, 1e9, 1e9).map((e) => ({ ...e, data: e.type === 'normal' ? Buffer.from(e.data).toString() : '' }));
    const eb = b.entries(b.firstIndex(), b.lastIndex() + 1, 1e9, 1e9).map((e) => ({ ...e, data: e.type === 'normal' ? Buffer.from(e.data).toString() : '' }));
    expect(ea).toEqual(eb);
  }
}

type Op =
  | { k: 'append'; at: number; n: number; term: number }
  | { k: 'hs'; term: number; commit: number }
  | { k: 'compact'; back: number }
  | { k: 'snapshot'; ahead: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('append' as const), at: fc.integer({ min: 0, max: 6 }), n: fc.integer({ min: 1, max: 5 }), term: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ k: fc.constant('hs' as const), term: fc.integer({ min: 1, max: 9 }), commit: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ k: fc.constant('compact' as const), back: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ k: fc.constant('snapshot' as const), ahead: fc.integer({ min: 1, max: 5 }) }),
);

for (const kind of ['memory', 'rocksdb'] as const) {
  describe(`DurableRaftLog on ${kind}`, () => {
    const open = async (dir: string): Promise<StorageEngine> => {
      const e = kind === 'memory' ? new MemoryEngine() : new RocksDbEngine({ path: dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 });
      await e.open();
      return e;
    };

    it('reloads exactly what was persisted, through conflicts, compactions and snapshots (model check)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
          const dir = mkdtempSync(join(tmpdir(), 'keyva-raftlog-'));
          // The memory engine's data lives in the object: keep one for the reload.
          let engine = await open(dir);
          const log = await DurableRaftLog.open(engine, 7);
          const model = new MemoryRaftStorage();
          let commit = 0;
          for (const op of ops) {
            if (op.k === 'append') {
              const start = Math.max(model.firstIndex(), model.lastIndex() + 1 - op.at);
              const ents = Array.from({ length: op.n }, (_, i) => entry(start + i, op.term, String(ops.indexOf(op))));
              await persist(engine, log, { snapshot: undefined, entries: ents, hardState: undefined });
              model.append(ents);
            } else if (op.k === 'hs') {
              const hs = { term: op.term, vote: 'b' as ReplicaId, commit: Math.min(op.commit, model.lastIndex()) };
              commit = hs.commit;
              await persist(engine, log, { snapshot: undefined, entries: [], hardState: hs });
              model.setHardState(hs);
            } else if (op.k === 'compact') {
              const idx = commit - op.back;
              if (idx > model.snapshotMetadata().index && model.term(idx) !== undefined) {
                const data = new Uint8Array(Buffer.from(`snap@${idx}`));
                const m = log.stageCompact(idx, conf, data);
                await engine.write({ mutations: m, commitTs: 1n, nowMs: 0, sync: true });
                log.commitCompact(idx, conf, data);
                model.compact(idx, conf, data);
              }
            } else {
              const idx = model.lastIndex() + op.ahead;
              const snap = { metadata: { index: idx, term: 5, confState: conf }, data: new Uint8Array(Buffer.from(`leader-snap@${idx}`)) };
              await persist(engine, log, { snapshot: snap, entries: [], hardState: undefined });
              model.applySnapshot(snap);
            }
            same(log, model);
          }
          if (kind === 'rocksdb') {
            await engine.close();
            engine = await open(dir);
          }
          const reloaded = await DurableRaftLog.open(engine, 7);
          same(reloaded, model);
          expect(Buffer.from(reloaded.snapshot()?.data ?? []).toString()).toBe(Buffer.from(model.snapshot()?.data ?? []).toString());
          // Another group's log is untouched and empty.
          const other = await DurableRaftLog.open(engine, 8);
          expect(other.lastIndex()).toBe(0);
          await engine.close();
          rmSync(dir, { recursive: true, force: true });
        }),
        { numRuns: kind === 'memory' ? 100 : 15 },
      );
    });
  });
}
