/**
 * Node configuration: ONE zod schema, fed (highest precedence first) by command-line flags
 * (`--grpc-port 7379`), environment variables (`KEYVA_GRPC_PORT=7379`) and an optional JSON file
 * (`--config file.json` or `KEYVA_CONFIG`), then defaults. Loaded once, in main.ts.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BACKGROUND_NICE_DEFAULT } from '../engine/thread-priority.ts';
import { raftDialProblems, replicationProblems } from './peers.ts';

const port = z.coerce.number().int().min(0).max(65535);
const bytes = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((s) => s === 'true' || s === '1')]);

const NodeConfigObject = z
  .object({
    nodeId: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, 1-63 chars')
      .optional()
      .describe('Durable node identity. Default: generated on first start and kept in the data dir; a data dir never changes owner.'),
    dataDir: z.string().min(1).default('.keyva/data').describe('Folder for RocksDB (rocksdb/), snapshots being received (snapshots/) and node metadata.'),
    engine: z.enum(['rocksdb', 'memory']).default('rocksdb').describe('Storage engine: rocksdb (durable) or memory (nothing survives a restart).'),
    grpcHost: z.string().min(1).default('127.0.0.1').describe('Interface the gRPC server listens on.'),
    grpcPort: port.default(7379).describe('gRPC port (0 = any free port).'),
    httpHost: z.string().min(1).default('127.0.0.1').describe('Interface of the REST gateway, health and metrics.'),
    httpPort: port.default(7380).describe('REST/health/metrics port (0 = any free port).'),
    advertiseHost: z.string().min(1).optional().describe('Host other nodes and clients should dial, when it differs from the listen host (e.g. a pod IP).'),
    partitions: z.coerce.number().int().min(1).max(65536).default(64).describe('Partitions of the hash space at first start (fixed afterwards).'),
    keyBytesMax: bytes(1, 65536).default(4096).describe('Largest key in bytes.'),
    valueBytesMax: bytes(0, 64 * 1024 * 1024)
      .default(1024 * 1024)
      .describe('Largest value in bytes.'),
    batchOpsMax: bytes(1, 100_000).default(1000).describe('Most operations in one BatchGet/BatchWrite.'),
    messageBytesMax: bytes(1024, 256 * 1024 * 1024)
      .default(8 * 1024 * 1024)
      .describe('Largest gRPC message or HTTP body; must exceed valueBytesMax + keyBytesMax.'),
    ttlMsMax: z.coerce
      .number()
      .int()
      .min(1)
      .default(10 * 365 * 24 * 3600 * 1000)
      .describe('Longest TTL in ms (default 10 years).'),
    scanLimitMax: bytes(1, 1_000_000).default(10_000).describe('Largest limit a scan may ask for.'),
    snapshotSkewMsMax: z.coerce.number().int().min(0).default(5000).describe('Snapshot reads further ahead of the node clock than this are refused.'),
    followerStalenessMs: z.coerce
      .number()
      .int()
      .min(1)
      .max(3_600_000)
      .default(1000)
      .describe('With --peers: how stale a follower read may be by default, in ms (a request may ask for another bound).'),
    compression: z
      .enum(['tiered', 'zstd', 'none'])
      .default('tiered')
      .describe(
        "RocksDB block compression. 'tiered': none in L0 and the level L0 is compacted into, where rows are young and rewritten soon, ZSTD in the levels below, where data settles (docs/adr/0015); needs KeyVa's build of the RocksDB binding and is 'zstd' on the published one. 'zstd': every level (least disk, most CPU in flushes and compactions). 'none'.",
      ),
    bloomBitsPerKey: z.coerce.number().int().min(0).max(32).default(10).describe('RocksDB bloom filter bits per key (0 = no filter).'),
    blockCacheBytes: bytes(0, 4_294_967_295)
      .default(64 * 1024 * 1024)
      .describe('RocksDB block cache size in bytes (at most 4 GiB - 1, the binding takes 32 bits).'),
    walCompression: bool
      .default(false)
      .describe(
        'RocksDB write-ahead log compression (ZSTD). It runs on the storage writer thread inside every write (Raft log appends and applies alike), about 20-30 us per write of 3 KiB here (a quarter of the write), and saves only WAL bytes, which are deleted after each flush: off by default. Turn it on when disk bandwidth, not CPU, limits writes and values compress well.',
      ),
    readCacheBytes: bytes(0, 64 * 1024 * 1024 * 1024)
      .default(32 * 1024 * 1024)
      .describe(
        'Bytes of the in-process cache of the newest version of recently read keys (rocksdb engine; point gets skip the storage lookup on a hit; writes invalidate it before they are sent, so reads never see stale data). 0 = off.',
      ),
    versionRetentionMs: z.coerce
      .number()
      .int()
      .min(0)
      .default(10 * 60 * 1000)
      .describe('How long old MVCC versions stay readable by snapshot reads before GC.'),
    gcIntervalMs: z.coerce
      .number()
      .int()
      .min(100)
      .default(5 * 60 * 1000)
      .describe(
        'How often version GC runs, at most: from the start of one pass to the next (each node starts at a random point of the first interval, so replicas do not all scan at once). A pass scans every version on the node, so passes are also spaced to take at most a tenth of the time.',
      ),
    gcChunkRows: z.coerce
      .number()
      .int()
      .min(16)
      .max(65_536)
      .default(256)
      .describe(
        'Rows version GC reads and judges in one step of the storage writer thread; writes queued meanwhile run between steps. Smaller keeps writes flowing during a GC scan (a 4,096-row step of 1 KiB values held writes back for tens of ms, and a whole scan stalled writes for seconds); larger finishes a scan with fewer seeks.',
      ),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Log level of the JSON logs on stdout.'),
    slowOpMs: z.coerce.number().int().min(0).default(100).describe('Requests slower than this are logged at warn level.'),
    shutdownGraceMs: z.coerce.number().int().min(0).default(10_000).describe('On SIGTERM, how long in-flight requests may take before they are cancelled.'),
    tracing: bool.default(true).describe('Export traces when the standard OTEL_* variables configure an exporter.'),
    peers: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Replicated mode: every member of a static cluster as id=grpcHost:port, comma-separated, this node included (needs --node-id). Unset: a single node without Raft.',
      ),
    replicationFactor: z.coerce
      .number()
      .int()
      .optional()
      .describe(
        'Replicas per partition with --peers: 1, 3 or 5 (default 3), at most the number of founding peers; the founders place each partition on this many of them, dealt round-robin over the peers sorted by id (balanced, the same on every founder); the meta group stays on every founder.',
      ),
    raftTickMs: z.coerce
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(100)
      .describe('Raft tick with --peers (election timeout --raft-election-ticks ticks, heartbeat 2 ticks).'),
    raftElectionTicks: z.coerce
      .number()
      .int()
      .min(3)
      .max(1000)
      .default(10)
      .describe(
        'With --peers: election timeout in Raft ticks (randomized between this and twice this; heartbeats every 2 ticks). Raise it (e.g. 20) on an oversubscribed host whose event loop stalls for about a second, at the cost of slower failover.',
      ),
    readMode: z
      .enum(['readindex', 'lease'])
      .default('lease')
      .describe(
        'With --peers: how a leader confirms a linearizable read. lease: served at once while its leader lease holds (a quorum answered a heartbeat less than an election timeout minus one tick ago; assumes node clocks run at the same rate within 10% and that a paused process sees its monotonic clock advance, see docs/adr/0008). readindex: a heartbeat round to a quorum per read batch, no clock assumption.',
      ),
    leaderBalanceIntervalMs: z.coerce
      .number()
      .int()
      .min(0)
      .max(3_600_000)
      .default(1000)
      .describe(
        'With --peers: how often this node evens out partition leadership (transfers groups it leads when it leads more than ceil(avg) + 1); 0 turns balancing off. The first run is 3 s after start.',
      ),
    leaderBalanceTransfersMax: z.coerce
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(8)
      .describe('With --peers: leadership transfers one balancing run may start, at most (none while one is still pending).'),
    metaVoterDownGraceMs: z.coerce
      .number()
      .int()
      .min(1000)
      .max(7 * 24 * 3_600_000)
      .default(300_000)
      .describe(
        'With --peers: how long a meta-group voter on a node still registered as active may stay unreachable before the meta leader replaces it with another active node (learner first, then the dead voter is removed; only when a spare node exists and the rest keep a healthy majority).',
      ),
    join: bool
      .default(false)
      .describe(
        'With --peers: this node joins an existing cluster instead of founding it. It bootstraps nothing and hosts no Raft group until a partition leader adds it as a replica (Admin.AddLearner); --peers lists the members it contacts to register, plus itself.',
      ),
    backgroundNice: z.coerce
      .number()
      .int()
      .min(0)
      .max(19)
      .default(BACKGROUND_NICE_DEFAULT)
      .describe(
        "Nice value (Linux, per thread) of the threads doing work no client waits for: RocksDB compactions and the thread that exports, installs and digests partitions during moves. Under CPU contention they then get about a tenth of a request-serving thread's share at 10, so client latency holds while partitions move (docs/adr/0016). 0 = same priority as everything else.",
      ),
    snapshotBytesPerSec: bytes(1 << 20, 2 ** 40)
      .default(64 * 1024 * 1024)
      .describe(
        'With --peers: bytes per second this node streams snapshots at, at most, shared by every transfer it sends (a new or lagging replica catching up, e.g. while a partition moves); gRPC flow control also paces each transfer. Higher moves data faster at the cost of more disk and CPU taken from client traffic.',
      ),
    snapshotFormat: z
      .enum(['auto', 'rows'])
      .default('auto')
      .describe(
        "With --peers: how this node sends snapshots. 'auto': as SST files when both nodes' RocksDB bindings can (KeyVa's build, scripts/rocksdb-native.sh; ADR 0013), else rows; 'rows': always rows (slower; for comparisons and as a way out).",
      ),
    snapshotTransport: z
      .enum(['socket', 'grpc'])
      .default('socket')
      .describe(
        "With --peers: how snapshots sent as SST files travel. 'socket': over a plain TCP connection to the peer's snapshot port (--snapshot-port; ADR 0014), faster on busy nodes, else over gRPC; 'grpc': always over gRPC (this node then opens no snapshot port, nor does one on the published RocksDB binding, which takes no SST files). Peers routed by --raft-dial are always sent over gRPC.",
      ),
    snapshotPort: port
      .default(0)
      .describe(
        'With --peers and --snapshot-transport socket: the TCP port, on --grpc-host, that takes snapshots as SST files from peers (0 = any free port; peers ask for it over gRPC). Fix it where a firewall or NetworkPolicy lists the ports peers may reach.',
      ),
    raftDial: z
      .string()
      .min(1)
      .optional()
      .describe(
        "With --peers: the address THIS node dials for some peers' Raft traffic, as id=host:port,... (e.g. a local proxy or sidecar); clients still get the --peers addresses. Unset: dial the --peers addresses.",
      ),
  })
  .strict();

export const NodeConfigSchema = NodeConfigObject.refine((c) => c.messageBytesMax > c.valueBytesMax + c.keyBytesMax, {
  message: 'messageBytesMax must be larger than valueBytesMax + keyBytesMax',
  path: ['messageBytesMax'],
}).superRefine((c, ctx) => {
  if (c.peers === undefined) {
    if (c.replicationFactor !== undefined && c.replicationFactor !== 1)
      ctx.addIssue({ code: 'custom', path: ['replicationFactor'], message: 'a replication factor above 1 needs --peers' });
    if (c.raftDial !== undefined) ctx.addIssue({ code: 'custom', path: ['raftDial'], message: '--raft-dial needs --peers' });
    if (c.join) ctx.addIssue({ code: 'custom', path: ['join'], message: '--join needs --peers' });
    return;
  }
  for (const message of replicationProblems(c.peers, c.nodeId, c.replicationFactor, c.join)) ctx.addIssue({ code: 'custom', path: ['peers'], message });
  if (c.raftDial !== undefined)
    for (const message of raftDialProblems(c.raftDial, c.peers, c.nodeId)) ctx.addIssue({ code: 'custom', path: ['raftDial'], message });
});

export type NodeConfig = z.infer<typeof NodeConfigSchema>;
export type NodeConfigInput = z.input<typeof NodeConfigSchema>;

export const CONFIG_KEYS = Object.keys(NodeConfigObject.shape) as (keyof NodeConfig)[];

export interface ConfigDoc {
  readonly key: string;
  readonly flag: string;
  readonly env: string;
  readonly default: string;
  readonly description: string;
}

/** One row per setting, for `--help` and docs/configuration.md. */
export function configDocs(): ConfigDoc[] {
  const defaults = NodeConfigObject.parse({}) as Record<string, unknown>;
  return CONFIG_KEYS.map((k) => {
    const field = NodeConfigObject.shape[k] as z.ZodType;
    const d = defaults[k];
    return { key: k, flag: `--${toKebab(k)}`, env: toEnv(k), default: d === undefined ? '(none)' : String(d), description: field.description ?? '' };
  });
}

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
