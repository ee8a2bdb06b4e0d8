/**
 * Starts `replica-process.ts` (one replication node on RocksDB in a child process, for kill -9
 * tests) and waits until it printed `ready <port>`. Every stdout line goes to `onLine` too (the
 * process answers puts sent on stdin with `ack`/`fail` lines when `config.puts` is set).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ReplicaProcessConfig } from './replica-process.ts';

export interface SpawnedReplica {
  readonly child: ChildProcess;
  /** The signal that ended the process (null for a normal exit). */
  readonly exited: Promise<NodeJS.Signals | null>;
  /** `127.0.0.1:<port>` of its Raft server. */
  readonly address: string;
  /** What it wrote to stderr so far. */
  stderr(): string;
}

export async function spawnReplica(config: ReplicaProcessConfig, onLine: (line: string) => void = () => {}): Promise<SpawnedReplica> {
  const script = fileURLToPath(new URL('./replica-process.ts', import.meta.url));
  const child = spawn(process.execPath, [script, JSON.stringify(config)], { stdio: [config.puts ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = await new Promise<string>((resolve, reject) => {
    lines.on('line', (l) => {
      if (l.startsWith('ready ')) resolve(l.slice(6));
      else onLine(l);
    });
    exited.then(() => reject(new Error(`replica process exited: ${stderr}`)));
  });
  return { child, exited, address: `127.0.0.1:${port}`, stderr: () => stderr };
}
