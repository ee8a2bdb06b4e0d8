/**
 * A group commit's rows as ONE call into the binding: `keyva_write_packed`, KeyVa's addition to
 * the RocksDB binding (`node/native/rocksdb/binding.patch`, ADR 0004 amendment of session 12).
 * The writer thread packs the rows into one buffer (`packOps`) instead of one `batch.put` per
 * row, each a call through abstract-level into the binding with its own argument checks. Absent
 * from the published binding: `packedWriter` is then undefined and the writer uses a chained batch.
 *
 * Record layout: `kind u8 (1 = put, 0 = delete) | keyLen u32 BE | key | (put) valueLen u32 BE | value`.
 */
import type { KvOp } from './ordered-kv.ts';
import { nativeBinding } from './rocksdb-binding.ts';

/** Writes `ops` in one RocksDB write batch (fsync'd when `sync`); throws what RocksDB reports. */
export type PackedWrite = (ops: readonly KvOp[], sync: boolean) => void;

export function packOps(ops: readonly KvOp[]): Buffer {
  let size = 0;
  for (const op of ops) size += 5 + op.key.length + (op.type === 'put' ? 4 + op.value.length : 0);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (const op of ops) {
    out[o++] = op.type === 'put' ? 1 : 0;
    o = out.writeUInt32BE(op.key.length, o);
    o += op.key.copy(out, o);
    if (op.type === 'put') {
      o = out.writeUInt32BE(op.value.length, o);
      o += op.value.copy(out, o);
    }
  }
  return out;
}

/** The packed write on the database behind `handle`, or undefined with the published binding. */
export function packedWriter(handle: bigint): PackedWrite | undefined {
  const b = nativeBinding();
  const write = b.keyva_write_packed;
  if (write === undefined) return undefined;
  const db = b.db_init(handle);
  return (ops, sync) => write(db, packOps(ops), sync);
}
