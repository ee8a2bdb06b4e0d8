import { describe, expect, it } from 'vitest';
import type { KvRow } from './ordered-kv.ts';
import { type MultiGetReader, PrefetchedReader } from './prefetched-reader.ts';

/** A base reader over a map that counts its calls. */
function base(rows: Record<string, string>) {
  const calls = { getMany: [] as string[][], get: [] as string[], range: 0 };
  const value = (k: Buffer) => (k.toString() in rows ? Buffer.from(rows[k.toString()] as string) : undefined);
  const reader: MultiGetReader = {
    getMany: (keys) => {
      calls.getMany.push(keys.map(String));
      return keys.map(value);
    },
    get: (k) => {
      calls.get.push(k.toString());
      return value(k);
    },
    range: (): KvRow[] => {
      calls.range++;
      return [];
    },
  };
  return { reader, calls };
}

const b = (s: string) => Buffer.from(s);

describe('PrefetchedReader', () => {
  it('reads the distinct keys in one call, then answers them (absent ones too) without the base', () => {
    const { reader, calls } = base({ a: '1', c: '3' });
    const p = new PrefetchedReader(reader, [b('a'), b('b'), b('a'), b('c')]);
    expect(calls.getMany).toEqual([['a', 'b', 'c']]);
    expect(p.get(b('a'))?.toString()).toBe('1');
    expect(p.get(b('b'))).toBeUndefined();
    expect(p.get(b('c'))?.toString()).toBe('3');
    expect(calls.get).toEqual([]);
  });

  it('sends other lookups and ranges to the base', () => {
    const { reader, calls } = base({ z: '26' });
    const p = new PrefetchedReader(reader, [b('a')]);
    expect(p.get(b('z'))?.toString()).toBe('26');
    expect(p.range(b('a'), b('b'), 10)).toEqual([]);
    expect(calls.get).toEqual(['z']);
    expect(calls.range).toBe(1);
  });

  it('tells keys apart by every byte (binary keys with the same text form)', () => {
    const { reader } = base({});
    const k1 = Buffer.from([0x6c, 0xff, 0x00]);
    const k2 = Buffer.from([0x6c, 0xfe, 0x00]);
    reader.getMany = (keys) => keys.map((k) => (k.equals(k1) ? b('one') : k.equals(k2) ? b('two') : undefined));
    const p = new PrefetchedReader(reader, [k1, k2]);
    expect(p.get(k1)?.toString()).toBe('one');
    expect(p.get(k2)?.toString()).toBe('two');
  });
});
