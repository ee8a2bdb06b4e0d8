/**
 * Renders the error-code table of docs/errors.md from the registry. `--write` rewrites it; the
 * test suite fails when the docs and the registry differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { replaceSection, section } from '../../scripts/doc-sections.ts';
import { ERROR_CODE_LIST, ErrorCodes, GrpcCode } from '../src/errors.ts';

export const DOC_PATH = resolve(import.meta.dirname, '..', '..', 'docs', 'errors.md');
export const SECTION = 'error-table';

const grpcName = (n: number) => Object.entries(GrpcCode).find(([, v]) => v === n)?.[0] ?? String(n);

export function renderTable(): string {
  const rows = ERROR_CODE_LIST.map((code) => {
    const s = ErrorCodes[code];
    return `| \`${code}\` | ${grpcName(s.grpc)} (${s.grpc}) | ${s.http} | ${s.retryable ? 'yes' : 'no'} | ${s.summary} |`;
  });
  return section(
    SECTION,
    'proto/scripts/error-docs.ts',
    ['| code | gRPC status | HTTP | retryable | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n'),
  );
}

if (import.meta.main && process.argv.includes('--write')) {
  writeFileSync(DOC_PATH, replaceSection(readFileSync(DOC_PATH, 'utf8'), SECTION, renderTable()));
  console.log(`updated ${DOC_PATH}`);
}
