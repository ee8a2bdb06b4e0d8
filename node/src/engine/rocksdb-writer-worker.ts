/**
 * Entry point of the RocksDB writer thread. Opens the main thread's database by its native
 * handle (same rocksdb::DB, no second open of the files) and hands every request to
 * `RocksWriter`. Requests that arrive while a write (and its fsync) blocks this thread are
 * pulled with `receiveMessageOnPort` to form the next group commit.
 *
 * The thread never closes the database: closing the shared handle would close it for the main
 * thread too. The engine stops this thread first, then closes the database itself.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { createRocksLevel } from './rocksdb-binding.ts';
import { RocksWriter } from './rocksdb-writer.ts';
import { toWireError, type WriterEvent, type WriterInit, type WriterMessage, type WriterRequest } from './rocksdb-writer-protocol.ts';
import { unpackWrites } from './writer-wire.ts';

const port = parentPort;
if (port === null) throw new Error('rocksdb-writer-worker must run in a worker thread');
const init = workerData as WriterInit;
const emit = (ev: WriterEvent): void => port.postMessage(ev, ev instanceof ArrayBuffer ? [ev] : []);
/** The requests of one message: packed writes (`writer-wire.ts`) or one other request. */
const requestsOf = (m: WriterMessage): WriterRequest[] =>
  m instanceof ArrayBuffer ? unpackWrites(m).map((w) => ({ t: 'write', id: w.id, batch: w.batch })) : [m];

try {
  const db = createRocksLevel(init.handle);
  await db.open();
  // Requests of a message not yet taken by the writer (pulled one at a time).
  const pulled: WriterRequest[] = [];
  const pull = (): WriterRequest | undefined => {
    if (pulled.length === 0) {
      const m = receiveMessageOnPort(port)?.message as WriterMessage | undefined;
      if (m === undefined) return undefined;
      pulled.push(...requestsOf(m));
    }
    return pulled.shift();
  };
  const writer = new RocksWriter(db, init.limits, emit, pull, init.packedWrites);
  // Before any request: finish an interrupted range delete, build the latest space if missing.
  await writer.prepare();
  port.on('message', (m: WriterMessage) => {
    writer.submit(...requestsOf(m)).then(
      () => {
        if (writer.stopped) port.close();
      },
      (e: unknown) => emit({ t: 'fatal', error: toWireError(e) }),
    );
  });
  emit({ t: 'ready' });
} catch (e) {
  emit({ t: 'fatal', error: toWireError(e) });
}
