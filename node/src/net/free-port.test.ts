/** `freePort`: distinct ports below the ephemeral range, each free to bind on loopback. */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from './free-port.ts';

const bind = (port: number) =>
  new Promise<void>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
  });

describe('freePort', () => {
  it('hands out distinct bindable ports below 32768', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const p of ports) expect(p >= 20_000 && p < 32_768, String(p)).toBe(true);
    for (const p of ports) await bind(p);
  });
});
