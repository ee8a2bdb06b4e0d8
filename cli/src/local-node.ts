/**
 * Starts a real KeyVa node as a child process (the local platform for `keyva dev` and tests):
 * same binary and flags as in production, logs to a file, resolves once the node reports ready.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { stopProcess } from './stop-process.ts';

export const NODE_MAIN = resolve(import.meta.dirname, '..', '..', 'node', 'src', 'main.ts');

export interface LocalNodeOptions {
  readonly dataDir: string;
  readonly engine: 'rocksdb' | 'memory';
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly host?: string;
  readonly nodeId?: string;
  readonly logLevel?: string;
  readonly extraArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
  /** Extra environment for the node process (e.g. OTEL_* variables). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface LocalNode {
  readonly nodeId: string;
  readonly grpc: string;
  readonly http: string;
  readonly logFile: string;
  readonly process: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export async function startLocalNode(o: LocalNodeOptions): Promise<LocalNode> {
  mkdirSync(o.dataDir, { recursive: true });
  const logFile = join(o.dataDir, 'node.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  const host = o.host ?? '127.0.0.1';
  const args = [
    NODE_MAIN,
    '--data-dir',
    o.dataDir,
    '--engine',
    o.engine,
    '--grpc-host',
    host,
    '--http-host',
    host,
    '--grpc-port',
    String(o.grpcPort),
    '--http-port',
    String(o.httpPort),
    '--log-level',
    o.logLevel ?? 'info',
    ...(o.nodeId ? ['--node-id', o.nodeId] : []),
    ...(o.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.stderr?.pipe(log);
  let stderrTail = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderrTail = (stderrTail + d.toString()).slice(-4000);
  });
  const ready = await new Promise<{ nodeId: string; grpc: string; http: string }>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a half-started node behind (it would hold its data dir's lock)
      reject(new Error(`node did not become ready within ${o.readyTimeoutMs ?? 30_000} ms; see ${logFile}`));
    }, o.readyTimeoutMs ?? 30_000);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      if (!line.startsWith('{"event":"ready"')) return;
      clearTimeout(timer);
      resolveReady(JSON.parse(line) as { nodeId: string; grpc: string; http: string });
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with code ${code} before it was ready:\n${stderrTail.trim()}`));
    });
  });
  const stop = async (graceMs = 15_000) => {
    await stopProcess(child, graceMs);
    return exited;
  };
  return { ...ready, logFile, process: child, stop, exited };
}
