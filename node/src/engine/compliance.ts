/**
 * The shared compliance suite: every `StorageEngine` runs it (`memory-engine.test.ts`,
 * `rocksdb-engine.test.ts`). It pins the semantics of the contract in `types.ts`.
 */
import { isKeyVaError } from '@keyva/proto/errors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Condition, HASH_SPACE_END, MAX_TS, type Mutation, type StorageEngine, type Timestamp, type WriteBatch, type WriteResult } from './types.ts';

export interface EngineFixture {
  readonly engine: StorageEngine;
  /** Closes the engine (if still open) and removes its files. */
  readonly cleanup: () => Promise<void>;
}

const NOW = 1_700_000_000_000;
const b = (s: string): Buffer => Buffer.from(s);

function put(hash: bigint, key: string | Buffer, value: string | Buffer, opts: { expiresAtMs?: number; condition?: Condition } = {}): Mutation {
  return {
    type: 'put',
    hash,
    key: typeof key === 'string' ? b(key) : key,
    value: typeof value === 'string' ? b(value) : value,
    expiresAtMs: opts.expiresAtMs ?? 0,
    condition: opts.condition,
  };
}

function del(hash: bigint, key: string | Buffer, condition?: Condition): Mutation {
  return { type: 'delete', hash, key: typeof key === 'string' ? b(key) : key, condition };
}

function batch(commitTs: Timestamp, mutations: Mutation[], opts: { nowMs?: number; sync?: boolean } = {}): WriteBatch {
  return { commitTs, mutations, nowMs: opts.nowMs ?? NOW, sync: opts.sync ?? false };
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isKeyVaError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected KeyVaError ${code}, but the call succeeded`);
}

function okResult(r: WriteResult): readonly boolean[] {
  if (!r.ok) throw new Error(`write failed at ${r.failedIndex} (current version ${r.currentVersion})`);
  return r.existed;
}

export function runEngineCompliance(name: string, makeEngine: () => Promise<EngineFixture>): void {
  describe(`StorageEngine compliance: ${name}`, () => {
    let fx: EngineFixture;
    let e: StorageEngine;
    let ts: Timestamp;
    /** Writes one batch at the next commit timestamp. */
    const w = async (mutations: Mutation[], opts: { nowMs?: number; sync?: boolean } = {}): Promise<{ r: WriteResult; ts: Timestamp }> => {
      ts += 10n;
      const at = ts;
      return { r: await e.write(batch(at, mutations, opts)), ts: at };
    };
    const get = (hash: bigint, key: string | Buffer, readTs: Timestamp = MAX_TS, nowMs = NOW) =>
      e.get(hash, typeof key === 'string' ? b(key) : key, readTs, nowMs);
    const str = async (hash: bigint, key: string, readTs: Timestamp = MAX_TS, nowMs = NOW) => (await get(hash, key, readTs, nowMs))?.value.toString();

    beforeEach(async () => {
      fx = await makeEngine();
      e = fx.engine;
      ts = 1000n;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    describe('basic reads and writes', () => {
      it('puts and gets a value with its version and expiry', async () => {
        const { r, ts: at } = await w([put(7n, 'a', 'one')]);
        expect(okResult(r)).toEqual([false]);
        const v = await get(7n, 'a');
        expect(v?.value.toString()).toBe('one');
        expect(v?.version).toBe(at);
        expect(v?.expiresAtMs).toBe(0);
        expect(await get(7n, 'b')).toBeUndefined();
        expect(await get(8n, 'a')).toBeUndefined();
      });

      it('overwrites: the newest version wins and existed is reported', async () => {
        await w([put(1n, 'k', 'v1')]);
        const { r, ts: at } = await w([put(1n, 'k', 'v2')]);
        expect(okResult(r)).toEqual([true]);
        const v = await get(1n, 'k');
        expect(v?.value.toString()).toBe('v2');
        expect(v?.version).toBe(at);
      });

      it('delete writes a tombstone: the key reads as absent, older snapshots still see it', async () => {
        const { ts: t1 } = await w([put(1n, 'k', 'v1')]);
        const { r } = await w([del(1n, 'k')]);
        expect(okResult(r)).toEqual([true]);
        expect(await get(1n, 'k')).toBeUndefined();
        expect(await str(1n, 'k', t1)).toBe('v1');
        const again = await w([del(1n, 'k')]);
        expect(okResult(again.r)).toEqual([false]);
        const missing = await w([del(1n, 'never')]);
        expect(okResult(missing.r)).toEqual([false]);
      });

      it('reads at older timestamps see the version current then (MVCC)', async () => {
        const { ts: t1 } = await w([put(3n, 'k', 'a')]);
        const { ts: t2 } = await w([put(3n, 'k', 'b')]);
        const { ts: t3 } = await w([put(3n, 'k', 'c')]);
        expect(await str(3n, 'k', t1 - 1n)).toBeUndefined();
        expect(await str(3n, 'k', t1)).toBe('a');
        expect(await str(3n, 'k', t2 - 1n)).toBe('a');
        expect((await get(3n, 'k', t2))?.version).toBe(t2);
        expect(await str(3n, 'k', t3 + 5n)).toBe('c');
        expect(await str(3n, 'k', MAX_TS)).toBe('c');
      });

      it('stores keys containing 0x00 and 0xFF bytes, distinct from their neighbours', async () => {
        const keys = [Buffer.from([0]), Buffer.from([0, 0]), Buffer.from([0, 1]), Buffer.from([0xff]), Buffer.from([0xff, 0]), Buffer.from([1, 0, 0xff])];
        await w(keys.map((k, i) => put(5n, k, `v${i}`)));
        for (const [i, k] of keys.entries()) expect((await get(5n, k))?.value.toString()).toBe(`v${i}`);
        const page = await e.scan({ startHash: 5n, endHash: 6n }, MAX_TS, NOW, 100);
        expect(page.items.map((it) => it.key)).toEqual([...keys].sort(Buffer.compare));
      });

      it('stores an empty value and an empty-value put is not a delete', async () => {
        await w([put(2n, 'empty', Buffer.alloc(0))]);
        const v = await get(2n, 'empty');
        expect(v).toBeDefined();
        expect(v?.value.length).toBe(0);
      });

      it('stores a large value (1 MiB)', async () => {
        const big = Buffer.alloc(1 << 20);
        for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
        await w([put(9n, 'big', big)], { sync: true });
        const v = await get(9n, 'big');
        expect(v?.value.equals(big)).toBe(true);
      });

      it('uses the extreme hashes 0 and 2^64-1', async () => {
        await w([put(0n, 'lo', 'x'), put(HASH_SPACE_END - 1n, 'hi', 'y')]);
        expect(await str(0n, 'lo')).toBe('x');
        expect(await str(HASH_SPACE_END - 1n, 'hi')).toBe('y');
        const page = await e.scan({ startHash: 0n, endHash: HASH_SPACE_END }, MAX_TS, NOW, 10);
        expect(page.items.map((i) => i.key.toString())).toEqual(['lo', 'hi']);
      });

      it('returned buffers are copies: mutating them does not change stored data', async () => {
        const value = b('abc');
        await w([put(1n, 'k', value)]);
        value[0] = 0x7a;
        const v1 = await get(1n, 'k');
        expect(v1?.value.toString()).toBe('abc');
        v1!.value[0] = 0x7a;
        expect(await str(1n, 'k')).toBe('abc');
      });

      it('an empty batch succeeds and writes nothing', async () => {
        const { r } = await w([]);
        expect(okResult(r)).toEqual([]);
      });

      it('rejects invalid input with INVALID_ARGUMENT', async () => {
        await expectCode(e.write(batch(0n, [put(1n, 'k', 'v')])), 'INVALID_ARGUMENT');
        await expectCode(e.write(batch(10n, [put(-1n, 'k', 'v')])), 'INVALID_ARGUMENT');
        await expectCode(e.write(batch(10n, [put(HASH_SPACE_END, 'k', 'v')])), 'INVALID_ARGUMENT');
        await expectCode(e.write(batch(10n, [put(1n, 'k', 'v', { expiresAtMs: -5 })])), 'INVALID_ARGUMENT');
        await expectCode(e.scan({ startHash: 1n, endHash: 2n }, MAX_TS, NOW, 0), 'INVALID_ARGUMENT');
        await expectCode(e.scan({ startHash: 2n, endHash: 2n }, MAX_TS, NOW, 10), 'INVALID_ARGUMENT');
      });
    });

    describe('conditions', () => {
      it('absent holds only when there is no live value', async () => {
        const first = await w([put(1n, 'k', 'v', { condition: { kind: 'absent' } })]);
        expect(first.r.ok).toBe(true);
        const second = await w([put(1n, 'k', 'v2', { condition: { kind: 'absent' } })]);
        expect(second.r).toEqual({ ok: false, failedIndex: 0, currentVersion: first.ts });
        await w([del(1n, 'k')]);
        const third = await w([put(1n, 'k', 'v3', { condition: { kind: 'absent' } })]);
        expect(third.r.ok).toBe(true);
      });

      it('exists holds only when there is a live value', async () => {
        const r1 = await w([put(1n, 'k', 'v', { condition: { kind: 'exists' } })]);
        expect(r1.r).toEqual({ ok: false, failedIndex: 0, currentVersion: 0n });
        await w([put(1n, 'k', 'v')]);
        const r2 = await w([del(1n, 'k', { kind: 'exists' })]);
        expect(okResult(r2.r)).toEqual([true]);
        const r3 = await w([del(1n, 'k', { kind: 'exists' })]);
        expect(r3.r.ok).toBe(false);
      });

      it('versionEquals compares the live version (0n = absent)', async () => {
        const { ts: t1 } = await w([put(1n, 'k', 'v1')]);
        const bad = await w([put(1n, 'k', 'x', { condition: { kind: 'versionEquals', version: t1 - 1n } })]);
        expect(bad.r).toEqual({ ok: false, failedIndex: 0, currentVersion: t1 });
        const good = await w([put(1n, 'k', 'v2', { condition: { kind: 'versionEquals', version: t1 } })]);
        expect(good.r.ok).toBe(true);
        const absent = await w([put(1n, 'new', 'n', { condition: { kind: 'versionEquals', version: 0n } })]);
        expect(absent.r.ok).toBe(true);
        expect(await str(1n, 'k')).toBe('v2');
      });

      it('valueEquals compares the live value', async () => {
        await w([put(1n, 'k', 'v1')]);
        const bad = await w([put(1n, 'k', 'x', { condition: { kind: 'valueEquals', value: b('nope') } })]);
        expect(bad.r.ok).toBe(false);
        const good = await w([put(1n, 'k', 'v2', { condition: { kind: 'valueEquals', value: b('v1') } })]);
        expect(good.r.ok).toBe(true);
        const onAbsent = await w([put(1n, 'z', 'x', { condition: { kind: 'valueEquals', value: Buffer.alloc(0) } })]);
        expect(onAbsent.r.ok).toBe(false);
      });

      it('a failed condition writes nothing of the whole batch', async () => {
        await w([put(1n, 'exists', 'e')]);
        const { r } = await w([
          put(1n, 'a', 'A'),
          del(1n, 'exists'),
          put(2n, 'b', 'B'),
          put(1n, 'exists', 'E2', { condition: { kind: 'exists' } }),
          put(1n, 'c', 'C'),
        ]);
        // The condition sees the delete earlier in the batch, so 'exists' fails at index 3.
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.failedIndex).toBe(3);
        expect(await get(1n, 'a')).toBeUndefined();
        expect(await get(2n, 'b')).toBeUndefined();
        expect(await get(1n, 'c')).toBeUndefined();
        expect(await str(1n, 'exists')).toBe('e');
      });

      it('conditions see earlier mutations of the same batch', async () => {
        const { r } = await w([put(1n, 'k', 'v1'), put(1n, 'k', 'v2', { condition: { kind: 'valueEquals', value: b('v1') } })]);
        expect(okResult(r)).toEqual([false, true]);
        expect(await str(1n, 'k')).toBe('v2');
      });

      it('conditions treat an expired value as absent', async () => {
        await w([put(1n, 'k', 'v', { expiresAtMs: NOW + 100 })]);
        const early = await w([put(1n, 'k', 'v2', { condition: { kind: 'absent' } })], { nowMs: NOW + 99 });
        expect(early.r.ok).toBe(false);
        const late = await w([put(1n, 'k', 'v3', { condition: { kind: 'absent' } })], { nowMs: NOW + 100 });
        expect(late.r.ok).toBe(true);
      });
    });

    describe('atomic batches', () => {
      it('applies a multi-mutation batch atomically with one version', async () => {
        await w([put(1n, 'gone', 'x')]);
        const { r, ts: at } = await w([put(1n, 'a', 'A'), put(2n, 'b', 'B'), del(1n, 'gone'), put(3n, 'c', 'C')], { sync: true });
        expect(okResult(r)).toEqual([false, false, true, false]);
        for (const [h, k] of [
          [1n, 'a'],
          [2n, 'b'],
          [3n, 'c'],
        ] as const) {
          expect((await get(h, k))?.version).toBe(at);
        }
        expect(await get(1n, 'gone')).toBeUndefined();
        expect(await get(1n, 'a', at - 1n)).toBeUndefined();
      });
    });

    describe('TTL', () => {
      it('a value reads as absent from expiresAtMs on (injected nowMs)', async () => {
        const { ts: at } = await w([put(1n, 'k', 'v', { expiresAtMs: NOW + 1000 })]);
        const v = await get(1n, 'k', MAX_TS, NOW + 999);
        expect(v?.expiresAtMs).toBe(NOW + 1000);
        expect(v?.version).toBe(at);
        expect(await get(1n, 'k', MAX_TS, NOW + 1000)).toBeUndefined();
        expect(await get(1n, 'k', MAX_TS, NOW + 5000)).toBeUndefined();
        const page = await e.scan({ startHash: 1n, endHash: 2n }, MAX_TS, NOW + 1000, 10);
        expect(page.items).toEqual([]);
      });

      it('an expired newer version hides older live versions', async () => {
        await w([put(1n, 'k', 'old')]);
        await w([put(1n, 'k', 'new', { expiresAtMs: NOW + 10 })]);
        expect(await str(1n, 'k', MAX_TS, NOW)).toBe('new');
        expect(await get(1n, 'k', MAX_TS, NOW + 10)).toBeUndefined();
      });
    });

    describe('scan', () => {
      /** Hashes 1..4, keys k0..k4 each, written in a scrambled order. */
      const seed = async (): Promise<Timestamp> => {
        const ms: Mutation[] = [];
        for (const h of [3n, 1n, 4n, 2n]) for (const k of ['k3', 'k0', 'k4', 'k1', 'k2']) ms.push(put(h, k, `${h}/${k}`));
        return (await w(ms)).ts;
      };
      const names = (items: readonly { hash: bigint; key: Buffer }[]) => items.map((i) => `${i.hash}/${i.key.toString()}`);

      it('scans a whole hash range in storage order (hash, then key)', async () => {
        await seed();
        const page = await e.scan({ startHash: 2n, endHash: 4n }, MAX_TS, NOW, 100);
        expect(page.more).toBe(false);
        expect(names(page.items)).toEqual(['2/k0', '2/k1', '2/k2', '2/k3', '2/k4', '3/k0', '3/k1', '3/k2', '3/k3', '3/k4']);
        expect(page.items[0]?.value.toString()).toBe('2/k0');
        const all = await e.scan({ startHash: 0n, endHash: HASH_SPACE_END }, MAX_TS, NOW, 100);
        expect(all.items.length).toBe(20);
      });

      it('scans one hash with startKey (inclusive) and endKey (exclusive)', async () => {
        await seed();
        const page = await e.scan({ startHash: 2n, endHash: 3n, startKey: b('k1'), endKey: b('k3') }, MAX_TS, NOW, 100);
        expect(names(page.items)).toEqual(['2/k1', '2/k2']);
        const open = await e.scan({ startHash: 2n, endHash: 3n, startKey: b('k10') }, MAX_TS, NOW, 100);
        expect(names(open.items)).toEqual(['2/k2', '2/k3', '2/k4']);
      });

      it('scans one hash by prefix', async () => {
        await w([put(1n, 'user:1', 'a'), put(1n, 'user:2', 'b'), put(1n, 'user', 'c'), put(1n, 'usex', 'd'), put(1n, 'use', 'e'), put(2n, 'user:3', 'f')]);
        const page = await e.scan({ startHash: 1n, endHash: 2n, prefix: b('user') }, MAX_TS, NOW, 100);
        expect(page.items.map((i) => i.key.toString())).toEqual(['user', 'user:1', 'user:2']);
        const withFF = await w([put(1n, Buffer.from([0x61, 0xff, 0xff]), 'ff'), put(1n, Buffer.from([0x61, 0xff]), 'f'), put(1n, Buffer.from([0x62]), 'b')]);
        expect(withFF.r.ok).toBe(true);
        const p2 = await e.scan({ startHash: 1n, endHash: 2n, prefix: Buffer.from([0x61, 0xff]) }, MAX_TS, NOW, 100);
        expect(p2.items.map((i) => i.value.toString())).toEqual(['f', 'ff']);
      });

      it('pages with limit, more and after', async () => {
        await seed();
        const seen: string[] = [];
        let after: { hash: bigint; key: Buffer } | undefined;
        let pages = 0;
        for (;;) {
          const page = await e.scan({ startHash: 0n, endHash: HASH_SPACE_END, after }, MAX_TS, NOW, 3);
          pages++;
          seen.push(...names(page.items));
          expect(page.items.length).toBeLessThanOrEqual(3);
          if (!page.more) break;
          const last = page.items[page.items.length - 1]!;
          after = { hash: last.hash, key: last.key };
        }
        expect(pages).toBe(7);
        expect(seen.length).toBe(20);
        expect(seen.slice(0, 6)).toEqual(['1/k0', '1/k1', '1/k2', '1/k3', '1/k4', '2/k0']);
        const exact = await e.scan({ startHash: 1n, endHash: 2n }, MAX_TS, NOW, 5);
        expect(exact.more).toBe(false);
        const one = await e.scan({ startHash: 1n, endHash: 2n }, MAX_TS, NOW, 4);
        expect(one.more).toBe(true);
      });

      it('keysOnly returns keys and versions with empty values', async () => {
        const at = await seed();
        const page = await e.scan({ startHash: 1n, endHash: 2n }, MAX_TS, NOW, 100, true);
        expect(page.items.length).toBe(5);
        for (const i of page.items) {
          expect(i.value.length).toBe(0);
          expect(i.version).toBe(at);
        }
      });

      it('skips tombstones and expired keys', async () => {
        await w([put(1n, 'a', 'A'), put(1n, 'b', 'B'), put(1n, 'c', 'C', { expiresAtMs: NOW + 5 }), put(1n, 'd', 'D')]);
        await w([del(1n, 'b')]);
        const page = await e.scan({ startHash: 1n, endHash: 2n }, MAX_TS, NOW + 5, 100);
        expect(page.items.map((i) => i.key.toString())).toEqual(['a', 'd']);
      });

      it('scans a snapshot at an older timestamp', async () => {
        const { ts: t1 } = await w([put(1n, 'a', 'a1'), put(1n, 'b', 'b1')]);
        await w([put(1n, 'a', 'a2'), del(1n, 'b'), put(1n, 'c', 'c2')]);
        const old = await e.scan({ startHash: 1n, endHash: 2n }, t1, NOW, 100);
        expect(old.items.map((i) => `${i.key}=${i.value}`)).toEqual(['a=a1', 'b=b1']);
        const cur = await e.scan({ startHash: 1n, endHash: 2n }, MAX_TS, NOW, 100);
        expect(cur.items.map((i) => `${i.key}=${i.value}`)).toEqual(['a=a2', 'c=c2']);
      });

      it('scans keys with many versions and many keys across storage pages', async () => {
        for (let v = 0; v < 5; v++) {
          const ms: Mutation[] = [];
          for (let k = 0; k < 300; k++) ms.push(put(BigInt(k % 3), `key${String(k).padStart(4, '0')}`, `v${v}`));
          await w(ms);
        }
        const seen: string[] = [];
        let after: { hash: bigint; key: Buffer } | undefined;
        for (;;) {
          const page = await e.scan({ startHash: 0n, endHash: 3n, after }, MAX_TS, NOW, 128);
          for (const i of page.items) {
            expect(i.value.toString()).toBe('v4');
            seen.push(i.key.toString());
          }
          if (!page.more) break;
          const last = page.items.at(-1)!;
          after = { hash: last.hash, key: last.key };
        }
        expect(seen.length).toBe(300);
        expect(new Set(seen).size).toBe(300);
      });
    });

    describe('deleteRange', () => {
      it('removes every version of every key in [startHash, endHash) and nothing else', async () => {
        const { ts: t1 } = await w([put(1n, 'a', 'x'), put(2n, 'a', 'x'), put(3n, 'a', 'x'), put(4n, 'a', 'x')]);
        await w([put(2n, 'a', 'y'), put(3n, 'b', 'y')]);
        await e.deleteRange(2n, 4n);
        expect(await str(1n, 'a')).toBe('x');
        expect(await get(2n, 'a')).toBeUndefined();
        expect(await get(2n, 'a', t1)).toBeUndefined();
        expect(await get(3n, 'b')).toBeUndefined();
        expect(await str(4n, 'a')).toBe('x');
        await e.deleteRange(0n, HASH_SPACE_END);
        expect(await get(1n, 'a')).toBeUndefined();
        const page = await e.scan({ startHash: 0n, endHash: HASH_SPACE_END }, MAX_TS, NOW, 10);
        expect(page.items).toEqual([]);
      });

      it('keeps raw keys', async () => {
        await w([{ type: 'rawPut', key: b('mraw'), value: b('r') }, put(1n, 'a', 'x')]);
        await e.deleteRange(0n, HASH_SPACE_END);
        expect((await e.getRaw(b('mraw')))?.toString()).toBe('r');
      });
    });

    describe('gc', () => {
      it('removes shadowed versions and tombstones at or below the watermark', async () => {
        const { ts: t1 } = await w([put(1n, 'k', 'v1'), put(1n, 'gone', 'g')]);
        const { ts: t2 } = await w([put(1n, 'k', 'v2'), del(1n, 'gone')]);
        const { ts: t3 } = await w([put(1n, 'k', 'v3')]);
        expect(e.gcWatermark).toBe(0n);
        const removed = await e.gc(t2, NOW);
        // v1 (shadowed by v2), and both versions of 'gone' (tombstone at t2 and the value under it).
        expect(removed).toBe(3);
        expect(e.gcWatermark).toBe(t2);
        expect(await str(1n, 'k', t2)).toBe('v2');
        expect(await str(1n, 'k', t3)).toBe('v3');
        expect(await get(1n, 'gone', t2)).toBeUndefined();
        expect(await e.gc(t2, NOW)).toBe(0);
        expect(t1).toBeLessThan(t2);
      });

      it('reads below the watermark fail with SNAPSHOT_TOO_OLD', async () => {
        await w([put(1n, 'k', 'v1')]);
        const { ts: t2 } = await w([put(1n, 'k', 'v2')]);
        await e.gc(t2, NOW);
        await expectCode(e.get(1n, b('k'), t2 - 1n, NOW), 'SNAPSHOT_TOO_OLD');
        await expectCode(e.scan({ startHash: 0n, endHash: 2n }, t2 - 1n, NOW, 10), 'SNAPSHOT_TOO_OLD');
        expect(await str(1n, 'k', t2)).toBe('v2');
      });

      it('the watermark never moves back', async () => {
        const { ts: t1 } = await w([put(1n, 'k', 'v1')]);
        await e.gc(t1 + 100n, NOW);
        await e.gc(t1, NOW);
        expect(e.gcWatermark).toBe(t1 + 100n);
      });

      it('removes expired values without changing any read at or above the watermark', async () => {
        const { ts: t1 } = await w([put(1n, 'a', 'live-old')]);
        const { ts: t2 } = await w([put(1n, 'a', 'expiring', { expiresAtMs: NOW + 10 }), put(1n, 'b', 'expiring', { expiresAtMs: NOW + 10 })]);
        // Watermark below t2: 'a' keeps its old live version (a read at t1 sees it), so the
        // expired t2 version above it must stay too (removing it would resurrect 'live-old').
        const removed = await e.gc(t1, NOW + 10);
        expect(removed).toBe(1); // only 'b'@t2: nothing is left under it
        expect(await get(1n, 'a', MAX_TS, NOW + 10)).toBeUndefined();
        expect(await str(1n, 'a', t1, NOW + 10)).toBe('live-old');
        expect(await get(1n, 'b', MAX_TS, NOW)).toBeUndefined();
        const removed2 = await e.gc(t2, NOW + 10);
        expect(removed2).toBe(2);
        expect(await get(1n, 'a', MAX_TS, NOW)).toBeUndefined();
      });

      it('keeps data written after the watermark and reports stats', async () => {
        await w([put(1n, 'k', 'v1')]);
        const s = e.stats();
        expect(s.keysEstimate).toBeGreaterThanOrEqual(0);
        expect(s.sizeBytes).toBeGreaterThanOrEqual(0);
        await e.gc(1n, NOW);
        expect(await str(1n, 'k')).toBe('v1');
      });
    });

    describe('load (bulk load of a deleted range)', () => {
      const row = (hash: bigint, key: string, value: string, version: Timestamp, expiresAtMs = 0) => ({
        hash,
        key: b(key),
        value: b(value),
        version,
        expiresAtMs,
      });

      it('writes every row with its own version as the newest version, and the raw puts, in one call', async () => {
        await w([put(5n, 'a', 'old'), put(6n, 'z', 'outside')]);
        await e.deleteRange(5n, 6n);
        await e.load({
          rows: [row(5n, 'a', 'va', 2000n), row(5n, 'b', 'vb', 1500n, NOW + 1000), row(5n, 'c', 'vc', 2500n, NOW - 1)],
          raw: [{ key: b('mload'), value: b('r') }],
        });
        expect(await get(5n, 'a')).toEqual({ value: b('va'), version: 2000n, expiresAtMs: 0 });
        expect(await get(5n, 'b')).toEqual({ value: b('vb'), version: 1500n, expiresAtMs: NOW + 1000 });
        expect(await get(5n, 'b', MAX_TS, NOW + 1000)).toBeUndefined();
        expect(await get(5n, 'c')).toBeUndefined(); // expired at NOW
        expect(await get(5n, 'a', 1999n)).toBeUndefined(); // no history below the loaded version
        expect(await str(6n, 'z')).toBe('outside');
        expect((await e.getRaw(b('mload')))?.toString()).toBe('r');
        const page = await e.scan({ startHash: 5n, endHash: 6n }, MAX_TS, NOW, 10);
        expect(page.items.map((i) => [i.key.toString(), i.version])).toEqual([
          ['a', 2000n],
          ['b', 1500n],
        ]);
        // Later writes build on the loaded versions (conditions, existed, newest version).
        ts = 3000n;
        const { r } = await w([put(5n, 'a', 'va2', { condition: { kind: 'versionEquals', version: 2000n } })]);
        expect(okResult(r)).toEqual([true]);
        expect(await str(5n, 'a')).toBe('va2');
        expect(await str(5n, 'a', 2000n)).toBe('va');
      });

      it('refuses a malformed load with INVALID_ARGUMENT and writes nothing of it', async () => {
        await expectCode(e.load({ rows: [row(7n, 'a', 'x', 2000n), row(7n, 'a', 'y', 2100n)], raw: [] }), 'INVALID_ARGUMENT');
        await expectCode(e.load({ rows: [row(7n, 'b', 'x', 0n)], raw: [] }), 'INVALID_ARGUMENT');
        await expectCode(e.load({ rows: [row(7n, 'c', 'x', 2000n, -1)], raw: [] }), 'INVALID_ARGUMENT');
        await expectCode(e.load({ rows: [row(7n, 'd', 'x', 2000n)], raw: [{ key: b('dbad'), value: b('') }] }), 'INVALID_ARGUMENT');
        const page = await e.scan({ startHash: 0n, endHash: HASH_SPACE_END }, MAX_TS, NOW, 10);
        expect(page.items).toEqual([]);
      });
    });

    describe('raw keys', () => {
      it('rawPut / getRaw / rawDelete outside the data key space', async () => {
        const { r } = await w([{ type: 'rawPut', key: b('mnode-id'), value: b('n1') }]);
        expect(okResult(r)).toEqual([false]);
        expect((await e.getRaw(b('mnode-id')))?.toString()).toBe('n1');
        // Raw writes are blind: they never read the key, so an overwrite reports false too.
        const r2 = await w([{ type: 'rawPut', key: b('mnode-id'), value: b('n2') }]);
        expect(okResult(r2.r)).toEqual([false]);
        expect((await e.getRaw(b('mnode-id')))?.toString()).toBe('n2');
        await w([{ type: 'rawDelete', key: b('mnode-id') }]);
        expect(await e.getRaw(b('mnode-id'))).toBeUndefined();
        const scan = await e.scan({ startHash: 0n, endHash: HASH_SPACE_END }, MAX_TS, NOW, 10);
        expect(scan.items).toEqual([]);
      });

      it('scanRaw lists a raw range in key order, bounded, and refuses the data key space', async () => {
        const keys = ['r-05', 'r-01', 'r-10', 'r-03', 's-01'];
        await w(keys.map((k) => ({ type: 'rawPut' as const, key: b(k), value: b(`v${k}`) })));
        const rows = await e.scanRaw(b('r-'), b('r.'), 100);
        expect(rows.map((r) => r.key.toString())).toEqual(['r-01', 'r-03', 'r-05', 'r-10']);
        expect(rows[0]?.value.toString()).toBe('vr-01');
        const firstTwo = await e.scanRaw(b('r-'), b('r.'), 2);
        expect(firstTwo.map((r) => r.key.toString())).toEqual(['r-01', 'r-03']);
        const rest = await e.scanRaw(Buffer.concat([b('r-03'), Buffer.from([0])]), b('r.'), 100);
        expect(rest.map((r) => r.key.toString())).toEqual(['r-05', 'r-10']);
        await expectCode(e.scanRaw(b('d'), b('e'), 10), 'INVALID_ARGUMENT');
        await expectCode(e.scanRaw(b('a'), b('z'), 10), 'INVALID_ARGUMENT');
      });

      it('rejects raw keys in the data key space or the engine-reserved space', async () => {
        await expectCode(e.write(batch(10n, [{ type: 'rawPut', key: b('dxx'), value: b('v') }])), 'INVALID_ARGUMENT');
        await expectCode(e.write(batch(10n, [{ type: 'rawPut', key: Buffer.from([0x6d, 0]), value: b('v') }])), 'INVALID_ARGUMENT');
        await expectCode(e.write(batch(10n, [{ type: 'rawDelete', key: Buffer.alloc(0) }])), 'INVALID_ARGUMENT');
        await expectCode(e.getRaw(b('dxx')), 'INVALID_ARGUMENT');
      });

      it('mixes raw and data mutations in one atomic batch', async () => {
        const { r } = await w([{ type: 'rawPut', key: b('mapplied'), value: b('7') }, put(1n, 'k', 'v', { condition: { kind: 'exists' } })]);
        expect(r.ok).toBe(false);
        expect(await e.getRaw(b('mapplied'))).toBeUndefined();
      });
    });

    describe('concurrency', () => {
      it('many concurrent writes resolve in submission order and apply in commitTs order', async () => {
        const n = 200;
        const order: number[] = [];
        const base = ts;
        const writes = Array.from({ length: n }, (_, i) =>
          e.write(batch(base + BigInt(i + 1), [put(1n, 'counter', String(i)), put(2n, `k${i}`, String(i))], { sync: i % 3 === 0 })).then((r) => {
            order.push(i);
            return r;
          }),
        );
        const results = await Promise.all(writes);
        ts = base + BigInt(n + 1);
        expect(results.every((r) => r.ok)).toBe(true);
        expect(order).toEqual(Array.from({ length: n }, (_, i) => i));
        expect(results[0]!.ok && results[0]!.existed[0]).toBe(false);
        expect(results.slice(1).every((r) => r.ok && r.existed[0] === true)).toBe(true);
        expect(await str(1n, 'counter')).toBe(String(n - 1));
        for (let i = 0; i < n; i += 17) expect(await str(1n, 'counter', base + BigInt(i + 1))).toBe(String(i));
        const page = await e.scan({ startHash: 2n, endHash: 3n }, MAX_TS, NOW, 1000);
        expect(page.items.length).toBe(n);
      });

      it('conditional writes against concurrent writes are evaluated serially', async () => {
        // 50 concurrent "create if absent" on one key: exactly one wins.
        const base = ts;
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            e.write(batch(base + BigInt(i + 1), [put(1n, 'lock', `owner${i}`, { condition: { kind: 'absent' } })], { sync: true })),
          ),
        );
        ts = base + 100n;
        expect(results.filter((r) => r.ok).length).toBe(1);
        expect(results[0]!.ok).toBe(true);
        expect(await str(1n, 'lock')).toBe('owner0');
      });

      it('a snapshot read issued while writes are in flight sees every write at or below its timestamp', async () => {
        const base = ts;
        const writes = Array.from({ length: 40 }, (_, i) => e.write(batch(base + BigInt(i + 1), [put(1n, `s${i}`, 'v')], { sync: true })));
        const readAt = base + 20n;
        const page = await e.scan({ startHash: 1n, endHash: 2n }, readAt, NOW, 100);
        const got = await get(1n, 's19', readAt);
        await Promise.all(writes);
        ts = base + 100n;
        expect(page.items.length).toBe(20);
        expect(got?.value.toString()).toBe('v');
      });
    });

    describe('lifecycle', () => {
      it('close is idempotent and operations after close fail', async () => {
        await w([put(1n, 'k', 'v')]);
        await e.close();
        await e.close();
        await expect(e.get(1n, b('k'), MAX_TS, NOW)).rejects.toThrow();
      });

      it('close waits for in-flight writes', async () => {
        const base = ts;
        const writes = Array.from({ length: 20 }, (_, i) => e.write(batch(base + BigInt(i + 1), [put(1n, `c${i}`, 'v')], { sync: true })));
        await e.close();
        const results = await Promise.all(writes);
        expect(results.every((r) => r.ok)).toBe(true);
      });
    });
  });
}
