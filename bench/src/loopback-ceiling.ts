/**
 * The loopback/disk ceiling of a data move, measured in the same run as the move: `bytes` of
 * incompressible data streamed over one loopback TCP connection to another process that writes
 * them to a file on the same file system as the nodes' data and fsyncs it at the end (what a
 * snapshot transfer must at least do: cross a socket, land on disk durably), timed from the
 * connection until the receiver reports the file durable. Also the loopback alone (the receiver
 * discards), to tell transport from disk. Best of a few runs each.
 */
import { fork } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';

const SINK = resolve(import.meta.dirname, 'loopback-sink.ts');
const CHUNK = 1 << 20;

export interface CeilingRun {
  readonly bytes: number;
  readonly seconds: number;
  readonly bytesPerSec: number;
}

export interface Ceiling {
  /** Loopback TCP into a file, fsynced at the end: the ceiling the move rate is compared with. */
  readonly loopbackDisk: CeilingRun;
  /** Loopback TCP only (the receiver discards). */
  readonly loopback: CeilingRun;
}

async function streamOnce(bytes: number, file: string): Promise<CeilingRun> {
  const child = fork(SINK, [file], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const message = (type: string) =>
      new Promise<{ type: string; port?: number; bytes?: number }>((res, rej) => {
        const on = (m: { type: string }) => {
          if (m.type !== type) return;
          child.off('message', on);
          res(m);
        };
        child.on('message', on);
        child.once('exit', (code) => rej(new Error(`loopback sink exited (${code}) before '${type}'`)));
      });
    const { port } = await message('listening');
    const done = message('done');
    const chunk = randomFillSync(Buffer.allocUnsafe(CHUNK));
    const t0 = performance.now();
    const socket = connect({ host: '127.0.0.1', port: port as number });
    await new Promise<void>((res, rej) => {
      socket.once('error', rej);
      socket.once('connect', () => res());
    });
    for (let sent = 0; sent < bytes; ) {
      const n = Math.min(CHUNK, bytes - sent);
      sent += n;
      if (!socket.write(n === CHUNK ? chunk : chunk.subarray(0, n))) await new Promise((r) => socket.once('drain', r));
    }
    socket.end();
    const got = await done;
    const seconds = (performance.now() - t0) / 1000;
    socket.destroy();
    if (got.bytes !== bytes) throw new Error(`loopback sink received ${got.bytes} of ${bytes} bytes`);
    return { bytes, seconds, bytesPerSec: bytes / seconds };
  } finally {
    child.kill();
    if (file !== '') rmSync(file, { force: true });
  }
}

const fastest = (runs: readonly CeilingRun[]): CeilingRun => runs.reduce((a, b) => (b.bytesPerSec > a.bytesPerSec ? b : a));

/**
 * Measures both ceilings with `bytes` (at least 1 MiB) in `dir` (a directory on the nodes' file
 * system), `runs` times each, alternating, and keeps the fastest run of each: a ceiling is what the
 * machine can do, and other load on it only ever slows a run down.
 */
export async function measureCeiling(bytes: number, dir: string, runs = 3): Promise<Ceiling> {
  const n = Math.max(CHUNK, Math.round(bytes));
  const loopback: CeilingRun[] = [];
  const loopbackDisk: CeilingRun[] = [];
  for (let i = 0; i < Math.max(1, runs); i++) {
    loopback.push(await streamOnce(n, ''));
    loopbackDisk.push(await streamOnce(n, join(dir, 'ceiling.bin')));
  }
  return { loopbackDisk: fastest(loopbackDisk), loopback: fastest(loopback) };
}
