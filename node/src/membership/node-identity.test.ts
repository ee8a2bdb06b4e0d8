/**
 * The durable identity of a data directory (node-identity.ts) on a real RocksDB directory, and
 * the transport's incarnation guard (pure). The cluster-level behaviour is in wiped-data-dir.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { metaKey } from '../engine/key-codec.ts';
import { RocksDbEngine } from '../engine/rocksdb-engine.ts';
import { incarnationGuard, loadNodeIdentity } from './node-identity.ts';

const root = mkdtempSync(join(tmpdir(), 'keyva-identity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** Deterministic "random" bytes: 0x01, 0x02, ... */
const random = (n: number) => Buffer.from(Array.from({ length: n }, () => ++counter & 0xff));

async function withEngine<T>(dir: string, fn: (e: RocksDbEngine) => Promise<T>): Promise<T> {
  const e = new RocksDbEngine({ path: join(root, dir), compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 });
  await e.open();
  try {
    return await fn(e);
  } finally {
    await e.close();
  }
}

it('writes the id and a new incarnation once, and reads the same ones back after a restart', async () => {
  const clock = new HybridClock();
  const first = await withEngine('a', (e) => loadNodeIdentity(e, 'node-a', clock, random));
  expect(first.id).toBe('node-a');
  expect(first.incarnation).toMatch(/^[0-9a-f]{16}$/);
  const again = await withEngine('a', (e) => loadNodeIdentity(e, undefined, clock, random));
  expect(again).toEqual(first);
  // Another directory under the same id gets another incarnation.
  const other = await withEngine('b', (e) => loadNodeIdentity(e, 'node-a', clock, random));
  expect(other.incarnation).not.toBe(first.incarnation);
  // A generated id when none is configured.
  expect((await withEngine('c', (e) => loadNodeIdentity(e, undefined, clock, random))).id).toMatch(/^n-[0-9a-f]{8}$/);
});

it('refuses another node id for a directory, and a corrupt incarnation, without changing them', async () => {
  const clock = new HybridClock();
  await expect(withEngine('a', (e) => loadNodeIdentity(e, 'node-z', clock, random))).rejects.toThrow(/belongs to node 'node-a'/);
  await withEngine('d', async (e) => {
    await e.write({ mutations: [{ type: 'rawPut', key: metaKey('incarnation'), value: Buffer.from('nope') }], commitTs: 1n, nowMs: 0, sync: true });
    await expect(loadNodeIdentity(e, 'node-d', clock, random)).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    expect((await e.getRaw(metaKey('incarnation')))?.toString()).toBe('nope');
  });
  expect((await withEngine('a', (e) => loadNodeIdentity(e, undefined, clock, random))).id).toBe('node-a');
});

it('the guard refuses only a known node with another incarnation, and logs it once a minute', () => {
  const registry = new Map([['n1', 'aaaaaaaaaaaaaaaa']]);
  const logged: string[] = [];
  let now = 0;
  const refuses = incarnationGuard(
    (id) => registry.get(id),
    (from) => logged.push(from),
    () => now,
  );
  expect(refuses('n1', 'aaaaaaaaaaaaaaaa')).toBeUndefined();
  expect(refuses('n1', undefined)).toBeUndefined(); // a sender without one (memory engine)
  expect(refuses('n2', 'bbbbbbbbbbbbbbbb')).toBeUndefined(); // not registered yet
  expect(refuses('n1', 'bbbbbbbbbbbbbbbb')).toMatch(/node n1 registered before with data directory aaaaaaaaaaaaaaaa.*\(bbbbbbbbbbbbbbbb\)/);
  now = 30_000;
  expect(refuses('n1', 'bbbbbbbbbbbbbbbb')).toBeDefined();
  expect(logged).toEqual(['n1']);
  now = 61_000;
  refuses('n1', 'bbbbbbbbbbbbbbbb');
  expect(logged).toEqual(['n1', 'n1']);
});
