#!/usr/bin/env bash
# The whole test suite (README quick start, and what .ci/run calls): installs what it needs on a
# fresh machine, checks generated code, types, lint and pure-core imports, then runs vitest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/ensure-deps.sh
export PATH="$root/node_modules/.bin:$PATH"
echo "== node $(node --version)"
echo "== RocksDB binding with KeyVa's SST calls (built from source once, then cached)"
bash scripts/rocksdb-native.sh
echo "== generated code is up to date"
node proto/scripts/gen.ts --check
node operator/scripts/gen-crds.ts --check
echo "== typecheck"
tsc -p tsconfig.json
echo "== lint"
biome check --diagnostic-level=error .
node scripts/check-pure-cores.ts
echo "== linearizability checker (porcupine, Go; cached by source hash)"
node e2e/src/lincheck/lincheck.ts
echo "== Kubernetes tools for the operator tests (built from Go modules once, then cached)"
for tool in kube-apiserver etcd helm kubectl; do bash scripts/go-tools.sh "$tool" >/dev/null; done
echo "== tests"
rm -rf .vitest-results
status=0
vitest run --reporter=default --reporter=json --outputFile.json=.vitest-results/results.json "$@" || status=$?
node scripts/test-summary.ts .vitest-results/results.json || true
exit "$status"
