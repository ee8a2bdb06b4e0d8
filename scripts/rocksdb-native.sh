#!/usr/bin/env bash
# Builds KeyVa's build of the RocksDB binding (@nxtedition/rocksdb from its npm source, plus the
# patches in node/native/rocksdb: SST export and ingestion for snapshots, ADR 0013) and installs
# it where the binding loads it first (node_modules/@nxtedition/rocksdb/build/Release), so every
# `require('@nxtedition/rocksdb')` in the project uses it. Cached under ~/.cache/keyva:
# - the compiled RocksDB library (the slow part, ~25 min on 2 cores) in build/rocksdb-<version>-<build.patch hash>,
#   reused when only binding.patch changes (make recompiles binding.cc alone);
# - the finished addon in rocksdb/<version>-<hash of both patches and this script>/leveldown.node.
# Needs a C++ toolchain (g++, make, python3) and the zstd headers (Debian: libzstd-dev, installed
# here with apt-get when missing and this runs as root). Without the build the node still runs
# on the published binding, with snapshots streamed as rows (`keyva node` logs which one).
#   bash scripts/rocksdb-native.sh           build if needed, install, print the addon's path
#   bash scripts/rocksdb-native.sh --check   exit 0 if the installed addon is this build
#   bash scripts/rocksdb-native.sh --cached  install it only if already built (fast; ensure-deps.sh)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
pkg="node_modules/@nxtedition/rocksdb"
patches="node/native/rocksdb"
[ -f "$pkg/package.json" ] || { echo "rocksdb-native: $pkg is missing: run npm ci first" >&2; exit 1; }
version="$(node -p "require('./$pkg/package.json').version")"
build_key="$(cat "$patches/build.patch" | sha256sum | cut -c1-12)"
addon_key="$(cat "$patches/build.patch" "$patches/binding.patch" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)"
cache="${KEYVA_CACHE_DIR:-$HOME/.cache/keyva}"
addon="$cache/rocksdb/$version-$addon_key/leveldown.node"
target="$pkg/build/Release/leveldown.node"

if [ "${1:-}" = "--check" ]; then
  [ -f "$addon" ] && cmp -s "$addon" "$target"
  exit
fi
install_addon() {
  if ! cmp -s "$addon" "$target"; then
    mkdir -p "$(dirname "$target")"
    cp "$addon" "$target.tmp.$$"
    mv "$target.tmp.$$" "$target"
  fi
}
if [ "${1:-}" = "--cached" ]; then
  [ ! -f "$addon" ] || install_addon
  exit 0
fi

mkdir -p "$cache/locks"
exec 9>"$cache/locks/rocksdb-native.lock"
flock 9

if [ ! -f "$addon" ]; then
  if [ ! -f /usr/include/zstd.h ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "rocksdb-native: installing libzstd-dev (apt-get)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q libzstd-dev >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libzstd-dev >&2; }
    else
      echo "rocksdb-native: the zstd headers are missing: install libzstd-dev (Debian/Ubuntu) or zstd-devel, then run again" >&2
      exit 1
    fi
  fi
  for tool in g++ make python3; do
    command -v "$tool" >/dev/null || { echo "rocksdb-native: $tool is missing (needed to build the RocksDB binding)" >&2; exit 1; }
  done
  src="$cache/build/rocksdb-$version-$build_key"
  if [ ! -f "$src/.configured" ]; then
    rm -rf "$src"
    mkdir -p "$src/node_modules"
    # The package source without its prebuilds; the headers-only napi-macros beside it.
    (cd "$pkg" && tar --exclude=./prebuilds --exclude=./prebuilds.zip --exclude=./build -cf - .) | (cd "$src" && tar -xf -)
    cp -r node_modules/napi-macros "$src/node_modules/"
    cp "$src/binding.cc" "$src/binding.cc.orig"
    (cd "$src" && patch -s -p1 < "$root/$patches/build.patch")
    # Node's headers from the system when they are there (Debian's nodejs-dev: /usr; the official
    # node images: /usr/local), else node-gyp downloads them.
    nodedir=()
    for prefix in /usr /usr/local; do
      [ ${#nodedir[@]} -eq 0 ] && [ -f "$prefix/include/node/node_api.h" ] && nodedir=(--nodedir="$prefix")
    done
    (cd "$src" && node "$root/node_modules/node-gyp/bin/node-gyp.js" configure "${nodedir[@]}" >"$src/configure.log" 2>&1) ||
      { tail -20 "$src/configure.log" >&2; echo "rocksdb-native: node-gyp configure failed" >&2; exit 1; }
    touch "$src/.configured"
  fi
  # binding.cc from the pristine copy plus binding.patch (only a changed file is recompiled).
  cp "$src/binding.cc.orig" "$src/binding.cc.new"
  (cd "$src" && patch -s -p1 binding.cc.new < "$root/$patches/binding.patch")
  cmp -s "$src/binding.cc.new" "$src/binding.cc" || mv "$src/binding.cc.new" "$src/binding.cc"
  rm -f "$src/binding.cc.new"
  echo "rocksdb-native: building the RocksDB binding $version with KeyVa's patches (first time ~25 min on 2 cores; cached in $cache)" >&2
  start=$(date +%s)
  (cd "$src" && nice -n 10 node "$root/node_modules/node-gyp/bin/node-gyp.js" build -j "$(nproc)" >"$src/build.log" 2>&1) ||
    { tail -40 "$src/build.log" >&2; echo "rocksdb-native: build failed (log: $src/build.log)" >&2; exit 1; }
  echo "rocksdb-native: built in $(($(date +%s) - start)) s" >&2
  mkdir -p "$(dirname "$addon")"
  cp "$src/build/Release/leveldown.node" "$addon.tmp"
  mv "$addon.tmp" "$addon"
  # Older builds (other patches or versions) are not used again.
  for old in "$cache"/rocksdb/*/ "$cache"/build/rocksdb-*/; do
    case "$old" in "$(dirname "$addon")/" | "$src/") ;; *) rm -rf "$old" ;; esac
  done
fi

install_addon
echo "$addon"
