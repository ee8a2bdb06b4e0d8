/** A one-line progress bar on stderr, drawn only when stderr is a terminal. */
export interface Progress {
  update(fraction: number, text: string): void;
  done(): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, width = 24): Progress {
  if (!stream.isTTY) return { update: () => {}, done: () => {} };
  let last = 0;
  return {
    update(fraction, text) {
      const t = performance.now();
      if (t - last < 100 && fraction < 1) return;
      last = t;
      const f = Math.max(0, Math.min(1, fraction));
      const full = Math.round(f * width);
      stream.write(`\r\x1b[2K${label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${text}`);
    },
    done() {
      stream.write('\r\x1b[2K');
    },
  };
}
