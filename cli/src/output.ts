/** Terminal output: tables for people, JSON for scripts, colour only on a TTY. */
import Table from 'cli-table3';

const tty = process.stdout.isTTY === true && !process.env.NO_COLOR;
const wrap = (open: number, close: number) => (s: string) => (tty ? `\u001b[${open}m${s}\u001b[${close}m` : s);

export const style = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  green: wrap(32, 39),
  yellow: wrap(33, 39),
};

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head: head.map((h) => style.bold(h)), style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map(String));
  return t.toString();
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}

/** Shows bytes as text when they are printable UTF-8, else as base64 with a marker. */
export function showBytes(b: Uint8Array): string {
  const buf = Buffer.from(b);
  const text = buf.toString('utf8');
  const printable = [...text].every((c) => {
    const n = c.codePointAt(0) ?? 0;
    return n >= 0x20 || n === 0x09 || n === 0x0a || n === 0x0d;
  });
  if (Buffer.from(text, 'utf8').equals(buf) && printable) return text;
  return `base64:${buf.toString('base64')}`;
}

/** A progress bar on stderr for long work (no-op when stderr is not a TTY). */
export class ProgressBar {
  private readonly total: number;
  private readonly label: string;
  private done = 0;
  constructor(label: string, total: number) {
    this.label = label;
    this.total = Math.max(1, total);
  }
  tick(n = 1): void {
    this.done += n;
    if (!process.stderr.isTTY) return;
    const width = 30;
    const filled = Math.min(width, Math.round((this.done / this.total) * width));
    process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total}`);
  }
  finish(): void {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}
