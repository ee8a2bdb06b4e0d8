#!/usr/bin/env bash
# Installs the project's npm dependencies (Node 24 itself included, as the npm package `node`)
# when node_modules is missing or older than package-lock.json, and KeyVa's build of the RocksDB
# binding when one is cached (scripts/rocksdb-native.sh builds it; `npm test` does). Safe to run repeatedly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamp=node_modules/.package-lock.json
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "keyva: installing dependencies (npm ci; this also fetches Node 24 into node_modules)..." >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
PATH="$root/node_modules/.bin:$PATH" bash scripts/rocksdb-native.sh --cached
