#!/usr/bin/env node
/** keyva: run a local KeyVa, read and write data, inspect the cluster. `keyva --help`. */
import { isKeyVaError } from '@keyva/client';
import { Command, Option } from 'commander';
import { BENCH_HELP, runBench } from './commands/bench.ts';
import { type ConnOptions, cmdDel, cmdGet, cmdPut, cmdScan } from './commands/data.ts';
import { runDev } from './commands/dev.ts';
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
  .option('--nodes <n>', 'node processes: 1, or 3/5 for a replicated cluster (ports step by 10)', '1')
  .option('--json', 'print the node addresses as JSON', false)
  .action(async (o: { dataDir: string; memory: boolean; grpcPort: string; httpPort: string; nodes: string; json: boolean }) => {
    await runDev({ dataDir: o.dataDir, memory: o.memory, grpcPort: Number(o.grpcPort), httpPort: Number(o.httpPort), json: o.json, nodes: Number(o.nodes) });
  });

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

conn(program.command('status').description('show nodes, partitions and health')).action((o) => run(() => cmdStatus(connOf(o)))());

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
      const hint = e.code === 'UNAVAILABLE' || e.code === 'DEADLINE_EXCEEDED' ? `\nIs a node running at ${endpoint}? Start one with: ./keyva dev` : '';
      process.stderr.write(`${style.red('error')} ${e.code}: ${e.message}${hint}\n`);
    } else process.stderr.write(`${style.red('error')} ${(e as Error).message}\n`);
    process.exitCode = 2;
  });
