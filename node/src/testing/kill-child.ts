/**
 * The kill -9 tests' child process: runs a TypeScript `script` with `args` in a Node process,
 * hands the fields of each `ack <field> ...` line it prints to `onAck` (other lines are
 * ignored), and once `onAck` returns true kills it with SIGKILL after a random delay of up to
 * `killDelayMsMax` ms (an arbitrary moment of its work, not right after the line was read). Resolves when the child is gone, with the signal that ended it (the
 * caller expects 'SIGKILL'; anything else means the child failed, and `stderr` says why).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface KilledChild {
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

export async function runUntilKilled(
  script: string,
  args: readonly string[],
  onAck: (fields: string[]) => boolean,
  killDelayMsMax: number,
): Promise<KilledChild> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  let killing = false;
  for await (const line of createInterface({ input: child.stdout })) {
    const [tag, ...fields] = line.split(' ');
    if (tag === 'ack' && onAck(fields) && !killing) {
      killing = true;
      setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * killDelayMsMax));
    }
  }
  return { signal: await exited, stderr };
}

/**
 * `runUntilKilled` for a child that prints `ack <round>` per round done (0, 1, 2, ...): killed
 * once `rounds` rounds are acknowledged; also returns the last round acknowledged (-1: none).
 */
export async function runRoundsUntilKilled(
  script: string,
  args: readonly string[],
  rounds: number,
  killDelayMsMax: number,
): Promise<KilledChild & { readonly acked: number }> {
  let acked = -1;
  const killed = await runUntilKilled(
    script,
    args,
    ([round]) => {
      acked = Number(round);
      return acked + 1 >= rounds;
    },
    killDelayMsMax,
  );
  return { ...killed, acked };
}
