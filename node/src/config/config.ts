/**
 * Node configuration: ONE zod schema, fed (highest precedence first) by command-line flags
 * (`--grpc-port 7379`), environment variables (`KEYVA_GRPC_PORT=7379`) and an optional JSON file
 * (`--config file.json` or `KEYVA_CONFIG`), then defaults. Loaded once, in main.ts.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const bytes = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((s) => s === 'true' || s === '1')]);

const NodeConfigObject = z
  .object({
    /** Durable node identity; by default generated on first start and kept in the data dir. */
    nodeId: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, 1-63 chars')
      .optional(),
    dataDir: z.string().min(1).default('.keyva/data'),
    engine: z.enum(['rocksdb', 'memory']).default('rocksdb'),
    grpcHost: z.string().min(1).default('127.0.0.1'),
    grpcPort: port.default(7379),
    httpHost: z.string().min(1).default('127.0.0.1'),
    httpPort: port.default(7380),
    /** Address other nodes and clients should use, when it differs from host:port (e.g. a pod IP). */
    advertiseHost: z.string().min(1).optional(),
    partitions: z.coerce.number().int().min(1).max(65536).default(64),
    keyBytesMax: bytes(1, 65536).default(4096),
    valueBytesMax: bytes(0, 64 * 1024 * 1024).default(1024 * 1024),
    batchOpsMax: bytes(1, 100_000).default(1000),
    /** Largest gRPC message / HTTP body accepted. Must exceed valueBytesMax plus overhead. */
    messageBytesMax: bytes(1024, 256 * 1024 * 1024).default(8 * 1024 * 1024),
    ttlMsMax: z.coerce
      .number()
      .int()
      .min(1)
      .default(10 * 365 * 24 * 3600 * 1000),
    scanLimitMax: bytes(1, 1_000_000).default(10_000),
    /** Reads at a snapshot timestamp further ahead of the node clock than this are refused. */
    snapshotSkewMsMax: z.coerce.number().int().min(0).default(5000),
    compression: z.enum(['zstd', 'lz4', 'snappy', 'none']).default('lz4'),
    bloomBitsPerKey: z.coerce.number().int().min(0).max(32).default(10),
    blockCacheBytes: bytes(0, 1024 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
    /** MVCC versions are kept this long for snapshot reads, then garbage-collected. */
    versionRetentionMs: z.coerce
      .number()
      .int()
      .min(0)
      .default(10 * 60 * 1000),
    gcIntervalMs: z.coerce
      .number()
      .int()
      .min(100)
      .default(60 * 1000),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /** Operations slower than this are logged at warn level with their details. */
    slowOpMs: z.coerce.number().int().min(0).default(100),
    shutdownGraceMs: z.coerce.number().int().min(0).default(10_000),
    tracing: bool.default(true),
  })
  .strict();

export const NodeConfigSchema = NodeConfigObject.refine((c) => c.messageBytesMax > c.valueBytesMax + c.keyBytesMax, {
  message: 'messageBytesMax must be larger than valueBytesMax + keyBytesMax',
  path: ['messageBytesMax'],
});

export type NodeConfig = z.infer<typeof NodeConfigSchema>;
export type NodeConfigInput = z.input<typeof NodeConfigSchema>;

export const CONFIG_KEYS = Object.keys(NodeConfigObject.shape) as (keyof NodeConfig)[];

const toKebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const toEnv = (k: string) => `KEYVA_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid KeyVa node configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Parses `--flag value` / `--flag=value` pairs for known keys; unknown flags are errors. */
export function parseFlags(argv: readonly string[]): { values: Record<string, string>; configFile?: string } {
  const byFlag = new Map(CONFIG_KEYS.map((k) => [toKebab(k), k as string]));
  const values: Record<string, string> = {};
  let configFile: string | undefined;
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) {
      problems.push(`unexpected argument '${arg}'`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    let value: string | undefined = eq > 0 ? arg.slice(eq + 1) : argv[i + 1];
    if (eq < 0) {
      if (value === undefined || value.startsWith('--')) value = 'true';
      else i++;
    }
    if (value === undefined) value = 'true';
    if (name === 'config') configFile = value;
    else if (byFlag.has(name)) values[byFlag.get(name) as string] = value;
    else problems.push(`unknown flag --${name} (known: --config, ${[...byFlag.keys()].map((f) => `--${f}`).join(', ')})`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return configFile === undefined ? { values } : { values, configFile };
}

export interface ConfigSources {
  readonly argv?: readonly string[];
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Overrides applied last (programmatic use, tests). */
  readonly overrides?: NodeConfigInput;
}

/** Builds the configuration from flags, env and file; throws ConfigError naming every problem. */
export function loadNodeConfig(sources: ConfigSources = {}): NodeConfig {
  const flags = parseFlags(sources.argv ?? []);
  const env = sources.env ?? {};
  const fromEnv: Record<string, string> = {};
  for (const k of CONFIG_KEYS) {
    const v = env[toEnv(k)];
    if (v !== undefined && v !== '') fromEnv[k] = v;
  }
  const file = flags.configFile ?? env.KEYVA_CONFIG;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError([`cannot read config file ${file}: ${(e as Error).message}`]);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError([`config file ${file} is not valid JSON: ${(e as Error).message}`]);
    }
  }
  return validateNodeConfig({ ...fromFile, ...fromEnv, ...flags.values, ...(sources.overrides ?? {}) });
}

export function validateNodeConfig(input: unknown): NodeConfig {
  const parsed = NodeConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const key = i.path.join('.');
        const where = key ? `${key} (flag --${toKebab(key)}, env ${toEnv(key)})` : 'config';
        return `${where}: ${i.message}`;
      }),
    );
  }
  return parsed.data;
}
