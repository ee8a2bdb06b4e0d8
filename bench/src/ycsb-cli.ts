/** The `ycsb` and `plot` suites' command lines. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { writePlots } from './plot.ts';
import { writeReports } from './report-files.ts';
import { runYcsb, stopRunningTargets, type YcsbReport } from './ycsb.ts';
import { parseYcsbArgs, YCSB_USAGE } from './ycsb-main-args.ts';
import { renderMarkdown } from './ycsb-report.ts';
import { runYcsbScaling } from './ycsb-scaling.ts';

export async function runSuiteCli(suite: 'ycsb' | 'plot', args: readonly string[]): Promise<number> {
  try {
    if (suite === 'plot') {
      const { positionals, values } = parseArgs({ args: [...args], allowPositionals: true, options: { out: { type: 'string' } } });
      const file = positionals[0];
      if (!file) {
        process.stderr.write('usage: npm run bench -- plot <report.json> [--out <dir>]   (default dir: the report path without .json)\n');
        return 2;
      }
      const report = JSON.parse(readFileSync(file, 'utf8')) as YcsbReport;
      const out = values.out ?? file.replace(/\.json$/, '');
      for (const f of writePlots(report, out)) process.stderr.write(`wrote ${f}\n`);
      return 0;
    }
    const a = parseYcsbArgs(args);
    if (a.help) {
      process.stdout.write(YCSB_USAGE);
      return 0;
    }
    process.once('SIGINT', () => {
      process.stderr.write('\ninterrupted: stopping the servers\n');
      void stopRunningTargets().finally(() => process.exit(130));
    });
    const report = a.options.scaling === undefined ? await runYcsb(a.options) : await runYcsbScaling(a.options);
    writeReports(report, renderMarkdown(report), a);
    if (a.plots && report.results.length > 0) for (const f of writePlots(report, a.plots)) process.stderr.write(`wrote ${f}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 2;
  }
}
