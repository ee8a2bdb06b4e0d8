/**
 * Prints the plain closing line CI reads ("vitest: N passed, N failed, N skipped") from
 * vitest's JSON report. Usage: node scripts/test-summary.ts .vitest-results/results.json
 */
import { existsSync, readFileSync } from 'node:fs';

const path = process.argv[2] ?? '.vitest-results/results.json';
if (!existsSync(path)) {
  console.log('vitest: 0 passed, 1 failed (no test report was written)');
  process.exit(1);
}
const r = JSON.parse(readFileSync(path, 'utf8')) as {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { status: string; assertionResults: { status: string }[] }[];
};
// A file that failed without any failed test (it did not load, or a hook threw) counts once; a
// failed test is not counted again for its describe block and file.
const brokenFiles = r.testResults.filter((f) => f.status === 'failed' && !f.assertionResults.some((a) => a.status === 'failed')).length;
const failed = r.numFailedTests + brokenFiles;
console.log(`vitest: ${r.numPassedTests} passed, ${failed} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
