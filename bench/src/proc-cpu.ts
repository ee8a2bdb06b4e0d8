/** CPU seconds used so far by another process or some of its threads (Linux /proc), to show server CPU beside client CPU. */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SEC = 100;

/** utime + stime of a /proc `stat` file, in seconds (NaN when unreadable). */
function statCpuSec(path: string): number {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC;
  } catch {
    return Number.NaN;
  }
}

export function processCpuSec(pid: number): number {
  return statCpuSec(`/proc/${pid}/stat`);
}

/** CPU seconds of the threads of process `pid` whose name starts with `namePrefix` (e.g. RocksDB's `rocksdb:`); NaN without /proc. */
export function threadsCpuSec(pid: number, namePrefix: string): number {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return Number.NaN;
  }
  let sum = 0;
  for (const tid of tids) {
    let name: string;
    try {
      name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread ended meanwhile
    }
    if (!name.startsWith(namePrefix)) continue;
    const s = statCpuSec(`/proc/${pid}/task/${tid}/stat`);
    if (!Number.isNaN(s)) sum += s;
  }
  return sum;
}
