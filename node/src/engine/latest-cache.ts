/**
 * A main-thread cache of latest-space rows (`l` keys, `latest-space.ts`) in front of the RocksDB
 * reader: a point read whose key's row is cached skips the storage lookup (a synchronous
 * `MultiGet` through the binding, the largest single cost of a get).
 *
 * Invariant: a cached answer is exactly what the storage would answer at that moment. It holds
 * because every change to the `l` space goes through the engine, which tells the cache:
 * - a write is announced (`beginWrite`) BEFORE it is sent to the writer thread: its keys are
 *   dropped, and while it is in flight (not answered) they are never stored, so a read racing
 *   the write reads storage, like an uncached read;
 * - its answer (`endWrite`, ok or not) drops the keys again; the next read stores what storage
 *   then holds, which includes the write (answered = written);
 * - range deletes and GC (which rewrites latest rows) are barriers: the whole cache is dropped
 *   when they start and when they end, and nothing is stored while one is in flight.
 * So the cached engine is observationally the uncached one (TTL is checked by the MVCC read on
 * every answer, cached or not), and the read paths above it (leases, ReadIndex, snapshot
 * reads) keep their guarantees.
 *
 * Bounded by bytes, least-recently-used-ish: two generations (a hit in the old one moves the
 * row to the current one; when the current one is full it becomes the old one and the previous
 * old one is dropped), so a hit costs one or two map lookups and no reordering.
 */
import type { KvRow, OrderedKvReader } from './ordered-kv.ts';

/** Estimated bytes per cached row besides its key and value (map entry, strings, buffer object). */
const ENTRY_OVERHEAD_BYTES = 96;

/** A row in the cache: its value, or `null` for "no row" (the key has no version at all). */
type Cached = Buffer | null;

export interface LatestCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly entries: number;
  readonly bytes: number;
}

export class LatestRowCache {
  readonly #generationBytesMax: number;
  #current = new Map<string, Cached>();
  #old = new Map<string, Cached>();
  #currentBytes = 0;
  #oldBytes = 0;
  /** Per key: writes announced and not yet answered. */
  readonly #pending = new Map<string, number>();
  /** Range deletes / GC runs in flight: nothing is stored while > 0. */
  #barriers = 0;
  #hits = 0;
  #misses = 0;

  /** `bytesMax` > 0: about the most the cache holds (two generations of half each). */
  constructor(bytesMax: number) {
    if (!Number.isSafeInteger(bytesMax) || bytesMax <= 0) throw new RangeError(`latest-row cache size must be a positive integer, got ${bytesMax}`);
    this.#generationBytesMax = Math.max(1, Math.floor(bytesMax / 2));
  }

  /** The cache key of a storage key. */
  static keyOf(storageKey: Buffer): string {
    return storageKey.toString('latin1');
  }

  /** The cached row of `k`: a Buffer, `null` (cached: no row), or undefined (not cached). */
  lookup(k: string): Cached | undefined {
    let v = this.#current.get(k);
    if (v !== undefined) {
      this.#hits++;
      return v;
    }
    v = this.#old.get(k);
    if (v === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#old.delete(k);
    this.#oldBytes -= sizeOf(k, v);
    this.#insert(k, v);
    return v;
  }

  /** Stores what storage just answered for `k`, unless a write to it (or a barrier) is in flight. */
  store(k: string, v: Cached): void {
    if (this.#barriers > 0 || this.#pending.has(k)) return;
    this.#drop(k);
    this.#insert(k, v);
  }

  /** A write touching these keys is about to be sent: drop them and store none until it is answered. */
  beginWrite(keys: readonly string[]): void {
    for (const k of keys) {
      this.#pending.set(k, (this.#pending.get(k) ?? 0) + 1);
      this.#drop(k);
    }
  }

  /** The write announced with `keys` was answered (or failed): drop them again. */
  endWrite(keys: readonly string[]): void {
    for (const k of keys) {
      const n = (this.#pending.get(k) ?? 1) - 1;
      if (n <= 0) this.#pending.delete(k);
      else this.#pending.set(k, n);
      this.#drop(k);
    }
  }

  /** A range delete or GC run is about to start: drop everything and store nothing until `endBarrier`. */
  beginBarrier(): void {
    this.#barriers++;
    this.clear();
  }

  endBarrier(): void {
    this.#barriers = Math.max(0, this.#barriers - 1);
    this.clear();
  }

  clear(): void {
    this.#current = new Map();
    this.#old = new Map();
    this.#currentBytes = 0;
    this.#oldBytes = 0;
  }

  /** Writes announced and not answered yet (distinct keys); for tests. */
  get pendingKeys(): number {
    return this.#pending.size;
  }

  stats(): LatestCacheStats {
    return { hits: this.#hits, misses: this.#misses, entries: this.#current.size + this.#old.size, bytes: this.#currentBytes + this.#oldBytes };
  }

  #drop(k: string): void {
    const c = this.#current.get(k);
    if (c !== undefined) {
      this.#current.delete(k);
      this.#currentBytes -= sizeOf(k, c);
    }
    const o = this.#old.get(k);
    if (o !== undefined) {
      this.#old.delete(k);
      this.#oldBytes -= sizeOf(k, o);
    }
  }

  #insert(k: string, v: Cached): void {
    const size = sizeOf(k, v);
    if (size > this.#generationBytesMax) return;
    if (this.#currentBytes + size > this.#generationBytesMax) {
      this.#old = this.#current;
      this.#oldBytes = this.#currentBytes;
      this.#current = new Map();
      this.#currentBytes = 0;
    }
    this.#current.set(k, v);
    this.#currentBytes += size;
  }
}

function sizeOf(k: string, v: Cached): number {
  return k.length + (v === null ? 0 : v.length) + ENTRY_OVERHEAD_BYTES;
}

/**
 * An `OrderedKvReader` answering point lookups of latest-space keys from the cache (storing
 * what it reads through `inner`); ranges and other keys go to `inner` unchanged. Cached buffers
 * are shared: callers must not modify what `get` returns (the engine copies values it hands out).
 */
export class CachingLatestReader implements OrderedKvReader {
  readonly #inner: OrderedKvReader;
  readonly #cache: LatestRowCache;
  readonly #prefix: number;

  constructor(inner: OrderedKvReader, cache: LatestRowCache, latestPrefix: number) {
    this.#inner = inner;
    this.#cache = cache;
    this.#prefix = latestPrefix;
  }

  range(gte: Buffer, lt: Buffer, limit: number): KvRow[] {
    return this.#inner.range(gte, lt, limit);
  }

  get(key: Buffer): Buffer | undefined {
    if (key[0] !== this.#prefix) return this.#inner.get(key);
    const k = LatestRowCache.keyOf(key);
    const hit = this.#cache.lookup(k);
    if (hit !== undefined) return hit ?? undefined;
    const v = this.#inner.get(key);
    this.#cache.store(k, v ?? null);
    return v;
  }
}
