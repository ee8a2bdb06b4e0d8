#!/usr/bin/env node
/**
 * `npm run bench -- <suite> [options]`: KeyVa benchmarks. Suites:
 *   single-node   KeyVa get/put beside grpc-js echo and raw RocksDB (the foundation figures)
 *   ycsb          YCSB workloads A-F against KeyVa, etcd, Redis and the ceilings (`ycsb --help`)
 *   replicated    KeyVa 3 nodes RF 3 against etcd 3 members: puts and linearizable gets (`replicated --help`)
 *   plot          SVG plots from a ycsb JSON report: `plot <report.json> [--out dir]`
 */
import { parseArgs } from 'node:util';
import { renderRows, runSingleNode, writeJson } from './single-node.ts';

const SUITES = 'single-node, ycsb, replicated, plot';
const sub = process.argv[2];

if (sub === 'ycsb' || sub === 'plot') {
  const { runSuiteCli } = await import('./ycsb-cli.ts');
  process.exitCode = await runSuiteCli(sub, process.argv.slice(3));
} else if (sub === 'replicated') {
  const { runReplicatedCli } = await import('./replicated-cli.ts');
  process.exitCode = await runReplicatedCli(process.argv.slice(3));
} else {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '64' },
      'value-bytes': { type: 'string', default: '100' },
      keys: { type: 'string', default: '10000' },
      'batch-keys': { type: 'string', default: '100' },
      json: { type: 'string' },
    },
  });

  const suite = positionals[0] ?? 'single-node';
  if (suite !== 'single-node') {
    process.stderr.write(`unknown suite '${suite}'; available: ${SUITES}\n`);
    process.exit(2);
  }
  const o = {
    durationMs: Number(values['duration-ms']),
    warmupMs: Number(values['warmup-ms']),
    concurrency: Number(values.concurrency),
    valueBytes: Number(values['value-bytes']),
    keys: Number(values.keys),
    batchKeys: Number(values['batch-keys']),
  };
  const rows = await runSingleNode(o);
  process.stdout.write(`\n${renderRows(rows)}\n`);
  if (values.json) writeJson(values.json, rows, o);
}
