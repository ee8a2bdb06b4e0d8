/**
 * Builds (once, cached by source hash under ~/.cache/keyva/bin) and runs the porcupine-based
 * linearizability checker in e2e/lincheck (Go).
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const SRC = resolve(import.meta.dirname, '..', '..', 'lincheck');

export function lincheckBinary(): string {
  const h = createHash('sha256');
  for (const f of ['main.go', 'go.mod', 'go.sum']) h.update(readFileSync(join(SRC, f)));
  const dir = join(homedir(), '.cache', 'keyva', 'bin', `lincheck-${h.digest('hex').slice(0, 12)}`);
  const bin = join(dir, 'lincheck');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('go', ['build', '-o', bin, '.'], { cwd: SRC, stdio: 'inherit', env: { ...process.env, GOFLAGS: '-mod=mod' } });
  }
  return bin;
}

export interface Verdict {
  readonly result: 'Ok' | 'Illegal' | 'Unknown';
  readonly operations: number;
  readonly keys: number;
  readonly seconds: number;
  readonly visualization?: string;
}

export function checkHistory(historyPath: string, vizPath?: string, timeout = '2m'): Promise<Verdict> {
  const args = ['-timeout', timeout, ...(vizPath ? ['-viz', vizPath] : []), historyPath];
  return new Promise((res, rej) => {
    execFile(lincheckBinary(), args, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      if (line.startsWith('{')) return res(JSON.parse(line) as Verdict);
      rej(new Error(`lincheck failed: ${stderr || (err as Error)?.message}`));
    });
  });
}

if (import.meta.main) console.log(lincheckBinary());
