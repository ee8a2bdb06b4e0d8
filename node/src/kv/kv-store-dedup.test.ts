/**
 * Exactly-once writes on a lone node (no Raft): the request id's record is written in the same
 * engine batch as the write, a resend is answered with the first version, records never show in
 * scans, and the request-record GC forgets ids past retention.
 */
import { randomBytes } from 'node:crypto';
import { type NodeId, PartitionMap, uniformPartitions } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import { beforeEach, describe, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { PartitionTable } from '../partition/partition-table.ts';
import { KvStore } from './kv-store.ts';

const SELF = 'n1' as NodeId;
const k = (s: string) => Buffer.from(s);

describe('KvStore exactly-once writes (lone node)', () => {
  let wallMs: number;
  let kv: KvStore;
  let engine: MemoryEngine;
  beforeEach(async () => {
    wallMs = 1_000_000;
    engine = new MemoryEngine();
    await engine.open();
    const table = new PartitionTable(new PartitionMap(1n, uniformPartitions(4, [SELF])), SELF);
    kv = new KvStore(engine, table, new HybridClock({ nowMs: () => wallMs }), {
      keyBytesMax: 1024,
      valueBytesMax: 1024,
      ttlMsMax: 1e9,
      batchOpsMax: 1000,
      scanLimitMax: 1000,
      snapshotSkewMsMax: 5000,
      requestIdRetentionMs: 60_000,
    });
  });
  const value = async (key: string) => (await kv.get({ key: k(key), read: { consistency: 'linearizable' } })).value.toString();
  const scanKeys = async () => {
    const out: string[] = [];
    for await (const c of kv.scan({
      tag: Buffer.alloc(0),
      start: Buffer.alloc(0),
      end: Buffer.alloc(0),
      prefix: Buffer.alloc(0),
      limit: 0,
      cursor: '',
      read: { consistency: 'linearizable' },
      keysOnly: true,
    }))
      for (const it of c.items) out.push(it.key.toString());
    return out;
  };

  it('applies a request id once, answers resends with the first version, and forgets it after retention', async () => {
    const requestId = randomBytes(16);
    const spec = { concern: 'majority', requestId } as const;
    const v1 = await kv.put({ key: k('a'), value: k('1'), ttlMs: 0 }, spec);
    const v2 = await kv.put({ key: k('a'), value: k('2'), ttlMs: 0 });
    expect(await kv.put({ key: k('a'), value: k('1'), ttlMs: 0 }, spec)).toBe(v1);
    expect(await value('a')).toBe('2');
    expect(v2).toBeGreaterThan(v1);
    // A conditional write that applied: its resend is answered as applied, not CONDITION_FAILED.
    const cond = { concern: 'majority', requestId: randomBytes(16) } as const;
    const c1 = await kv.put({ key: k('c'), value: k('x'), ttlMs: 0, condition: { kind: 'absent' } }, cond);
    expect(await kv.put({ key: k('c'), value: k('x'), ttlMs: 0, condition: { kind: 'absent' } }, cond)).toBe(c1);
    expect(await scanKeys()).toEqual(expect.arrayContaining(['a', 'c']));
    expect(await scanKeys()).toHaveLength(2);

    // Within retention the GC keeps the records; past it, it deletes them and the id applies again.
    wallMs += 60_000;
    await kv.gc(3_600_000);
    expect(kv.requestGc.stats.deleted).toBe(0);
    wallMs += 1_001;
    await kv.gc(3_600_000);
    expect(kv.requestGc.stats.deleted).toBe(2);
    const late = await kv.put({ key: k('a'), value: k('1'), ttlMs: 0 }, spec);
    expect(late).toBeGreaterThan(v2);
    expect(await value('a')).toBe('1');
  });

  it('refuses a request id that is not 16 bytes before writing anything', async () => {
    const e = await kv.put({ key: k('a'), value: k('1'), ttlMs: 0 }, { concern: 'majority', requestId: Buffer.alloc(3) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KeyVaError);
    expect((e as KeyVaError).code).toBe('INVALID_ARGUMENT');
    expect((e as KeyVaError).details.field).toBe('request_id');
    expect(await scanKeys()).toEqual([]);
  });
});
