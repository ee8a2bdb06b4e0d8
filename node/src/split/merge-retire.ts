/**
 * Retiring a merged-away group on this node (docs/adr/0010-splits.md, "Merges", step 4): once
 * this node's left group applied the absorb, the right group's replica is closed and its Raft
 * state deleted — but not its rows, which the left group owns now.
 *
 * 1. The runtime stops hosting the group (its submitted writes finish first).
 * 2. The GC index entries of its request records (`r | right | 'q' | ...`, ADR 0011) are copied
 *    under the left group, so the left group's GC removes those records in time.
 * 3. `dropGroupData` with an EMPTY range: a tombstone (synced) that deletes no row, now or when a
 *    restart finishes an interrupted drop, and keeps a node whose stored map still lists the right
 *    partition from bootstrapping it again; then the group's raw keys.
 *
 * Every step can be repeated after a crash (the reconciler retires a group again as long as it is
 * hosted next to a left group whose range record lists it as absorbed).
 */
import type { Mutation, StorageEngine } from '../engine/types.ts';
import { dropGroupData } from '../membership/replica-hosting.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import { decodeRecordIndexKey, recordIndexKey, recordIndexRange } from '../replication/request-record.ts';

const COPY_BATCH = 1024;
const NO_ROWS = { start: 0n, end: 0n };

export interface RetireRuntime {
  removeGroup(group: GroupId): Promise<boolean>;
}

/** Retires `right` (absorbed by `left`) on this node; returns the request-record index entries moved. */
export async function retireAbsorbedGroup(engine: StorageEngine, raft: RetireRuntime, right: GroupId, left: GroupId): Promise<number> {
  await raft.removeGroup(right);
  const { lo, hi } = recordIndexRange(right, (1n << 64n) - 1n);
  let from = lo;
  let moved = 0;
  for (;;) {
    const rows = await engine.scanRaw(from, hi, COPY_BATCH);
    const mutations: Mutation[] = [];
    for (const r of rows) {
      const e = decodeRecordIndexKey(r.key);
      if (e !== undefined) mutations.push({ type: 'rawPut', key: recordIndexKey({ ...e, group: left }), value: r.value });
    }
    if (mutations.length > 0) {
      await engine.write({ mutations, commitTs: 1n, nowMs: 0, sync: false });
      moved += mutations.length;
    }
    const last = rows[rows.length - 1];
    if (last === undefined || rows.length < COPY_BATCH) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
  // Synced: the tombstone write of `dropGroupData` lands after the copies (the engine writes in order).
  await dropGroupData(engine, right, NO_ROWS);
  return moved;
}
