/** The `replicated` suite's command line: `npm run bench -- replicated [options]`. */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PHASES, type Phase, REPLICATED_DEFAULTS, type ReplicatedOptions, runReplicated, SYSTEMS, stopCurrent } from './replicated.ts';
import { renderReplicatedMarkdown } from './replicated-report.ts';
import { writeReports } from './report-files.ts';
import type { TargetName } from './ycsb-targets.ts';

const d = REPLICATED_DEFAULTS;

export const REPLICATED_USAGE = `npm run bench -- replicated [options]

KeyVa (${d.keyvaNodes} nodes, RF ${d.keyvaReplicationFactor}) against etcd (${d.etcdMembers} members) on loopback, one at a time:
puts (majority) and linearizable gets, same load generator, concurrency and value size.

  --rounds <n>            rounds; each runs both systems, order alternating (default ${d.rounds})
  --phases <list>         ${PHASES.join(',')} (default ${d.phases.join(',')})
  --systems <list>        ${SYSTEMS.join(',')} (default both; one alone is for profiling: no ratios then)
  --records <n>           records loaded first; gets read them, puts overwrite them (default ${d.records})
  --value-size <bytes>    value size (default ${d.valueSize})
  --concurrency <n>       operations in flight, all client processes together (default ${d.concurrency})
  --clients <n>           client processes (default ${d.clients})
  --duration-ms <ms>      measured time per phase (default ${d.durationMs})
  --warmup-ms <ms>        unmeasured warm-up before each phase (default ${d.warmupMs})
  --distribution <d>      uniform or zipfian key choice (default ${d.distribution})
  --ops-max <n>           bound on measured operations per phase (default ${d.opsMax})
  --seed <n>              PRNG seed (default ${d.seed})
  --keyva-nodes <n>       KeyVa nodes (default ${d.keyvaNodes})
  --keyva-replication-factor <n>  replicas per partition (default ${d.keyvaReplicationFactor})
  --keyva-partitions <n>  partitions, one Raft group each (default ${d.keyvaPartitions})
  --keyva-engine <e>      rocksdb (durable, default) or memory
  --keyva-exactly-once <on|off>  the SDK's request ids on writes (default on, as the SDK's; off measures
                          what they cost: resends then only follow provably unapplied attempts)
  --keyva-lone <on|off>   with --keyva-nodes 1: a lone node without Raft (on, default) or a one-voter
                          Raft cluster (off: what the Raft path costs a write, without followers)
  --keyva-cpu-prof <dir>  write V8 CPU profiles of the KeyVa node processes into <dir> (node --cpu-prof)
  --keyva-logs <dir>      keep the KeyVa nodes' logs (elections, errors) in <dir>
  --etcd-members <n>      etcd cluster size (default ${d.etcdMembers})
  --etcd-binary <path>    etcd server binary (default: bash scripts/go-tools.sh cached etcd)
  --json <file>           write the machine-readable report
  --markdown <file>       write the tables (markdown)
`;

function onOff(v: string | undefined, name: string): boolean {
  if (v === 'on' || v === 'off') return v === 'on';
  throw new Error(`--${name} must be on or off, got '${v}'`);
}

function int(v: string | undefined, name: string, min = 1): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

export function parseReplicatedArgs(args: readonly string[]): { options: ReplicatedOptions; json?: string; markdown?: string; help: boolean } {
  const { values } = parseArgs({
    args: [...args],
    allowPositionals: false,
    options: {
      rounds: { type: 'string', default: String(d.rounds) },
      phases: { type: 'string', default: d.phases.join(',') },
      systems: { type: 'string', default: d.systems.join(',') },
      records: { type: 'string', default: String(d.records) },
      'value-size': { type: 'string', default: String(d.valueSize) },
      concurrency: { type: 'string', default: String(d.concurrency) },
      clients: { type: 'string', default: String(d.clients) },
      'duration-ms': { type: 'string', default: String(d.durationMs) },
      'warmup-ms': { type: 'string', default: String(d.warmupMs) },
      distribution: { type: 'string', default: d.distribution },
      'ops-max': { type: 'string', default: String(d.opsMax) },
      seed: { type: 'string', default: String(d.seed) },
      'keyva-nodes': { type: 'string', default: String(d.keyvaNodes) },
      'keyva-replication-factor': { type: 'string' },
      'keyva-partitions': { type: 'string', default: String(d.keyvaPartitions) },
      'keyva-engine': { type: 'string', default: d.keyvaEngine },
      'keyva-exactly-once': { type: 'string', default: 'on' },
      'keyva-lone': { type: 'string', default: 'on' },
      'keyva-cpu-prof': { type: 'string' },
      'keyva-logs': { type: 'string' },
      'etcd-members': { type: 'string', default: String(d.etcdMembers) },
      'etcd-binary': { type: 'string' },
      json: { type: 'string' },
      markdown: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const phases = (values.phases ?? '').split(',').filter((p) => p !== '');
  if (phases.length === 0) throw new Error(`--phases: give at least one of ${PHASES.join(', ')}`);
  for (const p of phases) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`unknown phase '${p}' (${PHASES.join(', ')})`);
  const systems = (values.systems ?? '').split(',').filter((p) => p !== '');
  if (systems.length === 0) throw new Error(`--systems: give at least one of ${SYSTEMS.join(', ')}`);
  for (const t of systems) if (!(SYSTEMS as readonly string[]).includes(t)) throw new Error(`unknown system '${t}' (${SYSTEMS.join(', ')})`);
  if (values.distribution !== 'zipfian' && values.distribution !== 'uniform') throw new Error('--distribution must be zipfian or uniform');
  if (values['keyva-engine'] !== 'rocksdb' && values['keyva-engine'] !== 'memory') throw new Error('--keyva-engine must be rocksdb or memory');
  const keyvaNodes = int(values['keyva-nodes'], 'keyva-nodes');
  const rf = values['keyva-replication-factor'] === undefined ? Math.min(3, keyvaNodes) : int(values['keyva-replication-factor'], 'keyva-replication-factor');
  if (rf > keyvaNodes) throw new Error(`--keyva-replication-factor ${rf} is more than --keyva-nodes ${keyvaNodes}`);
  const records = int(values.records, 'records');
  const options: ReplicatedOptions = {
    ...d,
    rounds: int(values.rounds, 'rounds'),
    phases: phases as Phase[],
    systems: systems as TargetName[],
    records,
    // One hash tag per record at most, so the keys spread over every partition.
    tags: records,
    valueSize: int(values['value-size'], 'value-size'),
    concurrency: int(values.concurrency, 'concurrency'),
    clients: int(values.clients, 'clients'),
    durationMs: int(values['duration-ms'], 'duration-ms', 100),
    warmupMs: int(values['warmup-ms'], 'warmup-ms', 0),
    distribution: values.distribution,
    opsMax: int(values['ops-max'], 'ops-max'),
    seed: int(values.seed, 'seed', 0),
    keyvaNodes,
    keyvaReplicationFactor: rf,
    keyvaPartitions: int(values['keyva-partitions'], 'keyva-partitions'),
    keyvaEngine: values['keyva-engine'],
    keyvaExactlyOnce: onOff(values['keyva-exactly-once'], 'keyva-exactly-once'),
    keyvaLone: onOff(values['keyva-lone'], 'keyva-lone'),
    keyvaCpuProfDir: values['keyva-cpu-prof'] === undefined ? undefined : resolve(values['keyva-cpu-prof']),
    keyvaLogDir: values['keyva-logs'] === undefined ? undefined : resolve(values['keyva-logs']),
    etcdMembers: int(values['etcd-members'], 'etcd-members'),
    etcdBinary: values['etcd-binary'],
  };
  return { options, json: values.json, markdown: values.markdown, help: values.help ?? false };
}

export async function runReplicatedCli(args: readonly string[]): Promise<number> {
  try {
    const a = parseReplicatedArgs(args);
    if (a.help) {
      process.stdout.write(REPLICATED_USAGE);
      return 0;
    }
    process.once('SIGINT', () => {
      process.stderr.write('\ninterrupted: stopping the servers\n');
      void stopCurrent().finally(() => process.exit(130));
    });
    if (a.options.keyvaCpuProfDir) mkdirSync(a.options.keyvaCpuProfDir, { recursive: true });
    const report = await runReplicated(a.options);
    writeReports(report, renderReplicatedMarkdown(report), a);
    return 0;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 2;
  }
}
