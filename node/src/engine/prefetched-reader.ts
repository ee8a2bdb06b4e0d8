/**
 * A reader that answers point lookups of known keys from ONE batched read made up front. The
 * RocksDB writer thread plans every batch of a group commit against the latest entries of the
 * keys the group writes (write-planner.ts); one `MultiGet` of all of them costs a fraction of a
 * lookup per mutation (each a separate call into the binding). Lookups of other keys, and ranges,
 * go to the base reader. Valid only while nothing is written to the base (the writer thread
 * plans a group, then writes it).
 */
import type { KvRow, OrderedKvReader } from './ordered-kv.ts';

export interface MultiGetReader extends OrderedKvReader {
  /** Values of `keys`, undefined where absent, in one read. */
  getMany(keys: readonly Buffer[]): (Buffer | undefined)[];
}

export class PrefetchedReader implements OrderedKvReader {
  readonly #base: OrderedKvReader;
  readonly #known = new Map<string, Buffer | undefined>();

  constructor(base: MultiGetReader, keys: readonly Buffer[]) {
    this.#base = base;
    const distinct = new Map<string, Buffer>();
    for (const k of keys) distinct.set(k.toString('latin1'), k);
    const values = base.getMany([...distinct.values()]);
    let i = 0;
    for (const id of distinct.keys()) this.#known.set(id, values[i++]);
  }

  get(key: Buffer): Buffer | undefined {
    const id = key.toString('latin1');
    return this.#known.has(id) ? this.#known.get(id) : this.#base.get(key);
  }

  range(gte: Buffer, lt: Buffer, limit: number): KvRow[] {
    return this.#base.range(gte, lt, limit);
  }
}
