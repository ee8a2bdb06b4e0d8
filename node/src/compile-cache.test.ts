import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { compileCacheDir } from './compile-cache.ts';

const MAIN = resolve(import.meta.dirname, 'main.ts');
const dirs: string[] = [];

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Every file below `dir` (the cache keeps one folder per Node version). */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** The environment of a node process with a fresh home and no compile cache settings of the caller's. */
function envWith(over: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...over };
  for (const k of ['NODE_COMPILE_CACHE', 'NODE_DISABLE_COMPILE_CACHE', 'XDG_CACHE_HOME'] as const) if (!(k in over)) delete env[k];
  return env;
}

describe('the node process compile cache', () => {
  it('lives in NODE_COMPILE_CACHE, else XDG_CACHE_HOME/keyva, else ~/.cache/keyva', () => {
    expect(compileCacheDir({ NODE_COMPILE_CACHE: '/c', XDG_CACHE_HOME: '/x' }, '/home/u')).toBe('/c');
    expect(compileCacheDir({ XDG_CACHE_HOME: '/x' }, '/home/u')).toBe(join('/x', 'keyva', 'compile-cache'));
    expect(compileCacheDir({ NODE_COMPILE_CACHE: '', XDG_CACHE_HOME: '' }, '/home/u')).toBe(join('/home/u', '.cache', 'keyva', 'compile-cache'));
  });

  it('a node process fills it before loading its modules, and NODE_DISABLE_COMPILE_CACHE turns it off', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keyva-cc-'));
    dirs.push(home);
    const run = promisify(execFile);
    // --help loads every module of the node (main.ts imports them before it reads its flags).
    await run(process.execPath, [MAIN, '--help'], { env: envWith({ HOME: home, NODE_DISABLE_COMPILE_CACHE: '1' }) });
    await expect(readdir(join(home, '.cache', 'keyva', 'compile-cache'))).rejects.toMatchObject({ code: 'ENOENT' });

    const { stdout } = await run(process.execPath, [MAIN, '--help'], { env: envWith({ HOME: home }) });
    expect(stdout).toContain('keyva-node: one KeyVa storage node.');
    const cached = await filesUnder(join(home, '.cache', 'keyva', 'compile-cache'));
    // The node's own modules, not only main.ts and compile-cache.ts: the rest is loaded after the cache is on.
    expect(cached.length).toBeGreaterThan(50);
  }, 60_000);
});
