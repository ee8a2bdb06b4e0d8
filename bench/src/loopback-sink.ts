/**
 * The receiving side of the loopback/disk ceiling (loopback-ceiling.ts), a child process: listens
 * on 127.0.0.1 (any free port, sent to the parent over IPC), takes ONE connection and writes what
 * arrives to `file` (or discards it: `file` empty), fsyncs the file at the end of the stream, and
 * reports the bytes received and when the last one was durable.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';

const file = process.argv[2] ?? '';
const fd = file === '' ? undefined : openSync(file, 'w');
let bytes = 0;
const server = createServer((socket) => {
  server.close();
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    // Synchronous writes: the socket is not read again until the bytes are in the page cache (backpressure).
    if (fd !== undefined) for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
  });
  socket.on('end', () => {
    if (fd !== undefined) {
      fsyncSync(fd);
      closeSync(fd);
    }
    process.send?.({ type: 'done', bytes });
    socket.end();
  });
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.send?.({ type: 'listening', port: a && typeof a === 'object' ? a.port : 0 });
});
process.on('disconnect', () => process.exit(0));
