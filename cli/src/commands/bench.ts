/**
 * `keyva bench <suite> [options]`: runs the benchmark suites of bench/ (single-node, ycsb,
 * replicated, rebalance, plot) in a child process with the same Node, passing the arguments
 * through. The suites live in the bench workspace (a source checkout), not in the CLI, so the
 * CLI stays lean.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const BENCH_MAIN = resolve(import.meta.dirname, '..', '..', '..', 'bench', 'src', 'main.ts');

export const BENCH_HELP = `Suites:
  single-node   KeyVa get/put beside a grpc-js echo server and raw RocksDB
  ycsb          YCSB workloads A-F against KeyVa, etcd, Redis and the ceilings (keyva bench ycsb --help)
  replicated    KeyVa 3 nodes RF 3 against etcd 3 members: puts and linearizable gets (keyva bench replicated --help)
  rebalance     a 4th node joins a loaded 3-node cluster under load: p99 and move rate vs the loopback/disk ceiling (keyva bench rebalance --help)
  plot          SVG plots from a ycsb JSON report: keyva bench plot <report.json> [--out dir]

Example:
  keyva bench ycsb --workloads A,B,C --duration-ms 5000 --json bench/results/ycsb.json --plots bench/results/ycsb
See docs/benchmarks.md.`;

export async function runBench(args: readonly string[]): Promise<number> {
  if (!existsSync(BENCH_MAIN)) {
    process.stderr.write(`keyva bench needs the bench/ workspace of a KeyVa source checkout (looked for ${BENCH_MAIN})\n`);
    return 2;
  }
  const child = spawn(process.execPath, [BENCH_MAIN, ...args], { stdio: 'inherit' });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((res) => {
    child.once('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      res(code ?? (signal ? 128 + 2 : 1));
    });
  });
}
