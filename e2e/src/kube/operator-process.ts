/** Runs the real operator (`node operator/src/main.ts`) as a child process, with a given identity. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const OPERATOR_MAIN = resolve(import.meta.dirname, '..', '..', '..', 'operator', 'src', 'main.ts');

export interface OperatorProcess {
  readonly identity: string;
  readonly logFile: string;
  readonly process: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Actions this instance executed (log lines `msg: "action"`). */
  actions(): { cluster: string; action: string; reason: string; detail: string }[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export interface OperatorOptions {
  readonly kubeconfigPath: string;
  readonly identity: string;
  readonly dir: string;
  readonly leaseNamespace: string;
  readonly leaseName: string;
  readonly env?: Record<string, string>;
}

export async function startOperator(o: OperatorOptions): Promise<OperatorProcess> {
  const logFile = join(o.dir, `operator-${o.identity}-${Date.now()}.log`);
  const log = createWriteStream(logFile);
  const env: Record<string, string> = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !k.startsWith('KEYVA_') && k !== 'KUBECONFIG')),
    KUBECONFIG: o.kubeconfigPath,
    KEYVA_OPERATOR_IDENTITY: o.identity,
    KEYVA_OPERATOR_LEASE_NAMESPACE: o.leaseNamespace,
    KEYVA_OPERATOR_LEASE_NAME: o.leaseName,
    // Short Lease timings so failover tests stay quick (production defaults: 15 s / 10 s / 2 s).
    KEYVA_OPERATOR_LEASE_DURATION_MS: '4000',
    KEYVA_OPERATOR_RENEW_DEADLINE_MS: '3000',
    KEYVA_OPERATOR_RETRY_PERIOD_MS: '500',
    KEYVA_OPERATOR_HTTP_HOST: '127.0.0.1',
    KEYVA_OPERATOR_HTTP_PORT: '0',
    KEYVA_OPERATOR_BACKOFF_BASE_MS: '200',
    KEYVA_OPERATOR_BACKOFF_MAX_MS: '5000',
    KEYVA_OPERATOR_LOG_LEVEL: 'debug',
    ...(o.env ?? {}),
  };
  const child = spawn(process.execPath, [OPERATOR_MAIN], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.stderr?.pipe(log, { end: false });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`operator ${o.identity} not ready in 30 s; see ${logFile}`)), 30_000);
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      if (line.startsWith('{"event":"ready"')) {
        clearTimeout(t);
        res();
      }
    });
    exited.then((code) => {
      clearTimeout(t);
      rej(new Error(`operator ${o.identity} exited with ${code} before ready; see ${logFile}:\n${safeRead(logFile).slice(-3000)}`));
    });
  });
  const logs = () =>
    safeRead(logFile)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  return {
    identity: o.identity,
    logFile,
    process: child,
    logs,
    actions: () =>
      logs()
        .filter((l) => l.msg === 'action')
        .map((l) => ({ cluster: String(l.cluster), action: String(l.action), reason: String(l.reason), detail: String(l.detail) })),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    exited,
  };
}

function safeRead(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}
