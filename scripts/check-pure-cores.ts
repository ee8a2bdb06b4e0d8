/**
 * Keeps the pure cores pure (DESIGN §2): no node: I/O, gRPC, Kubernetes client or native module
 * imports, and no direct clock or randomness. Prints each violation; exits 1 if any.
 * Usage: node scripts/check-pure-cores.ts [root]
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const PURE_CORES = ['node/src/raft', 'operator/src/placement', 'operator/src/reconcile', 'client/src/keyspace'] as const;

const FORBIDDEN_IMPORTS: readonly RegExp[] = [
  /^node:/,
  /^(fs|net|http|http2|os|child_process|worker_threads|dgram|tls)$/,
  /^@grpc\//,
  /^@kubernetes\//,
  /rocksdb/,
];
const FORBIDDEN_CALLS: readonly [RegExp, string][] = [
  [/\bDate\.now\s*\(/, 'Date.now() — inject a clock'],
  [/\bnew Date\s*\(\s*\)/, 'new Date() — inject a clock'],
  [/\bMath\.random\s*\(/, 'Math.random() — inject randomness'],
  [/\bprocess\.env\b/, 'process.env — configuration comes from main.ts'],
  [/\bperformance\.now\s*\(/, 'performance.now() — inject a clock'],
];
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

export function checkSource(text: string): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? '';
    if (FORBIDDEN_IMPORTS.some((re) => re.test(spec))) problems.push(`imports '${spec}'`);
  }
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  for (const [re, why] of FORBIDDEN_CALLS) if (re.test(code)) problems.push(`uses ${why}`);
  return problems;
}

export function checkTree(root: string): string[] {
  const out: string[] = [];
  for (const core of PURE_CORES) {
    const dir = join(root, core);
    if (!existsSync(dir)) continue;
    for (const f of files(dir)) for (const p of checkSource(readFileSync(f, 'utf8'))) out.push(`${relative(root, f)}: ${p}`);
  }
  return out;
}

if (import.meta.main) {
  const root = resolve(process.argv[2] ?? join(import.meta.dirname, '..'));
  const problems = checkTree(root);
  for (const p of problems) console.error(`pure core violation: ${p}`);
  if (problems.length > 0) process.exit(1);
  console.log(`pure cores clean (${PURE_CORES.filter((c) => existsSync(join(root, c))).join(', ')})`);
}
