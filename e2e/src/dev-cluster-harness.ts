/**
 * A local cluster as a user starts it (`keyva dev --nodes N`, the placement control loop
 * included) for e2e tests: the process, its control address and node endpoints, the CLI run
 * against it, and waiting until the loop has settled.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { DevStatus } from '@keyva/cli/dev-cluster';
import { stopProcess } from '@keyva/cli/stop-process';

export const CLI = resolve(import.meta.dirname, '..', '..', 'cli', 'src', 'main.ts');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the `keyva` CLI and returns its exit code and output (never throws for a non-zero exit). */
export async function runCli(...args: string[]): Promise<CliResult> {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

export interface DevClusterOptions {
  readonly nodes: number;
  readonly partitions: number;
  readonly dataDir: string;
  /** More `keyva dev` flags (e.g. `--split-size`). */
  readonly extraArgs?: readonly string[];
  /** Runs `keyva dev` in a process group of its own, like a terminal's foreground job (see `interrupt`). */
  readonly ownProcessGroup?: boolean;
}

export class DevClusterHarness {
  readonly control: string;
  readonly endpoints: readonly string[];
  private readonly proc: ChildProcess;

  private constructor(proc: ChildProcess, control: string, endpoints: readonly string[]) {
    this.proc = proc;
    this.control = control;
    this.endpoints = endpoints;
  }

  /**
   * Starts `keyva dev` on founder ports below Linux's ephemeral range (outgoing connections take
   * their local ports from 32768 up, and one took a port this harness had picked there); a start
   * that still finds a port taken (exit code 2) is retried on other ports.
   */
  static async start(o: DevClusterOptions): Promise<DevClusterHarness> {
    for (let attempt = 1; ; attempt++) {
      const base = await portBase(o.nodes);
      const args = ['dev', '--nodes', String(o.nodes), '--partitions', String(o.partitions)];
      args.push('--grpc-port', String(base), '--http-port', String(base + 1), '--data-dir', o.dataDir, '--json', ...(o.extraArgs ?? []));
      const proc = spawn(process.execPath, [CLI, ...args], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, NO_COLOR: '1' },
        detached: o.ownProcessGroup === true,
      });
      const ready = await new Promise<{ control: string; nodes: { grpc: string }[] } | number | null>((res) => {
        const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
        lines.once('line', (l) => res(JSON.parse(l) as { control: string; nodes: { grpc: string }[] }));
        proc.once('exit', (code) => res(code));
      });
      if (typeof ready === 'object' && ready !== null)
        return new DevClusterHarness(
          proc,
          ready.control,
          ready.nodes.map((n) => n.grpc),
        );
      if (ready !== 2 || attempt >= 3) throw new Error(`keyva dev exited with ${ready}`);
    }
  }

  async status(): Promise<DevStatus> {
    const res = await fetch(`http://${this.control}/v1/status`);
    return (await res.json()) as DevStatus;
  }

  /** Waits until `ok(status)` holds with the loop settled (nothing moving, no learner, invariants clean). */
  async settled(what: string, ok: (s: DevStatus) => boolean, timeoutMs = 60_000): Promise<DevStatus> {
    const end = Date.now() + timeoutMs;
    let s = await this.status();
    while (Date.now() < end) {
      s = await this.status();
      const clean = !s.loop.changing && s.loop.violations.length === 0 && s.nodes.every((n) => n.learners === 0);
      if (clean && ok(s)) return s;
      await sleep(300);
    }
    throw new Error(`${what}: not settled in ${timeoutMs} ms; last status ${JSON.stringify({ nodes: s.nodes, loop: s.loop })}`);
  }

  /** Restarts the control loop as a crash would (the next loop resumes from the cluster's state). */
  async restartLoop(): Promise<number> {
    return (await fetch(`http://${this.control}/v1/loop/restart`, { method: 'POST' })).status;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) await stopProcess(this.proc, 30_000);
  }

  /**
   * A terminal's Ctrl-C: SIGINT to the whole process group (`ownProcessGroup`), the nodes
   * included; resolves with the CLI's exit code.
   */
  async interrupt(): Promise<number | null> {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    const exited = new Promise<number | null>((resolve) => this.proc.once('exit', (code) => resolve(code)));
    process.kill(-(this.proc.pid as number), 'SIGINT');
    return exited;
  }
}

/** Replicas a node holds in the status (-1 when the node is not listed). */
export function partitionsOf(s: DevStatus, id: string): number {
  return s.nodes.find((n) => n.id === id)?.partitions ?? -1;
}

/** A port base in [20000, 32000) whose founder ports (base + 10·i, +1) are free right now. */
async function portBase(nodes: number): Promise<number> {
  for (;;) {
    const base = 20_000 + 10 * Math.floor(Math.random() * 1_190);
    const ports = Array.from({ length: nodes }, (_, i) => [base + 10 * i, base + 10 * i + 1]).flat();
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return base;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createNetServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
