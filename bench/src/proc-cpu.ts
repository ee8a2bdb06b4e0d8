/** CPU seconds used so far by another process (Linux /proc), to show server CPU beside client CPU. */
import { readFileSync } from 'node:fs';

const TICKS_PER_SEC = 100;

export function processCpuSec(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC;
  } catch {
    return Number.NaN;
  }
}
