/** The fault proxy with real sockets: a recording echo server behind it, a client in front. */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TcpProxy } from './tcp-proxy.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An echo server that also remembers every byte it received. */
class EchoServer {
  readonly received: Buffer[] = [];
  readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;
  async start(): Promise<void> {
    const s = createServer((c) => {
      this.sockets.add(c);
      c.on('error', () => {});
      c.on('close', () => this.sockets.delete(c));
      c.on('data', (d) => {
        this.received.push(d);
        c.write(d);
      });
    });
    this.server = s;
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    this.port = (s.address() as { port: number }).port;
  }
  text(): string {
    return Buffer.concat(this.received).toString();
  }
  async close(): Promise<void> {
    for (const c of this.sockets) c.destroy();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}

/** A client connection that collects what comes back and how it ended. */
class Client {
  readonly socket: Socket;
  readonly got: Buffer[] = [];
  ended: 'open' | 'reset' | 'closed' = 'open';
  error: NodeJS.ErrnoException | undefined;
  readonly connected: Promise<void>;
  constructor(port: number) {
    this.socket = tcpConnect({ host: '127.0.0.1', port });
    this.connected = new Promise((r) => this.socket.once('connect', () => r()));
    this.socket.on('data', (d) => this.got.push(d));
    this.socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e;
      this.ended = 'reset';
    });
    this.socket.on('close', () => {
      if (this.ended === 'open') this.ended = 'closed';
    });
  }
  text(): string {
    return Buffer.concat(this.got).toString();
  }
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('TcpProxy (one directed link, real sockets)', () => {
  let echo: EchoServer;
  let proxy: TcpProxy;
  const clients: Client[] = [];
  const client = async () => {
    const c = new Client(proxy.port);
    clients.push(c);
    await c.connected;
    return c;
  };
  beforeEach(async () => {
    echo = new EchoServer();
    await echo.start();
    proxy = new TcpProxy({ targetPort: echo.port, name: 'a→b' });
    await proxy.start();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await proxy.close();
    await echo.close();
  });

  it('passes bytes both ways and keeps a large transfer intact', async () => {
    const c = await client();
    c.socket.write('hello');
    await until(() => c.text() === 'hello', 'echo');
    const big = Buffer.alloc(4 * 1024 * 1024, 7);
    c.socket.write(big);
    await until(() => Buffer.concat(c.got).length === 5 + big.length, 'big echo', 10_000);
    expect(Buffer.concat(c.got).subarray(5).equals(big)).toBe(true);
    expect(proxy.stats.forwardBytes).toBe(5 + big.length);
    expect(proxy.stats.backwardBytes).toBe(5 + big.length);
  });

  it('delays every chunk by the fixed delay plus jitter without reordering', async () => {
    let r = 0;
    const jittery = new TcpProxy({ targetPort: echo.port, random: () => [0.9, 0.1, 0.5, 0][r++ % 4] as number });
    await jittery.start();
    try {
      jittery.setMode({ kind: 'delay', ms: 150, jitterMs: 100 });
      const c = new Client(jittery.port);
      clients.push(c);
      await c.connected;
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) {
        c.socket.write(`<${i}>`);
        await sleep(3);
      }
      const want = Array.from({ length: 20 }, (_, i) => `<${i}>`).join('');
      await until(() => c.text() === want, 'ordered delayed echo', 5000);
      // Two delayed hops (there and back), each at least 150 ms.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
      expect(echo.text()).toBe(want);
    } finally {
      await jittery.close();
    }
  });

  it('blackhole: accepts, swallows both ways and sends nothing; healing resets the broken connection', async () => {
    const before = await client();
    before.socket.write('a');
    await until(() => before.text() === 'a', 'first echo');
    proxy.setMode({ kind: 'blackhole' });
    before.socket.write('lost');
    const fresh = await client(); // a new connection is accepted too
    fresh.socket.write('also lost');
    await sleep(200);
    expect(echo.text()).toBe('a');
    expect(before.text()).toBe('a');
    expect(fresh.text()).toBe('');
    expect(before.ended).toBe('open');
    expect(fresh.ended).toBe('open');
    expect(proxy.stats.droppedBytes).toBe('lost'.length + 'also lost'.length);
    proxy.setMode({ kind: 'pass' });
    await until(() => before.ended !== 'open' && fresh.ended !== 'open', 'tainted connections reset');
    expect(before.error?.code).toBe('ECONNRESET');
    const after = await client();
    after.socket.write('back');
    await until(() => after.text() === 'back', 'echo after heal');
  });

  it('drop forward: the target receives nothing while the connection stays up', async () => {
    const c = await client();
    proxy.setMode({ kind: 'drop', direction: 'forward' });
    c.socket.write('x');
    await sleep(150);
    expect(echo.text()).toBe('');
    expect(c.ended).toBe('open');
  });

  it('drop backward: the target receives the bytes, the dialer never hears back', async () => {
    const c = await client();
    proxy.setMode({ kind: 'drop', direction: 'backward' });
    c.socket.write('one-way');
    await until(() => echo.text() === 'one-way', 'bytes at the target');
    await sleep(150);
    expect(c.text()).toBe('');
    expect(c.ended).toBe('open');
  });

  it('reset: open connections get an RST, new ones are reset at once, pass heals', async () => {
    const c = await client();
    c.socket.write('a');
    await until(() => c.text() === 'a', 'echo');
    proxy.setMode({ kind: 'reset' });
    await until(() => c.ended !== 'open', 'reset of the open connection');
    expect(c.error?.code).toBe('ECONNRESET');
    const refused = new Client(proxy.port);
    clients.push(refused);
    await until(() => refused.ended !== 'open', 'reset of a new connection');
    expect(refused.text()).toBe('');
    proxy.setMode({ kind: 'pass' });
    const ok = await client();
    ok.socket.write('b');
    await until(() => ok.text() === 'b', 'echo after heal');
    expect(proxy.stats.resets).toBeGreaterThanOrEqual(2);
  });

  it('resets the dialer when the target is down (a dead node refuses)', async () => {
    await echo.close();
    const c = new Client(proxy.port);
    clients.push(c);
    await until(() => c.ended !== 'open', 'connection to a dead target ended');
    expect(c.text()).toBe('');
    await echo.start(); // so afterEach can close it
  });
});
