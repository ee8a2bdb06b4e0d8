/**
 * A free TCP port on loopback for a test server that is bound later (and restarted on the same
 * port). Picked below Linux's ephemeral range (32768-60999 by default), where outgoing
 * connections take their local ports and port-0 listeners get theirs: a port picked there could
 * be taken by one of those between this check and the bind (a CI EADDRINUSE of session 4).
 * Checked free by binding it once; never the same port twice in one process.
 */
import { createServer } from 'node:net';

const FIRST = 20_000;
const COUNT = 12_000;
const handedOut = new Set<number>();

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = FIRST + Math.floor(Math.random() * COUNT);
    if (handedOut.has(port) || !(await isFree(port, host))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${FIRST}-${FIRST + COUNT - 1} after 100 tries`);
}
