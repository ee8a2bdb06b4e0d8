/**
 * The rows of a hash range at an MVCC timestamp, encoded straight into snapshot chunks
 * (`row-codec.ts`) from the latest space's raw rows: what `visibleItemsFromLatest` + `encodeRows`
 * produce, without a decoded `ScanItem`, a value copy or a BigInt per row (the dump thread,
 * `rocksdb-dump-worker.ts`, spends its time here and in the binding's row copies). A key whose
 * newest version is above `readTs` is looked up in the `d` history (`newestVersionInHistory`), as
 * in scans. Tombstones are skipped; TTL-expired values are kept (expiry is the reader's business).
 *
 * Latest rows, as `key-codec.ts` writes them: key `'l' | hash u64 | escape(key) | 0x00 0x01`
 * (a 0x00 key byte escaped as 0x00 0xFF), value `commitTs u64 | flag u8 | expiresAtMs u64 | bytes`.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { LATEST_HEADER_BYTES, latestBoundOf, unescapeKey, VALUE_HEADER_BYTES, ValueFlag } from './key-codec.ts';
import { newestVersionInHistory } from './mvcc-read.ts';
import type { KvRow, OrderedKvReader } from './ordered-kv.ts';
import { type RowParts, rowBytes, writeRowParts } from './row-codec.ts';
import type { Timestamp } from './types.ts';

const KEY_START = 1 + 8;

/** The user key of latest key `k` as a view when it holds no 0x00 byte (the usual case), else a copy. */
function userKey(k: Buffer): Buffer {
  if (k.length >= KEY_START + 2 && k.indexOf(0, KEY_START) === k.length - 2 && k[k.length - 1] === 0x01) return k.subarray(KEY_START, k.length - 2);
  const { key, end } = unescapeKey(k, KEY_START);
  if (end !== k.length) throw new KeyVaError('STORAGE_ERROR', 'corrupt latest key: bytes after the key');
  return key;
}

export class LatestDump {
  readonly #reader: OrderedKvReader;
  readonly #end: Buffer;
  readonly #readTs: Timestamp;
  readonly #tsHi: number;
  readonly #tsLo: number;
  readonly #pageRows: number;
  #cursor: Buffer;
  #page: KvRow[] = [];
  #at = 0;
  #done = false;
  /** A row that did not fit the previous chunk. */
  #carry: RowParts | undefined;

  /** `lo`/`hi`: data-space bounds of the hash range (`hashRangeBounds`). */
  constructor(reader: OrderedKvReader, lo: Buffer, hi: Buffer, readTs: Timestamp, pageRows: number) {
    this.#reader = reader;
    this.#cursor = latestBoundOf(lo);
    this.#end = latestBoundOf(hi);
    this.#readTs = readTs;
    this.#tsHi = Number(readTs >> 32n);
    this.#tsLo = Number(readTs & 0xffff_ffffn);
    this.#pageRows = pageRows;
  }

  /** The next visible row, or undefined at the end of the range. */
  #nextPart(): RowParts | undefined {
    for (;;) {
      if (this.#at === this.#page.length) {
        if (this.#done || Buffer.compare(this.#cursor, this.#end) >= 0) return undefined;
        this.#page = this.#reader.range(this.#cursor, this.#end, this.#pageRows);
        this.#at = 0;
        if (this.#page.length === 0) {
          this.#done = true;
          return undefined;
        }
        this.#cursor = Buffer.concat([(this.#page[this.#page.length - 1] as KvRow).key, Buffer.alloc(1)]);
      }
      const row = this.#page[this.#at++] as KvRow;
      const k = row.key;
      const v = row.value;
      if (v.length < LATEST_HEADER_BYTES + VALUE_HEADER_BYTES) throw new KeyVaError('STORAGE_ERROR', 'corrupt latest entry: too short');
      const hi = v.readUInt32BE(0);
      if (hi < this.#tsHi || (hi === this.#tsHi && v.readUInt32BE(4) <= this.#tsLo)) {
        const flag = v[LATEST_HEADER_BYTES];
        if (flag === ValueFlag.tombstone) continue;
        if (flag !== ValueFlag.value) throw new KeyVaError('STORAGE_ERROR', `corrupt latest entry: flag ${flag}`);
        const e = LATEST_HEADER_BYTES + 1;
        return {
          hashBytes: k.subarray(1, KEY_START),
          key: userKey(k),
          versionBytes: v.subarray(0, LATEST_HEADER_BYTES),
          expiresAtMs: v.readUInt32BE(e) * 0x1_0000_0000 + v.readUInt32BE(e + 4),
          value: v.subarray(LATEST_HEADER_BYTES + VALUE_HEADER_BYTES),
        };
      }
      // Written after readTs: the version visible at readTs is in the history, if any.
      const hashBytes = k.subarray(1, KEY_START);
      const key = userKey(k);
      const old = newestVersionInHistory(this.#reader, hashBytes.readBigUInt64BE(0), key, this.#readTs);
      if (old === undefined || old.tombstone) continue;
      const versionBytes = Buffer.alloc(8);
      versionBytes.writeBigUInt64BE(old.version, 0);
      return { hashBytes, key, versionBytes, expiresAtMs: old.expiresAtMs, value: old.value };
    }
  }

  /**
   * The next chunk: rows of at most `chunkBytes` bytes in all (a single larger row alone), in a
   * buffer owning its `ArrayBuffer` (transferable; `length` may be below its capacity), and how
   * many rows; undefined when the range is exhausted.
   */
  next(chunkBytes: number): { data: Buffer; rows: number } | undefined {
    let part = this.#carry ?? this.#nextPart();
    this.#carry = undefined;
    if (part === undefined) return undefined;
    const out = Buffer.from(new ArrayBuffer(Math.max(chunkBytes, rowBytes(part))));
    let o = 0;
    let rows = 0;
    while (part !== undefined) {
      if (o > 0 && o + rowBytes(part) > chunkBytes) {
        this.#carry = part;
        break;
      }
      o = writeRowParts(out, o, part);
      rows++;
      part = this.#nextPart();
    }
    if (o >= out.length / 2) return { data: out.subarray(0, o), rows };
    // Mostly empty (the range's last rows): a buffer of its own size, not a chunk's capacity.
    const small = Buffer.from(new ArrayBuffer(o));
    out.copy(small, 0, 0, o);
    return { data: small, rows };
  }
}
