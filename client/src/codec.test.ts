import { KeyVaError } from '@keyva/proto/errors';
import { describe, expect, test } from 'vitest';
import { casCondition, condition, entryFromGet, partitionMapFromWire, readOptions, toBuffer, toKey, ttl, u64, writeOptions } from './codec.ts';
import { HASH_SPACE_END } from './keyspace/index.ts';
import { rejection } from './testing/rejection.ts';

const code = (f: () => unknown) => rejection(Promise.resolve().then(f)).then((e) => e.code);

describe('bytes', () => {
  test('strings are UTF-8; Uint8Array views keep their window; Buffers pass through', () => {
    expect(toBuffer('héllo')).toEqual(Buffer.from('héllo', 'utf8'));
    const backing = new Uint8Array([1, 2, 3, 4, 5]);
    expect([...toBuffer(backing.subarray(1, 3))]).toEqual([2, 3]);
    const b = Buffer.from('x');
    expect(toBuffer(b)).toBe(b);
  });

  test('an empty key is KEY_EMPTY; anything else is INVALID_ARGUMENT', async () => {
    expect(await code(() => toKey(''))).toBe('KEY_EMPTY');
    expect(await code(() => toKey(new Uint8Array()))).toBe('KEY_EMPTY');
    expect(await code(() => toBuffer(42 as unknown as string))).toBe('INVALID_ARGUMENT');
  });
});

describe('conditions', () => {
  test('none, each kind, and at most one', async () => {
    expect(condition({})).toBeUndefined();
    expect(condition({ ifAbsent: false })).toBeUndefined();
    expect(condition({ ifAbsent: true })).toEqual({ absent: true });
    expect(condition({ ifExists: true })).toEqual({ exists: true });
    expect(condition({ ifVersion: 42n })).toEqual({ versionEquals: '42' });
    expect(condition({ ifValue: 'v' })).toEqual({ valueEquals: Buffer.from('v') });
    expect(await code(() => condition({ ifAbsent: true, ifValue: 'v' }))).toBe('INVALID_ARGUMENT');
    expect(await code(() => condition({ ifVersion: -1n }))).toBe('INVALID_ARGUMENT');
  });

  test('cas expectations', async () => {
    expect(casCondition({ version: 7n })).toEqual({ versionEquals: '7' });
    expect(casCondition({ value: new Uint8Array([1]) })).toEqual({ valueEquals: Buffer.from([1]) });
    expect(casCondition({ absent: true })).toEqual({ absent: true });
    expect(await code(() => casCondition({} as never))).toBe('INVALID_ARGUMENT');
  });
});

describe('options', () => {
  test('read consistency maps to wire enums; snapshotTs implies snapshot', async () => {
    expect(readOptions({})).toEqual({ consistency: 'LINEARIZABLE', snapshotTs: '0' });
    expect(readOptions({ consistency: 'follower' })).toEqual({ consistency: 'FOLLOWER', snapshotTs: '0' });
    expect(readOptions({ snapshotTs: 2n ** 63n })).toEqual({ consistency: 'SNAPSHOT', snapshotTs: '9223372036854775808' });
    expect(await code(() => readOptions({ consistency: 'snapshot' }))).toBe('INVALID_ARGUMENT');
    expect(await code(() => readOptions({ consistency: 'eventual' as never }))).toBe('INVALID_ARGUMENT');
  });

  test('write concern', async () => {
    expect(writeOptions(undefined)).toEqual({ concern: 'MAJORITY' });
    expect(writeOptions('all')).toEqual({ concern: 'ALL' });
    expect(writeOptions('leader')).toEqual({ concern: 'LEADER' });
    expect(await code(() => writeOptions('some' as never))).toBe('INVALID_ARGUMENT');
  });

  test('ttl and u64', async () => {
    expect(ttl(undefined)).toBe('0');
    expect(ttl(1500)).toBe('1500');
    expect(await code(() => ttl(-5))).toBe('INVALID_TTL');
    expect(await code(() => ttl(Number.NaN))).toBe('INVALID_TTL');
    expect(u64(2n ** 64n - 1n, 'x')).toBe('18446744073709551615');
    expect(await code(() => u64(2n ** 64n, 'x'))).toBe('INVALID_ARGUMENT');
  });
});

describe('wire decoding', () => {
  test('GetResponse to Entry', () => {
    const key = Buffer.from('k');
    expect(entryFromGet(key, { found: false, value: Buffer.alloc(0), version: '0', expiresAtMs: '0', readTs: '1' })).toBeUndefined();
    expect(entryFromGet(key, null)).toBeUndefined();
    expect(entryFromGet(key, { found: true, value: Buffer.from('v'), version: '18446744073709551615', expiresAtMs: '1700000000000', readTs: '1' })).toEqual({
      key,
      value: Buffer.from('v'),
      version: 2n ** 64n - 1n,
      expiresAtMs: 1_700_000_000_000,
    });
  });

  test('partition map: end 0 is 2^64, empty leader is none, invalid maps are INTERNAL', async () => {
    const map = partitionMapFromWire({
      map: {
        epoch: '3',
        partitions: [
          { id: 0, start: '0', end: '9223372036854775808', generation: '1', replicas: ['n1'], leaderHint: 'n1' },
          { id: 1, start: '9223372036854775808', end: '0', generation: '2', replicas: ['n1'], leaderHint: '' },
        ],
        nodes: [{ id: 'n1', grpcAddress: 'h:1', httpAddress: 'h:2', state: 'ACTIVE', incarnation: '' }],
      },
    });
    expect(map.epoch).toBe(3n);
    expect(map.partitions[1]?.end).toBe(HASH_SPACE_END);
    expect(map.partitions[1]?.leaderHint).toBeUndefined();
    expect(map.nodes.get('n1' as never)?.grpcAddress).toBe('h:1');
    const gap = { map: { epoch: '1', partitions: [{ id: 0, start: '5', end: '0', generation: '1', replicas: [], leaderHint: '' }], nodes: [] } };
    const e = await rejection(Promise.resolve().then(() => partitionMapFromWire(gap)));
    expect(e).toBeInstanceOf(KeyVaError);
    expect(e.code).toBe('INTERNAL');
    expect(await code(() => partitionMapFromWire({ map: null }))).toBe('INTERNAL');
  });
});
