#!/usr/bin/env node
/** keyva: run a local KeyVa, read and write data, inspect the cluster. `keyva --help`. */
import { isKeyVaError } from '@keyva/client';
import { Command, Option } from 'commander';
import { BENCH_HELP, runBench } from './commands/bench.ts';
import { type ConnOptions, cmdDel, cmdGet, cmdPut, cmdScan } from './commands/data.ts';
import { runDev } from './commands/dev.ts';
import { cmdNodeAdd, cmdNodeRemove } from './commands/node.ts';
import { cmdPartitionMerge, cmdPartitionSplit } from './commands/partition.ts';
import { cmdPartitionRecover } from './commands/partition-recover.ts';
import { cmdStatus } from './commands/status.ts';
import { style } from './output.ts';

const DEFAULT_ENDPOINT = process.env.KEYVA_ENDPOINT ?? '127.0.0.1:7379';

const program = new Command()
  .name('keyva')
  .description('KeyVa: a sharded, replicated key-value store.\nStart a local node with `keyva dev`, then use get/put/del/scan/status against it.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

const conn = (cmd: Command) =>
  cmd
    .addOption(new Option('-e, --endpoint <host:port>', 'gRPC endpoint of any node').default(DEFAULT_ENDPOINT).env('KEYVA_ENDPOINT'))
    .option('--json', 'machine-readable JSON output', false)
    .option('--deadline <ms>', 'deadline per call in ms', '5000');

const connOf = (o: { endpoint: string; json: boolean; deadline: string }): ConnOptions => ({
  endpoint: o.endpoint,
  json: o.json,
  deadlineMs: Number(o.deadline),
});

let exitCode = 0;
const run = (fn: () => Promise<number>) => async () => {
  exitCode = await fn();
};

program
  .command('dev')
  .description('start a local KeyVa (real node processes, RocksDB in .keyva/dev) and keep it running; --nodes 3 for a replicated cluster')
  .option('--data-dir <dir>', 'where the node keeps its data', '.keyva/dev')
  .option('--memory', 'use the memory engine (nothing is kept)', false)
  .option('--grpc-port <port>', 'gRPC port', '7379')
  .option('--http-port <port>', 'REST/metrics port', '7380')
  .option('--nodes <n>', 'node processes: 1, or 3/5 for a replicated cluster with the placement control loop (ports step by 10)', '1')
  .option('--partitions <n>', 'partitions at first start (default 64)')
  .option('--control-port <port>', 'loopback port of the control endpoint for keyva node/status (--nodes 3|5; default: any free port)', '0')
  .option('--split-size <bytes>', 'the control loop splits a partition holding this many bytes (--nodes 3|5; default 512 MiB)')
  .option('--split-qps <n>', 'the control loop splits a partition serving this many keys per second (--nodes 3|5; default 5000)')
  .option('--merge-size <bytes>', 'the control loop merges neighbouring partitions holding fewer bytes together (--nodes 3|5; default: no merges)')
  .option('--json', 'print the node addresses as JSON', false)
  .action(
    async (o: {
      dataDir: string;
      memory: boolean;
      grpcPort: string;
      httpPort: string;
      nodes: string;
      partitions?: string;
      controlPort: string;
      splitSize?: string;
      splitQps?: string;
      mergeSize?: string;
      json: boolean;
    }) => {
      await runDev({
        dataDir: o.dataDir,
        memory: o.memory,
        grpcPort: Number(o.grpcPort),
        httpPort: Number(o.httpPort),
        json: o.json,
        nodes: Number(o.nodes),
        partitions: o.partitions === undefined ? undefined : Number(o.partitions),
        controlPort: Number(o.controlPort),
        splitSizeBytes: o.splitSize === undefined ? undefined : Number(o.splitSize),
        splitQps: o.splitQps === undefined ? undefined : Number(o.splitQps),
        mergeSizeBytes: o.mergeSize === undefined ? undefined : Number(o.mergeSize),
      });
    },
  );

/** Options that find a local cluster's control endpoint (`keyva dev --nodes N`). */
const control = (cmd: Command) =>
  cmd
    .addOption(new Option('--control <host:port>', "the local cluster's control endpoint (default: from <data dir>/control.json)").env('KEYVA_CONTROL'))
    .option('--data-dir <dir>', 'data folder of the local cluster (where keyva dev wrote control.json)', '.keyva/dev');

conn(program.command('get <key>').description('print the value of a key')).action((key: string, o) => run(() => cmdGet(connOf(o), key))());

conn(program.command('put <key> <value>').description('write a value'))
  .option('--ttl <duration>', 'expire after this long, e.g. 30s, 10m, 1h')
  .option('--if-absent', 'only if the key does not exist')
  .option('--if-version <version>', 'only if the current version is this')
  .action((key: string, value: string, o) => run(() => cmdPut(connOf(o), key, value, { ttl: o.ttl, ifAbsent: o.ifAbsent, ifVersion: o.ifVersion }))());

conn(program.command('del <key>').alias('delete').description('delete a key'))
  .option('--if-version <version>', 'only if the current version is this')
  .action((key: string, o) => run(() => cmdDel(connOf(o), key, o.ifVersion))());

conn(program.command('scan').description('list keys: inside a hash tag in key order, or the whole keyspace in hash order'))
  .option('--tag <tag>', 'hash tag: keys containing {tag}, in key order')
  .option('--prefix <prefix>', 'only keys starting with this')
  .option('--start <key>', 'first key (inclusive; needs --tag)')
  .option('--end <key>', 'last key (exclusive; needs --tag)')
  .option('--limit <n>', 'at most this many keys', '100')
  .option('--cursor <cursor>', 'continue a previous scan')
  .option('--keys-only', 'omit values')
  .action((o) => run(() => cmdScan(connOf(o), o))());

control(conn(program.command('status').description('show nodes, partitions and health; for a local cluster also placement: moves, blockers, invariants')))
  .option('--watch', 'refresh every second (with a progress bar) until the change under way has finished', false)
  .action((o, cmd: Command) =>
    run(() =>
      cmdStatus(connOf(o), { control: o.control, dataDir: o.dataDir, watch: o.watch, endpointGiven: cmd.getOptionValueSource('endpoint') !== 'default' }),
    )(),
  );

const node = program.command('node').description('add or remove nodes of a local cluster (keyva dev --nodes 3|5)');
control(node.command('add').description('start a new node; the control loop moves its share of the partitions onto it'))
  .option('--json', 'machine-readable JSON output', false)
  .action((o) => run(() => cmdNodeAdd({ control: o.control, dataDir: o.dataDir, json: o.json }))());
control(
  node.command('remove <id>').description('drain a node (refused when unsafe, with the reason), then remove and stop it once it confirms it holds no replica'),
)
  .option('--json', 'machine-readable JSON output', false)
  .action((id: string, o) => run(() => cmdNodeRemove({ control: o.control, dataDir: o.dataDir, json: o.json }, id))());

const partition = program.command('partition').description('partition administration (replicated clusters)');
conn(
  partition
    .command('split <id>')
    .description('split a partition at a hash point (metadata only, no data moves); repeating it with the same --at changes nothing'),
)
  .option('--at <hash>', 'split point, decimal or 0x-hex, strictly inside the range (default: its middle)')
  .action((id: string, o) => run(() => cmdPartitionSplit(connOf(o), id, o.at))());
conn(
  partition
    .command('merge <left> <right>')
    .description('merge partition <right> into its left neighbour <left> (same replicas; metadata only, no data moves); repeating it changes nothing'),
).action((left: string, right: string, o) => run(() => cmdPartitionMerge(connOf(o), left, right))());
conn(
  partition
    .command('recover <id>')
    .description(
      'UNSAFE: force a partition (or "meta", the meta group) that lost a majority of its replicas for good down to its survivors; send it to a survivor (--endpoint). Writes only the lost replicas held are lost (docs/operations.md, "Lost quorum")',
    ),
)
  .option('--survivors <ids>', 'node ids of the replicas still alive, comma-separated (the answering node among them)')
  .option('--i-understand-data-loss', 'confirm that writes held only by the lost replicas may be lost', false)
  .action((id: string, o) => run(() => cmdPartitionRecover(connOf(o), id, { survivors: o.survivors, iUnderstandDataLoss: o.iUnderstandDataLoss }))());

program
  .command('bench')
  .description('run benchmarks: single-node, ycsb (YCSB A-F vs etcd and Redis), plot (see docs/benchmarks.md)')
  .argument('[suite]', 'single-node | ycsb | plot')
  .argument('[args...]', 'options of the suite (keyva bench ycsb --help)')
  .allowUnknownOption()
  .helpOption(false)
  .addHelpText('after', `\n${BENCH_HELP}`)
  .action((suite: string | undefined, args: string[]) =>
    run(async () => {
      if (suite === undefined || suite === '--help' || suite === '-h') {
        process.stdout.write(`Usage: keyva bench <suite> [options]\n\n${BENCH_HELP}\n`);
        return 0;
      }
      return runBench([suite, ...args]);
    })(),
  );

program
  .parseAsync(process.argv)
  .then(() => {
    process.exitCode = exitCode;
  })
  .catch((e: unknown) => {
    if (isKeyVaError(e)) {
      const endpoint = program.commands.find((c) => c.name() === program.args[0])?.opts().endpoint ?? DEFAULT_ENDPOINT;
      // `keyva node ...` talks to the local cluster's control endpoint: its message says what to do.
      const hint =
        (e.code === 'UNAVAILABLE' || e.code === 'DEADLINE_EXCEEDED') && program.args[0] !== 'node'
          ? `\nIs a node running at ${endpoint}? Start one with: ./keyva dev`
          : '';
      process.stderr.write(`${style.red('error')} ${e.code}: ${e.message}${hint}\n`);
    } else process.stderr.write(`${style.red('error')} ${(e as Error).message}\n`);
    process.exitCode = 2;
  });
