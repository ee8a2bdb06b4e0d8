/**
 * Background threads at a lower CPU priority (ADR 0016): when the cores are saturated, work no
 * client waits for (RocksDB compactions, snapshot exports and installs, replica digests) yields to
 * the threads that serve requests (event loop, writer thread, RocksDB flushes).
 *
 * Linux keeps a nice value per thread: `setpriority(PRIO_PROCESS, tid)` changes one thread, and
 * `os.setPriority(nice)` (pid 0) changes the calling thread only. Raising a nice value needs no
 * privilege; lowering it does, so a thread that is already nicer than asked is left alone. Other
 * platforms have no per-thread nice value: there these are no-ops.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** RocksDB's compaction pools (`rocksdb:low`, `rocksdb:bottom`); `rocksdb:high` flushes, which writes may wait for. */
export const ROCKSDB_BACKGROUND_THREAD = /^rocksdb:(low|bottom)/;

/** The nice value of background threads: a tenth of a normal thread's CPU share under contention (weights 110 / 1024). */
export const BACKGROUND_NICE_DEFAULT = 10;

const TASKS = '/proc/self/task';

/**
 * Gives every thread of this process whose name matches `name` at least nice value `nice`.
 * Returns how many threads were changed. A thread that exits meanwhile is skipped.
 */
export function lowerThreadsNamed(name: RegExp, nice: number): number {
  if (process.platform !== 'linux' || nice <= 0) return 0;
  let tids: string[];
  try {
    tids = readdirSync(TASKS);
  } catch {
    return 0;
  }
  let changed = 0;
  for (const tid of tids) {
    let comm: string;
    try {
      comm = readFileSync(`${TASKS}/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread exited after the listing
    }
    if (name.test(comm) && lowerThread(Number(tid), nice)) changed++;
  }
  return changed;
}

/** Gives the calling thread at least nice value `nice` (e.g. from a worker thread's entry point). */
export function lowerThisThread(nice: number): void {
  if (process.platform !== 'linux' || nice <= 0) return;
  lowerThread(0, nice); // 0: the calling thread
}

/** Raises thread `tid`'s nice value to `nice` if it is lower; whether it did. */
function lowerThread(tid: number, nice: number): boolean {
  try {
    if (getPriority(tid) >= nice) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false; // the thread exited, or not permitted (some sandboxes): it keeps its priority
  }
}
