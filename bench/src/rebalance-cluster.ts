/**
 * The rebalancing benchmark's cluster: `keyva dev --nodes 3` in a child process (real node
 * processes, RF 3, the placement control loop in the dev supervisor, not in the benchmark's own
 * event loop, so its work never delays the measured client), driven through its loopback control
 * endpoint (`POST /v1/nodes` adds a node, `GET /v1/status` shows the loop's progress), plus each
 * node's `/metrics` (streamed-snapshot byte counters).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { DevStatus } from '@keyva/cli/dev-cluster';
import { stopProcess } from '@keyva/cli/stop-process';

const CLI = resolve(import.meta.dirname, '..', '..', 'cli', 'src', 'main.ts');

export interface DevNodeAddress {
  readonly id: string;
  readonly grpc: string;
  readonly http: string;
}

/** Streamed-snapshot counters of one node (`keyva_snapshot_*` in its `/metrics`). */
export interface SnapshotCounters {
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly sent: number;
  /** Of `sent`, transfers sent as SST files (ADR 0013). */
  readonly sentAsFiles: number;
  /** Transfers begun over a peer's snapshot socket (ADR 0014). */
  readonly sentOverSocket: number;
  readonly received: number;
  readonly sending: number;
  readonly sendFailed: number;
  readonly receiveFailed: number;
  /** Seconds during which the node received at least one transfer (the time its received bytes took). */
  readonly receivingSeconds: number;
}

export const ZERO_COUNTERS: SnapshotCounters = {
  sentBytes: 0,
  receivedBytes: 0,
  sent: 0,
  sentAsFiles: 0,
  sentOverSocket: 0,
  received: 0,
  sending: 0,
  sendFailed: 0,
  receiveFailed: 0,
  receivingSeconds: 0,
};

const METRIC: Readonly<Record<keyof SnapshotCounters, string>> = {
  sentBytes: 'keyva_snapshot_sent_bytes',
  receivedBytes: 'keyva_snapshot_received_bytes',
  sent: 'keyva_snapshots_sent',
  sentAsFiles: 'keyva_snapshots_sent_as_files',
  sentOverSocket: 'keyva_snapshots_sent_over_socket',
  received: 'keyva_snapshots_received',
  sending: 'keyva_snapshots_sending',
  sendFailed: 'keyva_snapshots_send_failed',
  receiveFailed: 'keyva_snapshots_receive_failed',
  receivingSeconds: 'keyva_snapshot_receiving_seconds',
};

/** The snapshot counters in a Prometheus text exposition (0 for a counter the node does not export). */
export function parseSnapshotCounters(text: string): SnapshotCounters {
  const value = (name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    const v = m ? Number(m[1]) : 0;
    return Number.isFinite(v) ? v : 0;
  };
  const out: Record<string, number> = {};
  for (const [k, name] of Object.entries(METRIC)) out[k] = value(name);
  return out as unknown as SnapshotCounters;
}

export function addCounters(a: SnapshotCounters, b: SnapshotCounters): SnapshotCounters {
  const out: Record<string, number> = {};
  for (const k of Object.keys(METRIC) as (keyof SnapshotCounters)[]) out[k] = a[k] + b[k];
  return out as unknown as SnapshotCounters;
}

const canBind = (port: number) =>
  new Promise<boolean>((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });

/** A base port whose dev-cluster ports (base + 10·i for gRPC, + 1 for HTTP, i < nodes) are all free now. */
async function freePortBlock(nodes: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    const ports = Array.from({ length: nodes }, (_, i) => [base + 10 * i, base + 10 * i + 1]).flat();
    let ok = true;
    for (const p of ports) if (!(await canBind(p))) ok = false;
    if (ok) return base;
  }
  throw new Error(`no block of free ports for ${nodes} nodes found on 127.0.0.1`);
}

export class DevClusterProcess {
  readonly control: string;
  readonly founders: readonly DevNodeAddress[];
  private readonly proc: ChildProcess;
  private readonly added: DevNodeAddress[] = [];

  private constructor(proc: ChildProcess, control: string, founders: DevNodeAddress[]) {
    this.proc = proc;
    this.control = control;
    this.founders = founders;
  }

  /** Starts `keyva dev --nodes <founders>` in `dataDir` and waits for its JSON line (every node ready). */
  static async start(o: {
    founders: number;
    partitions: number;
    dataDir: string;
    memory: boolean;
    timeoutMs?: number;
    /** Extra environment of the dev supervisor and so of every node (e.g. KEYVA_SNAPSHOT_BYTES_PER_SEC). */
    env?: Readonly<Record<string, string>>;
  }): Promise<DevClusterProcess> {
    const base = await freePortBlock(o.founders);
    const args = [
      CLI,
      'dev',
      '--nodes',
      String(o.founders),
      '--partitions',
      String(o.partitions),
      '--grpc-port',
      String(base),
      '--http-port',
      String(base + 1),
    ];
    args.push('--data-dir', o.dataDir, '--json', ...(o.memory ? ['--memory'] : []));
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env, NO_COLOR: '1' } });
    let tail = '';
    proc.stderr?.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
    });
    try {
      const ready = await new Promise<{ control: string; nodes: DevNodeAddress[] }>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`keyva dev not ready within ${o.timeoutMs ?? 120_000} ms: ${tail}`)), o.timeoutMs ?? 120_000);
        const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
        lines.once('line', (l) => {
          clearTimeout(timer);
          try {
            res(JSON.parse(l) as { control: string; nodes: DevNodeAddress[] });
          } catch {
            rej(new Error(`keyva dev printed '${l}' instead of its JSON line`));
          }
        });
        proc.once('exit', (code) => {
          clearTimeout(timer);
          rej(new Error(`keyva dev exited with ${code}: ${tail}`));
        });
      });
      return new DevClusterProcess(proc, ready.control, ready.nodes);
    } catch (e) {
      if (proc.exitCode === null) await stopProcess(proc, 30_000);
      throw e;
    }
  }

  get nodes(): readonly DevNodeAddress[] {
    return [...this.founders, ...this.added];
  }

  async status(): Promise<DevStatus> {
    const r = await fetch(`http://${this.control}/v1/status`, { signal: AbortSignal.timeout(10_000) });
    if (r.status !== 200) throw new Error(`control status: HTTP ${r.status}`);
    return (await r.json()) as DevStatus;
  }

  /** `keyva node add`: starts the next node; the control loop moves its ring share onto it. */
  async addNode(): Promise<DevNodeAddress> {
    const r = await fetch(`http://${this.control}/v1/nodes`, { method: 'POST', signal: AbortSignal.timeout(120_000) });
    const body = (await r.json()) as DevNodeAddress & { message?: string };
    if (r.status !== 200) throw new Error(`node add refused (HTTP ${r.status}): ${body.message ?? JSON.stringify(body)}`);
    this.added.push({ id: body.id, grpc: body.grpc, http: body.http });
    return body;
  }

  /** Every node's snapshot counters, by node id (a node that does not answer: zeros). */
  async snapshotCounters(): Promise<Map<string, SnapshotCounters>> {
    const out = new Map<string, SnapshotCounters>();
    await Promise.all(
      this.nodes.map(async (n) => {
        try {
          const r = await fetch(`http://${n.http}/metrics`, { signal: AbortSignal.timeout(5000) });
          out.set(n.id, r.status === 200 ? parseSnapshotCounters(await r.text()) : ZERO_COUNTERS);
        } catch {
          out.set(n.id, ZERO_COUNTERS);
        }
      }),
    );
    return out;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) await stopProcess(this.proc, 60_000);
  }
}

/** The loop is settled: nothing changing or moving, no learner, no invariant violation. */
export function settled(s: DevStatus): boolean {
  return !s.loop.changing && s.loop.movesInFlight === 0 && s.loop.violations.length === 0 && s.nodes.every((n) => n.learners === 0);
}
