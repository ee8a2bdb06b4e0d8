/**
 * Maintenance of the latest key space (`l`, see `key-codec.ts`): per user key with any version,
 * one entry mirroring its newest `d` row. The write planner keeps it in step with every write;
 * this file serves the other paths that change `d`: GC (re-derive the entry of a key whose newest
 * version GC removed), opening a data directory written before the latest space existed (rebuild
 * it from `d`), and checking the invariant (tests, diagnostics). Pure logic over readers.
 */
import {
  commitTsOf,
  dataSpaceBounds,
  decodeDataKey,
  latestKeyOfPrefix,
  latestSpaceBounds,
  latestValueOfRow,
  prefixOfLatestKey,
  prefixUpperBound,
  versionsPrefixOf,
} from './key-codec.ts';
import { newestVersion, newestVersionInHistory, type StoredVersion, visibleItems, visibleItemsFromLatest } from './mvcc-read.ts';
import type { KvOp, KvRow, OrderedKvReader } from './ordered-kv.ts';
import { MAX_TS, type ScanItem, type Timestamp } from './types.ts';

/**
 * The op that makes the latest entry of the key with versions prefix `prefix` mirror the newest
 * `d` row `reader` holds for it (delete it when no version is left), or undefined when it already
 * does.
 */
export function latestRepairOp(reader: OrderedKvReader, prefix: Buffer): KvOp | undefined {
  const row = reader.range(prefix, prefixUpperBound(prefix), 1)[0];
  const key = latestKeyOfPrefix(prefix);
  const cur = reader.get(key);
  if (row === undefined) return cur === undefined ? undefined : { type: 'del', key };
  const want = latestValueOfRow(commitTsOf(row.key), row.value);
  return cur?.equals(want) ? undefined : { type: 'put', key, value: want };
}

/** Derives latest entries from `d` rows fed in storage order (possibly across several chunks). */
export class LatestRebuilder {
  #prefix: Buffer | undefined;

  /** The latest entry to write when `key` is the first (newest) row of its user key, else undefined. */
  feed(key: Buffer, value: Buffer): KvOp | undefined {
    const prefix = versionsPrefixOf(key);
    if (this.#prefix?.equals(prefix)) return undefined;
    this.#prefix = Buffer.from(prefix);
    return { type: 'put', key: latestKeyOfPrefix(prefix), value: latestValueOfRow(commitTsOf(key), value) };
  }
}

/** Every row of `[lo, hi)`, paging through a reader that may answer short. */
function* allRows(reader: OrderedKvReader, lo: Buffer, hi: Buffer, pageRows = 1024): Generator<KvRow> {
  let cursor = lo;
  for (;;) {
    const rows = reader.range(cursor, hi, pageRows);
    if (rows.length === 0) return;
    yield* rows;
    cursor = Buffer.concat([rows[rows.length - 1]!.key, Buffer.alloc(1)]);
  }
}

const showVersion = (v: StoredVersion | undefined): string =>
  v === undefined ? '-' : `${v.version}/${v.tombstone ? 'tomb' : v.value.toString('hex')}/${v.expiresAtMs}`;
const showItems = (items: Iterable<ScanItem>): string =>
  [...items].map((i) => `${i.hash}/${i.key.toString('hex')}=${i.value.toString('hex')}@${i.version}/${i.expiresAtMs}`).join(' ');

/**
 * Differences between the latest space and the `d` history (empty when consistent), as readable
 * strings. With `compareReads`, also every point read and a full scan at every commit timestamp
 * in the store (and just below it, and MAX_TS), at wall clocks 0 and "everything expired", served
 * from the latest space versus from the history alone. Reads everything (and with
 * `compareReads`, keys × timestamps times): for tests and offline checks, not the serving path.
 */
export function latestSpaceMismatches(reader: OrderedKvReader, compareReads = false): string[] {
  const want = new Map<string, string>();
  const rebuilder = new LatestRebuilder();
  const d = dataSpaceBounds();
  const userKeys: { hash: bigint; key: Buffer }[] = [];
  const timestamps = new Set<Timestamp>([MAX_TS]);
  for (const row of allRows(reader, d.lo, d.hi)) {
    const op = rebuilder.feed(row.key, row.value);
    if (op?.type === 'put') {
      want.set(op.key.toString('hex'), op.value.toString('hex'));
      if (compareReads) userKeys.push(decodeDataKey(row.key));
    }
    if (compareReads) {
      const ts = commitTsOf(row.key);
      timestamps.add(ts);
      if (ts > 0n) timestamps.add(ts - 1n);
    }
  }
  const out: string[] = [];
  const l = latestSpaceBounds();
  for (const row of allRows(reader, l.lo, l.hi)) {
    const k = row.key.toString('hex');
    const w = want.get(k);
    if (w === undefined) out.push(`latest entry without versions: ${prefixOfLatestKey(row.key).toString('hex')}`);
    else if (w !== row.value.toString('hex')) out.push(`latest entry ${k} = ${row.value.toString('hex')}, newest version says ${w}`);
    want.delete(k);
  }
  for (const k of want.keys()) out.push(`no latest entry for ${k}`);
  if (!compareReads) return out;
  for (const readTs of timestamps) {
    for (const { hash, key } of userKeys) {
      const a = showVersion(newestVersion(reader, hash, key, readTs));
      const b = showVersion(newestVersionInHistory(reader, hash, key, readTs));
      if (a !== b) out.push(`read of ${hash}/${key.toString('hex')} at ${readTs}: latest space ${a}, history ${b}`);
    }
    for (const nowMs of [0, Number.MAX_SAFE_INTEGER]) {
      const a = showItems(visibleItemsFromLatest(reader, d.lo, d.hi, readTs, nowMs, false, undefined, 3));
      const b = showItems(visibleItems(reader, d.lo, d.hi, readTs, nowMs, false, undefined, 3));
      if (a !== b) out.push(`scan at ${readTs}/${nowMs}: latest space [${a}], history [${b}]`);
    }
  }
  return out;
}
