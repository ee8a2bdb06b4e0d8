/**
 * Turns a `WriteBatch` into raw storage mutations, evaluating its conditions serially against a
 * reader (which, in the RocksDB writer thread, already includes the not-yet-written batches of
 * the same group commit). Pure logic; shared by every engine.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { checkRawKey, encodeDataKey, encodeDataValue } from './key-codec.ts';
import { newestVersion } from './mvcc-read.ts';
import type { KvOp, OrderedKvReader } from './ordered-kv.ts';
import { type Condition, MAX_TS, type Mutation, type Timestamp, type WriteBatch } from './types.ts';
import { WriteOverlay } from './write-overlay.ts';

export type BatchPlan =
  | { readonly ok: true; readonly existed: boolean[]; readonly ops: KvOp[] }
  | { readonly ok: false; readonly failedIndex: number; readonly currentVersion: Timestamp };

const U64_MAX = MAX_TS;

/** Throws INVALID_ARGUMENT when a batch is malformed. Engines call it before accepting a batch. */
export function validateBatch(batch: WriteBatch): void {
  const bad = (msg: string, field: string): never => {
    throw new KeyVaError('INVALID_ARGUMENT', msg, { field });
  };
  if (typeof batch.commitTs !== 'bigint' || batch.commitTs < 1n || batch.commitTs > U64_MAX)
    bad(`commitTs must be a bigint in [1, 2^64): ${batch.commitTs}`, 'commitTs');
  if (!Number.isFinite(batch.nowMs)) bad('nowMs must be a finite number', 'nowMs');
  for (const m of batch.mutations) {
    if (!Buffer.isBuffer(m.key)) bad('mutation key must be a Buffer', 'key');
    switch (m.type) {
      case 'put':
      case 'delete':
        if (typeof m.hash !== 'bigint' || m.hash < 0n || m.hash > U64_MAX) bad(`hash out of the 64-bit range: ${m.hash}`, 'hash');
        if (m.type === 'put') {
          if (!Buffer.isBuffer(m.value)) bad('value must be a Buffer', 'value');
          if (!Number.isSafeInteger(m.expiresAtMs) || m.expiresAtMs < 0) bad(`expiresAtMs must be a non-negative integer: ${m.expiresAtMs}`, 'expiresAtMs');
        }
        if (m.condition?.kind === 'valueEquals' && !Buffer.isBuffer(m.condition.value)) bad('condition value must be a Buffer', 'condition');
        break;
      case 'rawPut':
        if (!Buffer.isBuffer(m.value)) bad('value must be a Buffer', 'value');
        checkRawKey(m.key, true);
        break;
      case 'rawDelete':
        checkRawKey(m.key, true);
        break;
      default:
        bad(`unknown mutation type ${(m as { type: unknown }).type}`, 'type');
    }
  }
}

function conditionHolds(cond: Condition, live: { version: Timestamp; value: Buffer } | undefined): boolean {
  switch (cond.kind) {
    case 'absent':
      return live === undefined;
    case 'exists':
      return live !== undefined;
    case 'versionEquals':
      return cond.version === (live?.version ?? 0n);
    case 'valueEquals':
      return live?.value.equals(cond.value) === true;
  }
}

function successor(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.alloc(1)]);
}

function planDataMutation(
  reader: OrderedKvReader,
  m: Extract<Mutation, { type: 'put' | 'delete' }>,
  batch: WriteBatch,
): { ok: true; existed: boolean; op: KvOp | undefined } | { ok: false; currentVersion: Timestamp } {
  const cur = newestVersion(reader, m.hash, m.key, MAX_TS);
  const isLive = cur !== undefined && !cur.tombstone && (cur.expiresAtMs === 0 || cur.expiresAtMs > batch.nowMs);
  const live = isLive ? cur : undefined;
  if (m.condition !== undefined && !conditionHolds(m.condition, live)) {
    return { ok: false, currentVersion: live?.version ?? 0n };
  }
  const key = encodeDataKey(m.hash, m.key, batch.commitTs);
  if (m.type === 'put') return { ok: true, existed: isLive, op: { type: 'put', key, value: encodeDataValue(m.value, m.expiresAtMs) } };
  // A tombstone is pointless when the key has no version at all or already ends in a tombstone.
  if (cur === undefined || cur.tombstone) return { ok: true, existed: false, op: undefined };
  return { ok: true, existed: isLive, op: { type: 'put', key, value: encodeDataValue(undefined, 0) } };
}

/**
 * Plans `batch` against `reader`. Mutations are evaluated in order, each seeing the effects of
 * the earlier ones of the same batch. A failed condition yields no ops at all.
 * Assumes `validateBatch(batch)` passed.
 */
export function planBatch(reader: OrderedKvReader, batch: WriteBatch): BatchPlan {
  const overlay = new WriteOverlay(reader);
  const ops: KvOp[] = [];
  const existed: boolean[] = [];
  for (let i = 0; i < batch.mutations.length; i++) {
    const m = batch.mutations[i]!;
    let op: KvOp | undefined;
    if (m.type === 'rawPut' || m.type === 'rawDelete') {
      existed.push(overlay.range(m.key, successor(m.key), 1).length > 0);
      op = m.type === 'rawPut' ? { type: 'put', key: m.key, value: m.value } : { type: 'del', key: m.key };
    } else {
      const r = planDataMutation(overlay, m, batch);
      if (!r.ok) return { ok: false, failedIndex: i, currentVersion: r.currentVersion };
      existed.push(r.existed);
      op = r.op;
    }
    if (op !== undefined) {
      overlay.apply([op]);
      ops.push(op);
    }
  }
  return { ok: true, existed, ops };
}
