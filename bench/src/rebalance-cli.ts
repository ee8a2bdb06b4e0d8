/** The `rebalance` suite's command line: `npm run bench -- rebalance [options]`. */
import { parseArgs } from 'node:util';
import { REBALANCE_DEFAULTS, type RebalanceOptions, runRebalance } from './rebalance.ts';
import { renderRebalanceMarkdown } from './rebalance-report.ts';
import { writeReports } from './report-files.ts';

const d = REBALANCE_DEFAULTS;

export const REBALANCE_USAGE = `npm run bench -- rebalance [options]     (or: keyva bench rebalance [options])

KeyVa 3 nodes RF 3 (keyva dev --nodes 3: real node processes, the placement control loop) loaded
with --data-mib of records; a steady client load (streamed SDK) measured over a steady-state
window; then a 4th node is added and the control loop moves its ring share onto it (learner
first) while the load continues. Prints client p50/p99 during the move vs steady state, bytes
moved and the move rate, the loopback/disk ceiling measured in the same run, and pass/fail for
the targets (p99 during the move <= 2x steady; move rate >= 0.5x the ceiling).

  --data-mib <n>          keys + values loaded, MiB (default ${d.dataMiB})
  --value-size <bytes>    value size (default ${d.valueSize})
  --partitions <n>        partitions, one Raft group each (default ${d.partitions})
  --concurrency <n>       operations in flight of the steady load (default ${d.concurrency})
  --read-fraction <f>     share of reads, the rest updates (default ${d.readFraction})
  --load-batch <n>        records per load write (default ${d.loadBatch}: one Raft entry each, as live
                          traffic; a learner is sent a streamed snapshot only once its partition's
                          log was compacted, after 10,000 applied entries)
  --load-concurrency <n>  load writes in flight (default ${d.loadConcurrency})
  --warmup-ms <ms>        unmeasured warm-up of the steady load (default ${d.warmupMs})
  --steady-ms <ms>        steady-state window (default ${d.steadyMs})
  --after-ms <ms>         the same load measured again on the settled 4-node cluster, not a
                          target: the move's own cost against four processes sharing the cores
                          (default ${d.afterMs}; 0 = skip)
  --move-timeout-ms <ms>  bound on the move (default ${d.moveTimeoutMs})
  --verify-written-max <n>   keys written by the load read back at the end, at most (default ${d.verifyWrittenMax})
  --verify-loaded <n>     other loaded records read back (default ${d.verifyLoadedSample})
  --sample-ms <ms>        status/metrics sampling period, the same in every phase (default ${d.sampleMs})
  --ceiling-min-mib <n>   the ceiling streams the bytes moved, at least this much (default ${d.ceilingMinMiB})
  --snapshot-mib-per-sec <n>  each node's snapshot send limit, MiB/s (node flag --snapshot-bytes-per-sec,
                          passed as KEYVA_SNAPSHOT_BYTES_PER_SEC; default ${d.snapshotMiBPerSec}, the node's default)
  --snapshot-format <f>   how nodes send snapshots: auto (SST files when both nodes have KeyVa's
                          build of the RocksDB binding, ADR 0013) or rows (default ${d.snapshotFormat})
  --snapshot-transport <t>  how SST files travel: socket (the peers' snapshot sockets, ADR 0014)
                          or grpc (default ${d.snapshotTransport})
  --seed <n>              PRNG seed (default ${d.seed})
  --memory                memory engine (not durable; for a quick look only)
  --json <file>           write the machine-readable report
  --markdown <file>       write the summary (markdown)

The snapshot stream rate compared with the ceiling is the snapshot bytes received over the
time during which a transfer was being received (the nodes' keyva_snapshot_receiving_seconds).
`;

function num(v: string | undefined, name: string, min: number, integer = true): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isSafeInteger(n)))
    throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${v}'`);
  return n;
}

export function parseRebalanceArgs(args: readonly string[]): { options: RebalanceOptions; json?: string; markdown?: string; help: boolean } {
  const { values } = parseArgs({
    args: [...args],
    allowPositionals: false,
    options: {
      'data-mib': { type: 'string', default: String(d.dataMiB) },
      'value-size': { type: 'string', default: String(d.valueSize) },
      partitions: { type: 'string', default: String(d.partitions) },
      concurrency: { type: 'string', default: String(d.concurrency) },
      'read-fraction': { type: 'string', default: String(d.readFraction) },
      'load-batch': { type: 'string', default: String(d.loadBatch) },
      'load-concurrency': { type: 'string', default: String(d.loadConcurrency) },
      'warmup-ms': { type: 'string', default: String(d.warmupMs) },
      'steady-ms': { type: 'string', default: String(d.steadyMs) },
      'after-ms': { type: 'string', default: String(d.afterMs) },
      'move-timeout-ms': { type: 'string', default: String(d.moveTimeoutMs) },
      'verify-written-max': { type: 'string', default: String(d.verifyWrittenMax) },
      'verify-loaded': { type: 'string', default: String(d.verifyLoadedSample) },
      'sample-ms': { type: 'string', default: String(d.sampleMs) },
      'ceiling-min-mib': { type: 'string', default: String(d.ceilingMinMiB) },
      'snapshot-mib-per-sec': { type: 'string', default: String(d.snapshotMiBPerSec) },
      'snapshot-format': { type: 'string', default: d.snapshotFormat },
      'snapshot-transport': { type: 'string', default: d.snapshotTransport },
      seed: { type: 'string', default: String(d.seed) },
      memory: { type: 'boolean', default: false },
      json: { type: 'string' },
      markdown: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const readFraction = num(values['read-fraction'], 'read-fraction', 0, false);
  if (readFraction > 1) throw new Error(`--read-fraction must be between 0 and 1, got '${values['read-fraction']}'`);
  const format = values['snapshot-format'];
  if (format !== 'auto' && format !== 'rows') throw new Error(`--snapshot-format must be auto or rows, got '${format}'`);
  const transport = values['snapshot-transport'];
  if (transport !== 'socket' && transport !== 'grpc') throw new Error(`--snapshot-transport must be socket or grpc, got '${transport}'`);
  const options: RebalanceOptions = {
    dataMiB: num(values['data-mib'], 'data-mib', 0.01, false),
    valueSize: num(values['value-size'], 'value-size', 32),
    partitions: num(values.partitions, 'partitions', 1),
    concurrency: num(values.concurrency, 'concurrency', 1),
    readFraction,
    loadBatch: num(values['load-batch'], 'load-batch', 1),
    loadConcurrency: num(values['load-concurrency'], 'load-concurrency', 1),
    warmupMs: num(values['warmup-ms'], 'warmup-ms', 0),
    steadyMs: num(values['steady-ms'], 'steady-ms', 100),
    afterMs: num(values['after-ms'], 'after-ms', 0),
    moveTimeoutMs: num(values['move-timeout-ms'], 'move-timeout-ms', 1000),
    verifyWrittenMax: num(values['verify-written-max'], 'verify-written-max', 0),
    verifyLoadedSample: num(values['verify-loaded'], 'verify-loaded', 0),
    sampleMs: num(values['sample-ms'], 'sample-ms', 50),
    ceilingMinMiB: num(values['ceiling-min-mib'], 'ceiling-min-mib', 1),
    snapshotMiBPerSec: num(values['snapshot-mib-per-sec'], 'snapshot-mib-per-sec', 1),
    snapshotFormat: format,
    snapshotTransport: transport,
    seed: num(values.seed, 'seed', 0),
    memory: values.memory ?? false,
  };
  return { options, json: values.json, markdown: values.markdown, help: values.help ?? false };
}

export async function runRebalanceCli(args: readonly string[]): Promise<number> {
  let a: ReturnType<typeof parseRebalanceArgs>;
  try {
    a = parseRebalanceArgs(args);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${REBALANCE_USAGE}`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(REBALANCE_USAGE);
    return 0;
  }
  try {
    const report = await runRebalance(a.options);
    writeReports(report, renderRebalanceMarkdown(report), a);
    return report.targets.every((t) => t.pass) ? 0 : 1;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 2;
  }
}
