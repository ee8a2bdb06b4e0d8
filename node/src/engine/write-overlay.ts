/**
 * Mutations planned but not yet written, layered over a base reader. The RocksDB writer thread
 * evaluates the batches of one group commit serially: batch N must see the effects of batches
 * 1..N-1 of the same group, which are not in RocksDB yet. The write planner also uses an overlay
 * so that a later mutation of one batch sees an earlier one.
 */
import type { KvOp, KvRow, OrderedKvReader } from './ordered-kv.ts';

interface Entry {
  readonly key: Buffer;
  /** undefined = deleted. */
  value: Buffer | undefined;
}

export class WriteOverlay implements OrderedKvReader {
  readonly #base: OrderedKvReader;
  #entries: Entry[] = [];

  constructor(base: OrderedKvReader) {
    this.#base = base;
  }

  get size(): number {
    return this.#entries.length;
  }

  #lowerBound(key: Buffer): number {
    let lo = 0;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.#entries[mid]!.key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #set(key: Buffer, value: Buffer | undefined): void {
    const i = this.#lowerBound(key);
    const e = this.#entries[i];
    if (e?.key.equals(key)) e.value = value;
    else this.#entries.splice(i, 0, { key, value });
  }

  apply(ops: readonly KvOp[]): void {
    for (const op of ops) this.#set(op.key, op.type === 'put' ? op.value : undefined);
  }

  get(key: Buffer): Buffer | undefined {
    if (this.#entries.length > 0) {
      const e = this.#entries[this.#lowerBound(key)];
      if (e?.key.equals(key)) return e.value;
    }
    return this.#base.get(key);
  }

  clear(): void {
    this.#entries = [];
  }

  range(gte: Buffer, lt: Buffer, limit: number): KvRow[] {
    const out: KvRow[] = [];
    let cursor = gte;
    while (out.length < limit && Buffer.compare(cursor, lt) < 0) {
      let o = this.#lowerBound(cursor);
      const end = this.#lowerBound(lt);
      if (o >= end) {
        out.push(...this.#base.range(cursor, lt, limit - out.length));
        break;
      }
      let deletes = 0;
      for (let i = o; i < end; i++) if (this.#entries[i]!.value === undefined) deletes++;
      // Deleted overlay entries may hide base rows, so ask the base for that many more.
      const base = this.#base.range(cursor, lt, limit - out.length + deletes);
      // The base may return fewer rows than asked without being exhausted: merge only up to its
      // last row, then continue after it. An empty base answer means it holds nothing more.
      const bound = base.length > 0 ? base[base.length - 1]!.key : undefined;
      let b = 0;
      while (out.length < limit) {
        const br = base[b];
        let oe = o < end ? this.#entries[o] : undefined;
        if (oe !== undefined && bound !== undefined && Buffer.compare(oe.key, bound) > 0) oe = undefined;
        if (br === undefined && oe === undefined) break;
        const cmp = br === undefined ? 1 : oe === undefined ? -1 : Buffer.compare(br.key, oe.key);
        if (cmp < 0) {
          out.push(br!);
          b++;
          continue;
        }
        if (cmp === 0) b++;
        if (oe!.value !== undefined) out.push({ key: oe!.key, value: oe!.value });
        o++;
      }
      if (bound === undefined) break;
      cursor = Buffer.concat([bound, Buffer.alloc(1)]);
    }
    return out;
  }
}
