/** Resident memory of another process (Linux /proc/<pid>/status VmRSS), sampled during a run. */
import { readFileSync } from 'node:fs';

export function processRssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export interface ProcessRss {
  readonly pid: number;
  /** Largest sample of this process's RSS. */
  readonly maxBytes: number;
  /** Its last sample (NaN once the process is gone). */
  readonly endBytes: number;
}

/**
 * Samples the RSS of `pids` every `intervalMs` until stopped: the summed peak and last sample,
 * plus each process's own peak and last sample (one node of a cluster each).
 */
export function sampleRssByProcess(
  pids: readonly number[],
  intervalMs = 200,
): { stop(): { maxBytes: number; endBytes: number; samples: number; perProcess: ProcessRss[] } } {
  let maxBytes = 0;
  let endBytes = 0;
  let samples = 0;
  const max = pids.map(() => 0);
  const end = pids.map(() => Number.NaN);
  const take = () => {
    if (pids.length === 0) return;
    let sum = 0;
    for (const [i, pid] of pids.entries()) {
      const v = processRssBytes(pid);
      end[i] = v;
      if (v > (max[i] as number)) max[i] = v;
      sum += v || 0;
    }
    samples++;
    endBytes = sum;
    if (sum > maxBytes) maxBytes = sum;
  };
  take();
  const t = setInterval(take, intervalMs);
  return {
    stop: () => {
      clearInterval(t);
      take();
      return { maxBytes, endBytes, samples, perProcess: pids.map((pid, i) => ({ pid, maxBytes: max[i] as number, endBytes: end[i] as number })) };
    },
  };
}

/** CPU seconds all processes of the machine have been busy so far (/proc/stat, user+nice+system+irq+softirq+steal). */
export function machineBusyCpuSec(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The summed peak and last sample only (`sampleRssByProcess` without the per-process figures). */
export function sampleRss(pids: readonly number[], intervalMs = 200): { stop(): { maxBytes: number; endBytes: number; samples: number } } {
  const s = sampleRssByProcess(pids, intervalMs);
  return {
    stop: () => {
      const { maxBytes, endBytes, samples } = s.stop();
      return { maxBytes, endBytes, samples };
    },
  };
}
