#!/usr/bin/env node
/** `npm run bench -- <suite> [options]`: KeyVa benchmarks. Suites: single-node. */
import { parseArgs } from 'node:util';
import { renderRows, runSingleNode, writeJson } from './single-node.ts';

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
  process.stderr.write(`unknown suite '${suite}'; available: single-node\n`);
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
