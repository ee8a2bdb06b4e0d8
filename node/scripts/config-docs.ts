/** Renders the settings table of docs/configuration.md from the node's zod schema (`--write` updates it). */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { replaceSection, section } from '../../scripts/doc-sections.ts';
import { configDocs } from '../src/config/config.ts';

export const DOC_PATH = resolve(import.meta.dirname, '..', '..', 'docs', 'configuration.md');
export const SECTION = 'config-table';

export function renderConfigTable(): string {
  const rows = configDocs().map((d) => `| \`${d.flag}\` | \`${d.env}\` | \`${d.key}\` | ${d.default} | ${d.description} |`);
  return section(
    SECTION,
    'node/scripts/config-docs.ts',
    ['| flag | environment | file key | default | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n'),
  );
}

if (import.meta.main && process.argv.includes('--write')) {
  writeFileSync(DOC_PATH, replaceSection(readFileSync(DOC_PATH, 'utf8'), SECTION, renderConfigTable()));
  console.log(`updated ${DOC_PATH}`);
}
