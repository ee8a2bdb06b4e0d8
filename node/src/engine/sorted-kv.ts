/**
 * An in-memory ordered byte-string map: a sorted array of keys with binary search. Inserts are
 * O(n) (array splice), which is fine for the memory engine's use (tests, ephemeral clusters).
 */
import type { KvOp, KvRow, OrderedKvReader } from './ordered-kv.ts';

export class SortedKv implements OrderedKvReader {
  #keys: Buffer[] = [];
  #values: Buffer[] = [];
  #bytes = 0;

  get size(): number {
    return this.#keys.length;
  }

  /** Sum of key and value bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Index of the first key >= `key`. */
  #lowerBound(key: Buffer): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.#keys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get(key: Buffer): Buffer | undefined {
    const i = this.#lowerBound(key);
    const k = this.#keys[i];
    return k?.equals(key) ? this.#values[i] : undefined;
  }

  /** Stores copies of `key` and `value`. */
  put(key: Buffer, value: Buffer): void {
    const i = this.#lowerBound(key);
    const k = this.#keys[i];
    const v = Buffer.from(value);
    if (k?.equals(key)) {
      this.#bytes += v.length - this.#values[i]!.length;
      this.#values[i] = v;
      return;
    }
    this.#keys.splice(i, 0, Buffer.from(key));
    this.#values.splice(i, 0, v);
    this.#bytes += key.length + v.length;
  }

  del(key: Buffer): void {
    const i = this.#lowerBound(key);
    const k = this.#keys[i];
    if (k === undefined || !k.equals(key)) return;
    this.#bytes -= k.length + this.#values[i]!.length;
    this.#keys.splice(i, 1);
    this.#values.splice(i, 1);
  }

  apply(ops: readonly KvOp[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.put(op.key, op.value);
      else this.del(op.key);
    }
  }

  /** Removes every key in `[gte, lt)`; returns how many. */
  deleteRange(gte: Buffer, lt: Buffer): number {
    const a = this.#lowerBound(gte);
    const b = this.#lowerBound(lt);
    if (b <= a) return 0;
    for (let i = a; i < b; i++) this.#bytes -= this.#keys[i]!.length + this.#values[i]!.length;
    this.#keys.splice(a, b - a);
    this.#values.splice(a, b - a);
    return b - a;
  }

  /** Number of keys in `[gte, lt)`. */
  count(gte: Buffer, lt: Buffer): number {
    return Math.max(0, this.#lowerBound(lt) - this.#lowerBound(gte));
  }

  range(gte: Buffer, lt: Buffer, limit: number): KvRow[] {
    const rows: KvRow[] = [];
    for (let i = this.#lowerBound(gte); i < this.#keys.length && rows.length < limit; i++) {
      const key = this.#keys[i]!;
      if (Buffer.compare(key, lt) >= 0) break;
      rows.push({ key, value: this.#values[i]! });
    }
    return rows;
  }
}
