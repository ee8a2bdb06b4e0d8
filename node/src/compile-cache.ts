/**
 * The V8 compile cache of the node process (Node's `module.enableCompileCache`): the type-stripped
 * source and V8 code of every module loaded, kept on disk, so the next start skips parsing and
 * compiling them. A node process loads ~680 modules (a 4 MB cache); loading them took ~1.4 s of CPU
 * uncached and ~0.6 s cached here (ADR 0009, "Moves without stalls, part
 * 2"): a node that joins a busy cluster takes less CPU from the clients' requests.
 *
 * The cache is shared by every node process of the user, not kept in a data dir: a new node
 * (the one joining) has an empty data dir and would gain nothing. Node validates each entry
 * against the source's hash and its own version, so a stale entry is never used. It is an
 * optimisation only: any failure (read-only home, full disk) leaves the process running without it.
 *
 * Where: `$NODE_COMPILE_CACHE` when set (Node's own variable), else `$XDG_CACHE_HOME/keyva/compile-cache`,
 * else `~/.cache/keyva/compile-cache`. `NODE_DISABLE_COMPILE_CACHE=1` turns it off (Node's own switch).
 */
import { constants, enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The compile cache folder for this environment (see the file comment). */
export function compileCacheDir(env: Readonly<Record<string, string | undefined>>, home: string = homedir()): string {
  if (env.NODE_COMPILE_CACHE) return env.NODE_COMPILE_CACHE;
  const cacheHome = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : join(home, '.cache');
  return join(cacheHome, 'keyva', 'compile-cache');
}

export interface CompileCacheResult {
  /** Node's status name: ENABLED, ALREADY_ENABLED, FAILED or DISABLED. */
  readonly status: string;
  readonly directory?: string;
  readonly message?: string;
}

/**
 * Enables the cache for this thread and, through `NODE_COMPILE_CACHE`, for worker threads and
 * child processes started later (the storage engine's writer is a worker). Call it before
 * importing anything large: only modules compiled afterwards use the cache.
 */
export function enableNodeCompileCache(env: Record<string, string | undefined> = process.env): CompileCacheResult {
  const directory = compileCacheDir(env);
  const r = enableCompileCache(directory);
  const names = constants.compileCacheStatus as Record<string, number>;
  const status = Object.keys(names).find((k) => names[k] === r.status) ?? String(r.status);
  if (status === 'ENABLED' || status === 'ALREADY_ENABLED') env.NODE_COMPILE_CACHE = r.directory ?? directory;
  return { status, ...(r.directory === undefined ? {} : { directory: r.directory }), ...(r.message === undefined ? {} : { message: r.message }) };
}
