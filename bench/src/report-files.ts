/**
 * Writes a benchmark's results where its CLI was asked to (`--json`, `--markdown`), creating
 * folders as needed, and prints the markdown tables to stdout. One helper for every suite.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeReports(report: unknown, markdown: string, out: { readonly json?: string | undefined; readonly markdown?: string | undefined }): void {
  process.stdout.write(`\n${markdown}\n`);
  if (out.json) {
    mkdirSync(dirname(out.json), { recursive: true });
    writeFileSync(out.json, `${JSON.stringify(report, null, 1)}\n`);
    process.stderr.write(`wrote ${out.json}\n`);
  }
  if (out.markdown) {
    mkdirSync(dirname(out.markdown), { recursive: true });
    writeFileSync(out.markdown, `${markdown}\n`);
  }
}
