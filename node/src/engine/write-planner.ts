/**
 * Turns a `WriteBatch` into raw storage mutations, evaluating its conditions serially against a
 * reader (which, in the RocksDB writer thread, already includes the not-yet-written batches of
 * the same group commit). Pure logic; shared by every engine.
 *
 * Every data version written to `d` also updates the key's latest entry (`l`) in the same ops,
 * unless the key already has a newer version (commit timestamps need not arrive in order): the
 * latest entry always mirrors the newest `d` row. Conditions read the latest entry only.
 */
import { KeyVaError } from '@keyva/proto/errors';
import {
  checkRawKey,
  DATA_PREFIX,
  encodeDataKey,
  encodeLatestKey,
  encodeLatestValue,
  LATEST_PREFIX,
  latestKeyOfPrefix,
  versionsPrefixOf,
} from './key-codec.ts';
import { newestVersion } from './mvcc-read.ts';
import type { KvOp, OrderedKvReader } from './ordered-kv.ts';
import { type Condition, MAX_TS, type Mutation, type Timestamp, type WriteBatch } from './types.ts';
import { WriteOverlay } from './write-overlay.ts';

export type BatchPlan =
  | { readonly ok: true; readonly existed: boolean[]; readonly ops: KvOp[] }
  | { readonly ok: false; readonly failedIndex: number; readonly currentVersion: Timestamp };

const U64_MAX = MAX_TS;

/**
 * Whether a later plan may read what `op` writes: rows of the data and latest spaces. Raw
 * writes are blind (nothing plans against a raw key), so overlays of planned-but-unwritten ops
 * need not hold them.
 */
export function plansRead(op: KvOp): boolean {
  return op.key[0] === LATEST_PREFIX || op.key[0] === DATA_PREFIX;
}

/** The keys `planBatch(reader, batch)` looks up (the latest entries of its data mutations): to fetch them in one read beforehand. */
export function plannedLookups(batch: WriteBatch, into: Buffer[]): void {
  for (const m of batch.mutations) if (m.type === 'put' || m.type === 'delete') into.push(encodeLatestKey(m.hash, m.key));
}

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

/** The `d` row of a new version plus, when it is the key's newest, its `l` entry (also what `apply-bench.ts` writes raw). */
export function versionOps(
  m: Extract<Mutation, { type: 'put' | 'delete' }>,
  commitTs: Timestamp,
  newest: boolean,
  value: Buffer | undefined,
  expiresAtMs: number,
): KvOp[] {
  const key = encodeDataKey(m.hash, m.key, commitTs);
  const { latest, dataValue } = encodeLatestValue(commitTs, value, expiresAtMs);
  const ops: KvOp[] = [{ type: 'put', key, value: dataValue }];
  if (newest) ops.push({ type: 'put', key: latestKeyOfPrefix(versionsPrefixOf(key)), value: latest });
  return ops;
}

function planDataMutation(
  reader: OrderedKvReader,
  m: Extract<Mutation, { type: 'put' | 'delete' }>,
  batch: WriteBatch,
): { ok: true; existed: boolean; ops: KvOp[] } | { ok: false; currentVersion: Timestamp } {
  const cur = newestVersion(reader, m.hash, m.key, MAX_TS);
  const isLive = cur !== undefined && !cur.tombstone && (cur.expiresAtMs === 0 || cur.expiresAtMs > batch.nowMs);
  const live = isLive ? cur : undefined;
  if (m.condition !== undefined && !conditionHolds(m.condition, live)) {
    return { ok: false, currentVersion: live?.version ?? 0n };
  }
  // Equal timestamps overwrite the same `d` row, so the latest entry follows it.
  const newest = cur === undefined || cur.version <= batch.commitTs;
  if (m.type === 'put') return { ok: true, existed: isLive, ops: versionOps(m, batch.commitTs, newest, m.value, m.expiresAtMs) };
  // The tombstone is written even when the key has no live version: commit timestamps need not
  // arrive in order, and an older put arriving later must stay hidden from reads at or after
  // this delete (GC removes tombstones that shadow nothing).
  return { ok: true, existed: isLive, ops: versionOps(m, batch.commitTs, newest, undefined, 0) };
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
  const single = batch.mutations.length === 1;
  for (let i = 0; i < batch.mutations.length; i++) {
    const m = batch.mutations[i]!;
    if (m.type === 'rawPut' || m.type === 'rawDelete') {
      // Raw writes are blind (types.ts): no read, so the Raft log and applied-state writes of
      // every replica cost no point lookup.
      existed.push(false);
      ops.push(m.type === 'rawPut' ? { type: 'put', key: m.key, value: m.value } : { type: 'del', key: m.key });
    } else {
      const r = planDataMutation(overlay, m, batch);
      if (!r.ok) return { ok: false, failedIndex: i, currentVersion: r.currentVersion };
      existed.push(r.existed);
      // A one-mutation batch has no later mutation to see its effects: skip the overlay work.
      if (!single) overlay.apply(r.ops);
      for (const op of r.ops) ops.push(op);
    }
  }
  return { ok: true, existed, ops };
}
