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
  numFailedTestSuites: number;
};
const failed = r.numFailedTests + r.numFailedTestSuites;
console.log(`vitest: ${r.numPassedTests} passed, ${failed} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
