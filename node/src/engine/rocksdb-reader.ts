/**
 * `OrderedKvReader` over a RocksDB handle: bounded synchronous `querySync` calls for ranges, a
 * one-key synchronous `MultiGet` for point lookups (no iterator; bloom filters apply).
 */
import { isKeyVaError, KeyVaError } from '@keyva/proto/errors';
import type { KvRow, OrderedKvReader } from './ordered-kv.ts';
import type { RocksLevelDb } from './rocksdb-binding.ts';

/** Bytes one `range` call reads at most (plus one row); bounds the time a read blocks its thread. */
export const READ_PAGE_BYTES_MAX = 4 << 20;

/** Runs `fn`, turning any non-KeyVa error into STORAGE_ERROR. */
export function storageCall<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isKeyVaError(e)) throw e;
    throw new KeyVaError('STORAGE_ERROR', `rocksdb ${what} failed: ${(e as Error)?.message ?? String(e)}`, {}, { cause: e });
  }
}

export class RocksReader implements OrderedKvReader {
  readonly #db: RocksLevelDb;
  readonly #bytesMax: number;
  readonly #fillCache: boolean;
  readonly #getOptions: { readonly fillCache: boolean };
  /** Reused one-key array for point lookups (the binding reads it synchronously). */
  readonly #oneKey: Buffer[] = [Buffer.alloc(0)];

  /** `fillCache: false` for bulk passes (GC) so they do not evict the point-read working set. */
  constructor(db: RocksLevelDb, options: { bytesMax?: number; fillCache?: boolean } = {}) {
    this.#db = db;
    this.#bytesMax = options.bytesMax ?? READ_PAGE_BYTES_MAX;
    this.#fillCache = options.fillCache ?? true;
    this.#getOptions = { fillCache: this.#fillCache };
  }

  /** May return fewer than `limit` rows (byte bound); an empty result means the range is exhausted. */
  range(gte: Buffer, lt: Buffer, limit: number): KvRow[] {
    if (Buffer.compare(gte, lt) >= 0) return [];
    const { rows } = storageCall('query', () =>
      this.#db.querySync({
        gte,
        lt,
        limit: Math.min(limit, 0x7fffffff),
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
        highWaterMarkBytes: this.#bytesMax,
        fillCache: this.#fillCache,
      }),
    );
    const out: KvRow[] = new Array(rows.length >>> 1);
    for (let i = 0; i < out.length; i++) out[i] = { key: rows[2 * i]!, value: rows[2 * i + 1]! };
    return out;
  }

  /** The value of exactly `key` (a fresh copy), or undefined. */
  get(key: Buffer): Buffer | undefined {
    this.#oneKey[0] = key;
    return this.#multiGet(this.#oneKey)[0];
  }

  /** The values of `keys` (fresh copies; undefined where absent), in ONE `MultiGet`. */
  getMany(keys: readonly Buffer[]): (Buffer | undefined)[] {
    return keys.length === 0 ? [] : this.#multiGet(keys);
  }

  #multiGet(keys: readonly Buffer[]): (Buffer | undefined)[] {
    let vs: (Buffer | undefined | null)[];
    try {
      vs = this.#db._getManySync(keys, this.#getOptions);
    } catch (e) {
      throw new KeyVaError('STORAGE_ERROR', `rocksdb get failed: ${(e as Error)?.message ?? String(e)}`, {}, { cause: e });
    }
    if (vs.includes(null)) throw new KeyVaError('STORAGE_ERROR', 'rocksdb get was aborted');
    return vs as (Buffer | undefined)[];
  }
}
