/**
 * The two primitives the MVCC logic needs from a store: a synchronous, bounded, ordered range
 * read over raw storage keys, and a point lookup. RocksDB implements them with `querySync` and a
 * one-key `MultiGet`, the memory engine with a sorted array, and `WriteOverlay` layers
 * not-yet-written mutations over another reader.
 */

export interface KvRow {
  readonly key: Buffer;
  readonly value: Buffer;
}

export interface OrderedKvReader {
  /**
   * Rows with `gte <= key < lt`, in byte order of keys, at most `limit` (> 0). A reader may
   * return fewer rows than `limit` (e.g. to bound the bytes of one call); only an empty result
   * means the range holds nothing more.
   */
  range(gte: Buffer, lt: Buffer, limit: number): KvRow[];

  /** The value of exactly `key`, or undefined (RocksDB: a point lookup that bloom filters serve). */
  get(key: Buffer): Buffer | undefined;
}

/** One raw storage mutation, produced by the write planner and applied by an engine. */
export type KvOp = { readonly type: 'put'; readonly key: Buffer; readonly value: Buffer } | { readonly type: 'del'; readonly key: Buffer };
