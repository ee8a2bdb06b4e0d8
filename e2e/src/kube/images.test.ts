/**
 * No Docker engine here: check what can be checked without one. Every COPY source of the
 * Dockerfile exists and survives .dockerignore; every npm workspace is installed in the image;
 * both targets start the right entry point; skaffold.yaml builds both images and deploys the chart.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: string;
}

/** Dockerfile instructions (continuations joined, comments dropped), with their stage name. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = '';
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = (m[1] as string).toUpperCase();
    const args = m[2] as string;
    if (op === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? '';
    out.push({ op, args, stage });
  }
  return out;
}

/** A minimal .dockerignore matcher (patterns with *, **, and ! exceptions; last match wins). */
function ignored(path: string, patterns: string[]): boolean {
  const toRe = (p: string) =>
    new RegExp(
      `^${p
        .replace(/\/+$/, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '%DIRS%')
        .replace(/\*\*/g, '%ANY%')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replaceAll('%DIRS%', '(?:.*/)?')
        .replaceAll('%ANY%', '.*')}$`,
    );
  const parts = path.replace(/\/+$/, '').split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const re = toRe(neg ? raw.slice(1) : raw);
    if (prefixes.some((p) => re.test(p))) excluded = !neg;
  }
  return excluded;
}

const dockerfile = instructions(read('Dockerfile'));
const dockerignore = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

describe('Dockerfile', () => {
  const copies = dockerfile.filter((i) => i.op === 'COPY' && !/--from=/.test(i.args));

  it('every COPY source exists in the repository and is not dropped by .dockerignore', () => {
    expect(copies.length).toBeGreaterThan(5);
    for (const c of copies) {
      const words = c.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      for (const src of words.slice(0, -1)) {
        expect(existsSync(join(ROOT, src)), `${src} (${c.stage})`).toBe(true);
        expect(ignored(src, dockerignore), `${src} is excluded by .dockerignore`).toBe(false);
        if (src.endsWith('/')) expect(statSync(join(ROOT, src)).isDirectory()).toBe(true);
      }
    }
  });

  it('.dockerignore keeps node_modules and tests out, and the entry points in', () => {
    for (const p of ['node_modules', 'node/node_modules', 'operator/src/reconcile/reconcile.test.ts', 'docs', 'charts', '.git'])
      expect(ignored(p, dockerignore), p).toBe(true);
    for (const p of ['node/src/main.ts', 'operator/src/main.ts', 'proto/keyva/v1/kv.proto', 'package-lock.json'])
      expect(ignored(p, dockerignore), p).toBe(false);
  });

  it('installs every npm workspace (npm ci needs each package.json) with production dependencies only', () => {
    const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
    const depsCopies = copies.filter((c) => c.stage === 'deps').map((c) => c.args.split(/\s+/)[0]);
    for (const ws of workspaces) expect(depsCopies, `workspace ${ws}`).toContain(`${ws}/package.json`);
    expect(dockerfile.find((i) => i.op === 'RUN' && i.stage === 'deps')?.args).toMatch(/npm ci --omit=dev/);
  });

  it('has a node and an operator target on node:24-slim, running as a non-root user', () => {
    expect(dockerfile.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='))?.args).toBe('NODE_IMAGE=node:24-slim');
    const entry = (stage: string) => dockerfile.filter((i) => i.stage === stage && i.op === 'ENTRYPOINT').pop()?.args;
    expect(JSON.parse(entry('node') as string)).toEqual(['node', 'node/src/main.ts']);
    expect(JSON.parse(entry('operator') as string)).toEqual(['node', 'operator/src/main.ts']);
    for (const f of ['node/src/main.ts', 'operator/src/main.ts']) expect(existsSync(join(ROOT, f))).toBe(true);
    for (const stage of ['node', 'operator']) {
      const users = dockerfile.filter((i) => (i.stage === stage || i.stage === 'runtime') && i.op === 'USER');
      expect(users.pop()?.args, stage).toBe('1000:1000');
    }
  });
  it('the node image carries the RocksDB binding built with the KeyVa patches (SST snapshots, ADR 0013); the operator image needs none', () => {
    // Where the build script installs the addon (the binding loads build/Release first).
    const target = /^target="([^"]+)"$/m.exec(read('scripts/rocksdb-native.sh'))?.[1];
    expect(target).toBe('$pkg/build/Release/leveldown.node');
    const addon = '/app/node_modules/@nxtedition/rocksdb/build/Release/leveldown.node';
    const builds = dockerfile.filter((i) => i.op === 'RUN' && /bash scripts\/rocksdb-native\.sh/.test(i.args));
    expect(builds).toHaveLength(1);
    const stage = builds[0]?.stage as string;
    const runs = dockerfile.filter((i) => i.stage === stage && i.op === 'RUN').map((i) => i.args);
    // Its toolchain (what the script checks for), and node-gyp (a development dependency) installed first.
    for (const pkg of ['g++', 'make', 'python3', 'patch', 'libzstd-dev']) expect(runs.join(' '), pkg).toContain(` ${pkg}`);
    expect(runs.findIndex((r) => /^npm ci(?!.*--omit=dev)/.test(r))).toBeLessThan(runs.findIndex((r) => r.includes('rocksdb-native.sh')));
    const copied = (st: string) =>
      dockerfile.filter((i) => i.stage === st && i.op === 'COPY' && i.args.startsWith(`--from=${stage} `)).map((i) => i.args.split(/\s+/).slice(1));
    expect(copied('node')).toEqual([[addon, addon]]);
    expect(copied('operator')).toEqual([]);
  });
});

describe('skaffold.yaml', () => {
  const sk = parse(read('skaffold.yaml')) as {
    apiVersion: string;
    kind: string;
    build: { artifacts: { image: string; docker: { dockerfile: string; target: string } }[] };
    deploy: { helm: { releases: { name: string; chartPath: string; namespace: string; setValueTemplates: Record<string, string> }[] } };
  };

  it('is a skaffold v4 Config that builds both images from the Dockerfile targets', () => {
    expect(sk.apiVersion).toMatch(/^skaffold\/v4beta\d+$/);
    expect(sk.kind).toBe('Config');
    const targets = Object.fromEntries(sk.build.artifacts.map((a) => [a.image, a.docker]));
    expect(targets).toEqual({ 'keyva-node': { dockerfile: 'Dockerfile', target: 'node' }, 'keyva-operator': { dockerfile: 'Dockerfile', target: 'operator' } });
    const stages = new Set(dockerfile.filter((i) => i.op === 'FROM').map((i) => i.stage));
    for (const a of sk.build.artifacts) expect(stages.has(a.docker.target)).toBe(true);
  });

  it('deploys the chart with helm, wiring the built images into values the chart has', () => {
    const [rel] = sk.deploy.helm.releases;
    expect(rel?.name).toBe('keyva');
    expect(existsSync(join(ROOT, rel?.chartPath as string, 'Chart.yaml'))).toBe(true);
    expect(rel?.namespace).toBe('keyva-system');
    const values = parse(read('charts/keyva/values.yaml')) as Record<string, Record<string, unknown>>;
    for (const [key, tpl] of Object.entries(rel?.setValueTemplates ?? {})) {
      const path = key.split('.');
      let v: unknown = values;
      for (const p of path) v = (v as Record<string, unknown> | undefined)?.[p];
      expect(v, `values.yaml has ${key}`).not.toBeUndefined();
      for (const m of String(tpl).matchAll(/IMAGE_\w+?_(keyva_\w+)/g)) expect(['keyva_node', 'keyva_operator']).toContain(m[1]);
    }
  });
});
