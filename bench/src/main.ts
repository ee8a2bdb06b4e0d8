#!/usr/bin/env node
/**
 * `npm run bench -- <suite> [options]`: KeyVa benchmarks. Suites:
 *   single-node   KeyVa get/put beside grpc-js echo and raw RocksDB (the foundation figures)
 *   ycsb          YCSB workloads A-F against KeyVa, etcd, Redis and the ceilings (`ycsb --help`)
 *   replicated    KeyVa 3 nodes RF 3 against etcd 3 members: puts and linearizable gets (`replicated --help`)
 *   rebalance     a 4th node joins a loaded 3-node cluster under load: p99 and move rate vs the loopback/disk ceiling (`rebalance --help`)
 *   plot          SVG plots from a ycsb JSON report: `plot <report.json> [--out dir]`
 */
import { parseArgs } from 'node:util';
import { renderRows, runSingleNode, writeJson } from './single-node.ts';

const SUITES = 'single-node, ycsb, replicated, rebalance, plot';
const sub = process.argv[2];

const SINGLE_NODE_USAGE = `usage: npm run bench -- single-node [options]
  KeyVa get/put (unary and streamed) beside a grpc-js echo service and raw RocksDB, in one run.
  --duration-ms N   measured time per case (default 5000)
  --warmup-ms N     warm-up per case, not measured (default 1000)
  --concurrency N   requests in flight (default 64)
  --value-bytes N   value size (default 100)
  --keys N          keys loaded before the get cases (default 10000)
  --batch-keys N    keys per batch case (default 100)
  --json FILE       also write the results as JSON
other suites: ${SUITES}`;

if (sub === 'ycsb' || sub === 'plot') {
  const { runSuiteCli } = await import('./ycsb-cli.ts');
  process.exitCode = await runSuiteCli(sub, process.argv.slice(3));
} else if (sub === 'replicated') {
  const { runReplicatedCli } = await import('./replicated-cli.ts');
  process.exitCode = await runReplicatedCli(process.argv.slice(3));
} else if (sub === 'rebalance') {
  const { runRebalanceCli } = await import('./rebalance-cli.ts');
  process.exitCode = await runRebalanceCli(process.argv.slice(3));
} else {
  process.exitCode = await runSingleNodeCli(process.argv.slice(2));
}

async function runSingleNodeCli(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseSingleNodeArgs>;
  try {
    parsed = parseSingleNodeArgs(args);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${SINGLE_NODE_USAGE}\n`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(`${SINGLE_NODE_USAGE}\n`);
    return 0;
  }
  const rows = await runSingleNode(parsed.options);
  process.stdout.write(`\n${renderRows(rows)}\n`);
  if (parsed.json) writeJson(parsed.json, rows, parsed.options);
  return 0;
}

function parseSingleNodeArgs(args: string[]) {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '64' },
      'value-bytes': { type: 'string', default: '100' },
      keys: { type: 'string', default: '10000' },
      'batch-keys': { type: 'string', default: '100' },
      json: { type: 'string' },
    },
  });
  if (values.help) return 'help' as const;
  const suite = positionals[0] ?? 'single-node';
  if (suite !== 'single-node') throw new Error(`unknown suite '${suite}'; available: ${SUITES}`);
  const int = (name: keyof typeof values, min: number): number => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got '${values[name]}')`);
    return n;
  };
  const options = {
    durationMs: int('duration-ms', 1),
    warmupMs: int('warmup-ms', 0),
    concurrency: int('concurrency', 1),
    valueBytes: int('value-bytes', 0),
    keys: int('keys', 1),
    batchKeys: int('batch-keys', 1),
  };
  return { options, json: values.json };
}
