/**
 * Entry point of the RocksDB dump thread: reads hash ranges at an MVCC timestamp (the rows of a
 * streamed snapshot, newest live version per key at `readTs`, TTL-expired ones included) and
 * hands them back as encoded chunks (`row-codec.ts`), transferred, so the main thread, which
 * serves clients, only frames bytes. Opens the main thread's database by its native handle like
 * the writer thread and never closes it (the engine terminates this thread before it closes the
 * database). Reads bypass the block cache (`fillCache: false`): a dump must not evict the point
 * reads' working set.
 *
 * The GC-watermark check is the engine's (`RocksDbEngine.dumpRows`): it checks each chunk when it
 * arrives on the main thread, where the watermark is raised before any GC past it is sent to the
 * writer, so a chunk that passes was read before such a GC could start.
 *
 * Several dumps interleave a chunk at a time; the thread yields to its message port between
 * chunks (credit and cancellation arrive there). The native SST calls (export, ingestion: ADR
 * 0013) run here too, each whole when its request arrives.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LatestDump } from './latest-dump.ts';
import { createRocksLevel } from './rocksdb-binding.ts';
import type { DumpEvent, DumpInit, DumpRequest } from './rocksdb-dump-protocol.ts';
import { RocksReader } from './rocksdb-reader.ts';
import { sstNative } from './rocksdb-sst.ts';
import { toWireError } from './rocksdb-writer-protocol.ts';
import { lowerThisThread } from './thread-priority.ts';

/** A Buffer over the bytes of a structured-cloned Uint8Array. */
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Latest-space rows per storage call (bounded by the reader's 4 MiB page as well). */
const DUMP_PAGE_ROWS = 1024;

const port = parentPort;
if (port === null) throw new Error('rocksdb-dump-worker must run in a worker thread');
const init = workerData as DumpInit;
lowerThisThread(init.nice);
const emit = (ev: DumpEvent, transfer: ArrayBuffer[] = []): void => port.postMessage(ev, transfer);

interface Dump {
  readonly id: number;
  readonly rows: LatestDump;
  readonly chunkBytes: number;
  credit: number;
}

try {
  const db = createRocksLevel(init.handle);
  await db.open();
  const reader = new RocksReader(db, { fillCache: false });
  const dumps = new Map<number, Dump>();
  let scheduled = false;
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(run);
  };
  /** One chunk of the next dump holding credit (round robin), then yield to the port. */
  const run = (): void => {
    scheduled = false;
    for (const d of dumps.values()) {
      if (d.credit <= 0) continue;
      // Round robin: this dump goes to the back of the map.
      dumps.delete(d.id);
      dumps.set(d.id, d);
      try {
        produce(d);
      } catch (e) {
        dumps.delete(d.id);
        emit({ t: 'error', id: d.id, error: toWireError(e) });
      }
      break;
    }
    for (const d of dumps.values()) {
      if (d.credit > 0) {
        schedule();
        return;
      }
    }
  };
  const produce = (d: Dump): void => {
    const chunk = d.rows.next(d.chunkBytes);
    if (chunk === undefined) {
      dumps.delete(d.id);
      emit({ t: 'end', id: d.id });
      return;
    }
    d.credit--;
    const { data, rows } = chunk;
    const buffer = data.buffer as ArrayBuffer;
    emit({ t: 'chunk', id: d.id, data: buffer, length: data.length, rows }, [buffer]);
  };
  port.on('message', (m: DumpRequest) => {
    switch (m.t) {
      case 'start': {
        // Data-space bounds; the scan maps them to the latest space.
        const lo = Buffer.from(m.lo.buffer, m.lo.byteOffset, m.lo.byteLength);
        const hi = Buffer.from(m.hi.buffer, m.hi.byteOffset, m.hi.byteLength);
        const rows = new LatestDump(reader, lo, hi, m.readTs, DUMP_PAGE_ROWS);
        dumps.set(m.id, { id: m.id, rows, chunkBytes: m.chunkBytes, credit: m.credit });
        break;
      }
      case 'credit': {
        const d = dumps.get(m.id);
        if (d !== undefined) d.credit += m.n;
        break;
      }
      case 'cancel':
        dumps.delete(m.id);
        break;
      case 'exportSst':
      case 'deriveLatest':
      case 'ingestSst':
        try {
          const native = sstNative();
          if (native === undefined) throw new Error('this RocksDB binding has no SST calls (scripts/rocksdb-native.sh builds one)');
          if (m.t === 'exportSst') {
            const a = m.args;
            const raw = a.raw === undefined ? undefined : { gte: buf(a.raw.gte), lt: buf(a.raw.lt), u64Offset: a.raw.u64Offset };
            const counts = native.exportPartition(init.handle, { ...a, latestGte: buf(a.latestGte), latestLt: buf(a.latestLt), raw });
            emit({ t: 'exported', id: m.id, counts });
          } else if (m.t === 'deriveLatest') {
            emit({ t: 'derived', id: m.id, rows: native.deriveLatest(init.handle, m.dataPath, m.latestPath) });
          } else {
            const files = m.files.map((f) => ({ path: f.path, gte: buf(f.gte), lt: buf(f.lt) }));
            if (m.checkOnly) native.check(init.handle, files);
            else native.ingest(init.handle, files);
            emit({ t: 'ingested', id: m.id });
          }
        } catch (e) {
          emit({ t: 'error', id: m.id, error: toWireError(e) });
        }
        return;
    }
    schedule();
  });
  emit({ t: 'ready' });
} catch (e) {
  emit({ t: 'fatal', error: toWireError(e) });
}
