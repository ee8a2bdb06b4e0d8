/** Command-line options of the ycsb suite (shared by `npm run bench -- ycsb` and `keyva bench ycsb`). */
import { parseArgs } from 'node:util';
import { YCSB_DEFAULTS, type YcsbOptions } from './ycsb.ts';
import { parseScaling } from './ycsb-scaling.ts';
import { DEFAULT_TARGETS, keyvaShape, TARGET_NAMES, type TargetName } from './ycsb-targets.ts';
import { parseWorkloads } from './ycsb-workloads.ts';

export const YCSB_USAGE = `npm run bench -- ycsb [options]     (or: keyva bench ycsb [options])

  --targets <list>        ${TARGET_NAMES.join(',')}
                          (default ${DEFAULT_TARGETS.join(',')})
                          keyva: KeyVa at --keyva-nodes (default 1 node); keyva-3: KeyVa 3 nodes RF 3;
                          both streamed SDK; keyva-unary: as keyva with one unary RPC per op.
                          Ratios: KeyVa 3 nodes vs etcd (like for like) and vs KeyVa 1 node, KeyVa 1
                          node vs Redis and the ceilings (one KeyVa target alone: vs every other)
  --workloads <list>      YCSB core workloads, run in this order on one data set (default ${YCSB_DEFAULTS.workloads.join(',')})
  --distribution <d>      zipfian (YCSB scrambled zipfian, 0.99) or uniform (default zipfian; D always reads 'latest')
  --records <n>           records loaded first (default ${YCSB_DEFAULTS.records})
  --value-size <bytes>    value size (default ${YCSB_DEFAULTS.valueSize}, YCSB's 10 fields x 100 B)
  --concurrency <n>       operations in flight, all client processes together (default ${YCSB_DEFAULTS.concurrency})
  --clients <n>           client processes (default ${YCSB_DEFAULTS.clients})
  --duration-ms <ms>      measured time per workload (default ${YCSB_DEFAULTS.durationMs})
  --warmup-ms <ms>        unmeasured warm-up before each workload (default ${YCSB_DEFAULTS.warmupMs})
  --ops-max <n>           bound on measured operations per workload (default ${YCSB_DEFAULTS.opsMax})
  --scan-length-max <n>   workload E scans 1..n records (default ${YCSB_DEFAULTS.scanLengthMax})
  --tags <n>              hash tags the records are spread over (default ${YCSB_DEFAULTS.tags})
  --seed <n>              PRNG seed (default ${YCSB_DEFAULTS.seed})
  --keyva-nodes <n>       nodes of the keyva and keyva-unary targets (default 1); more than 1 starts a
                          replicated cluster (--peers). keyva-3 is always 3 nodes RF 3
  --keyva-replication-factor <n>  replicas per partition of those (default min(3, nodes))
  --keyva-partitions <n>  partitions, one Raft group each when replicated (default: the node's, 64)
  --keyva-engine <e>      rocksdb (durable, default) or memory
  --keyva-endpoint <h:p>  bench a running KeyVa as the keyva/keyva-unary target (no server CPU/RSS then)
  --scaling <counts>      e.g. 1,3,5: run KeyVa alone at each node count, one cluster after the other
                          (RF 1 on 1 node, RF 3 on 3 or more), instead of --targets: throughput per
                          count with ratios, and every node's RSS per workload
  --etcd-members <n>      etcd cluster size (default ${YCSB_DEFAULTS.etcdMembers})
  --etcd-binary <path>    etcd server binary (default: bash scripts/go-tools.sh cached etcd)
  --redis-binary <path>   redis-server binary (default /usr/bin/redis-server)
  --json <file>           write the machine-readable report
  --markdown <file>       write the results tables (markdown)
  --plots <dir>           write SVG plots generated from the report
`;

function int(v: string | undefined, name: string, min = 1): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

export function parseYcsbArgs(args: readonly string[]): { options: YcsbOptions; json?: string; markdown?: string; plots?: string; help: boolean } {
  const d = YCSB_DEFAULTS;
  const { values } = parseArgs({
    args: [...args],
    allowPositionals: false,
    options: {
      targets: { type: 'string', default: d.targets.join(',') },
      workloads: { type: 'string', default: d.workloads.join(',') },
      distribution: { type: 'string', default: d.distribution },
      records: { type: 'string', default: String(d.records) },
      'value-size': { type: 'string', default: String(d.valueSize) },
      concurrency: { type: 'string', default: String(d.concurrency) },
      clients: { type: 'string', default: String(d.clients) },
      'duration-ms': { type: 'string', default: String(d.durationMs) },
      'warmup-ms': { type: 'string', default: String(d.warmupMs) },
      'ops-max': { type: 'string', default: String(d.opsMax) },
      'scan-length-max': { type: 'string', default: String(d.scanLengthMax) },
      tags: { type: 'string', default: String(d.tags) },
      seed: { type: 'string', default: String(d.seed) },
      'load-concurrency': { type: 'string', default: String(d.loadConcurrency) },
      'keyva-nodes': { type: 'string', default: String(d.keyvaNodes) },
      'keyva-replication-factor': { type: 'string' },
      'keyva-partitions': { type: 'string' },
      'keyva-engine': { type: 'string', default: d.keyvaEngine },
      'keyva-endpoint': { type: 'string' },
      scaling: { type: 'string' },
      'etcd-members': { type: 'string', default: String(d.etcdMembers) },
      'etcd-binary': { type: 'string' },
      'redis-binary': { type: 'string' },
      json: { type: 'string' },
      markdown: { type: 'string' },
      plots: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const targets = (values.targets ?? '').split(',').filter((t) => t !== '');
  for (const t of targets) if (!(TARGET_NAMES as readonly string[]).includes(t)) throw new Error(`unknown target '${t}' (${TARGET_NAMES.join(', ')})`);
  if (values.distribution !== 'zipfian' && values.distribution !== 'uniform') throw new Error(`--distribution must be zipfian or uniform`);
  if (values['keyva-engine'] !== 'rocksdb' && values['keyva-engine'] !== 'memory') throw new Error(`--keyva-engine must be rocksdb or memory`);
  const options: YcsbOptions = {
    targets: targets as TargetName[],
    workloads: parseWorkloads(values.workloads ?? ''),
    distribution: values.distribution,
    records: int(values.records, 'records'),
    valueSize: int(values['value-size'], 'value-size'),
    concurrency: int(values.concurrency, 'concurrency'),
    clients: int(values.clients, 'clients'),
    durationMs: int(values['duration-ms'], 'duration-ms', 100),
    warmupMs: int(values['warmup-ms'], 'warmup-ms', 0),
    opsMax: int(values['ops-max'], 'ops-max'),
    scanLengthMax: int(values['scan-length-max'], 'scan-length-max'),
    tags: int(values.tags, 'tags'),
    seed: int(values.seed, 'seed', 0),
    loadConcurrency: int(values['load-concurrency'], 'load-concurrency'),
    keyvaNodes: int(values['keyva-nodes'], 'keyva-nodes'),
    keyvaReplicationFactor: values['keyva-replication-factor'] === undefined ? undefined : int(values['keyva-replication-factor'], 'keyva-replication-factor'),
    keyvaPartitions: values['keyva-partitions'] === undefined ? undefined : int(values['keyva-partitions'], 'keyva-partitions'),
    keyvaEngine: values['keyva-engine'],
    keyvaEndpoint: values['keyva-endpoint'],
    etcdMembers: int(values['etcd-members'], 'etcd-members'),
    etcdBinary: values['etcd-binary'],
    redisBinary: values['redis-binary'],
    scaling: values.scaling === undefined ? undefined : parseScaling(values.scaling),
  };
  if (options.scaling === undefined && options.targets.includes('keyva') && options.targets.includes('keyva-3') && options.keyvaEndpoint === undefined) {
    const k = keyvaShape('keyva', options);
    if (k.nodes === 3 && k.replicationFactor === 3)
      throw new Error("--keyva-nodes 3 makes the 'keyva' target the same as 'keyva-3': drop one of them from --targets (or use --keyva-nodes 1)");
  }
  if (options.scaling !== undefined && options.keyvaEndpoint !== undefined)
    throw new Error('--scaling starts its own clusters: it cannot use --keyva-endpoint');
  return { options, json: values.json, markdown: values.markdown, plots: values.plots, help: values.help ?? false };
}
