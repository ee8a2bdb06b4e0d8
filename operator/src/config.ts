/**
 * Operator configuration: ONE zod schema over environment variables (KEYVA_OPERATOR_*, plus the
 * Downward-API POD_NAME/POD_NAMESPACE), read once in main.ts. Credentials come from KUBECONFIG or
 * the in-cluster service account (client-node's loadFromDefault).
 */
import { hostname } from 'node:os';
import { z } from 'zod';

const ms = (d: number) => z.coerce.number().int().min(1).default(d);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((s) => s === 'true' || s === '1')]);

const OperatorConfigObject = z
  .object({
    watchNamespace: z.string().default('').describe('Namespace to watch; empty = all namespaces.'),
    leaderElection: bool.default(true).describe('Elect a leader through a Lease (turn off only for a single replica).'),
    leaseNamespace: z.string().min(1).describe('Namespace of the Lease (default: POD_NAMESPACE, else keyva-system).'),
    leaseName: z.string().min(1).default('keyva-operator').describe('Name of the Lease.'),
    identity: z.string().min(1).describe('This replica in the Lease (default: POD_NAME, else hostname-pid).'),
    leaseDurationMs: ms(15_000).describe('How long a Lease stays valid without renewal.'),
    renewDeadlineMs: ms(10_000).describe('How long the leader keeps trying to renew before it stops leading.'),
    retryPeriodMs: ms(2_000).describe('Interval between Lease attempts.'),
    workers: z.coerce.number().int().min(1).max(32).default(2).describe('Clusters reconciled in parallel (never one cluster twice at once).'),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Log level of the JSON logs on stdout.'),
    httpHost: z.string().min(1).default('0.0.0.0').describe('Interface of /healthz, /readyz and /metrics.'),
    httpPort: z.coerce.number().int().min(0).max(65535).default(8080).describe('Port of /healthz, /readyz and /metrics (0 = any).'),
    probeTimeoutMs: ms(2_000).describe('Timeout of a request to a KeyVa node (pod IP) for its id and partitions.'),
    backoffBaseMs: ms(500).describe('First retry delay after a failed pass over a cluster (doubles per failure).'),
    backoffMaxMs: ms(60_000).describe('Longest retry delay.'),
    quorumLossGraceMs: ms(60_000).describe('How long a Raft group (a partition or the meta group) may have no leader before status says Degraded=QuorumLost.'),
  })
  .strict();

export const OperatorConfigSchema = OperatorConfigObject.refine((c) => c.leaseDurationMs > c.renewDeadlineMs && c.renewDeadlineMs > c.retryPeriodMs, {
  message: 'need leaseDurationMs > renewDeadlineMs > retryPeriodMs',
  path: ['leaseDurationMs'],
});

export type OperatorConfig = z.infer<typeof OperatorConfigSchema>;

const toEnv = (k: string) => `KEYVA_OPERATOR_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

export const CONFIG_ENV: Record<string, string> = Object.fromEntries(Object.keys(OperatorConfigObject.shape).map((k) => [k, toEnv(k)]));

export class OperatorConfigError extends Error {}

export function loadOperatorConfig(env: Record<string, string | undefined>): OperatorConfig {
  const raw: Record<string, unknown> = {};
  for (const [k, e] of Object.entries(CONFIG_ENV)) if (env[e] !== undefined && env[e] !== '') raw[k] = env[e];
  if (env.KEYVA_OPERATOR_WATCH_NAMESPACE === '') raw.watchNamespace = '';
  raw.leaseNamespace ??= env.POD_NAMESPACE || 'keyva-system';
  raw.identity ??= env.POD_NAME || `${hostname()}-${process.pid}`;
  const r = OperatorConfigSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const k = String(i.path[0] ?? '');
      return `  - ${k}${CONFIG_ENV[k] ? ` (env ${CONFIG_ENV[k]})` : ''}: ${i.message}`;
    });
    throw new OperatorConfigError(`invalid KeyVa operator configuration:\n${lines.join('\n')}`);
  }
  return r.data;
}

export function configHelp(): string {
  const shape = OperatorConfigObject.shape as Record<string, z.ZodType>;
  return Object.entries(CONFIG_ENV)
    .map(([k, e]) => `  ${e.padEnd(38)} ${shape[k]?.description ?? ''}`)
    .join('\n');
}
