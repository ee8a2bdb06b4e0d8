/**
 * A loopback TCP fault proxy for ONE directed link (node A dials node B through proxy A→B): it
 * forwards bytes both ways and injects network faults on command (TEST-INFRA.md "Faults"; the
 * kernel here has no netem).
 *
 * Modes ("forward" = bytes from the dialer to the target, "backward" = the answers):
 * - pass: forward everything, with backpressure.
 * - blackhole: accept connections, read and swallow every byte both ways, send nothing, never
 *   close: the dialer sees a live TCP connection that stops answering (a partition).
 * - drop: discard the bytes of one direction, pass the other (a one-way cut).
 * - reset: destroy every connection with a TCP RST; new connections are accepted and reset at once.
 * - delay: deliver every chunk `ms` + uniform(0, `jitterMs`) after it arrived, never reordering.
 *
 * A connection that lost bytes (blackhole, drop) carries a broken byte stream (a gRPC/HTTP2
 * framing that resumed mid-frame would be garbage), so leaving a lossy mode for pass or delay
 * resets those connections: the dialer reconnects cleanly, as after a real partition that
 * outlived its TCP timeouts.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export type ProxyMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'blackhole' }
  | { readonly kind: 'drop'; readonly direction: Direction }
  | { readonly kind: 'reset' }
  | { readonly kind: 'delay'; readonly ms: number; readonly jitterMs: number };

export type Direction = 'forward' | 'backward';

export interface TcpProxyOptions {
  /** Where the proxied connections go. */
  readonly targetHost?: string;
  readonly targetPort: number;
  /** Listen address; port 0 (default) picks a free one. */
  readonly listenHost?: string;
  readonly listenPort?: number;
  /** Source of jitter in [0, 1) (inject a seeded one to replay a run). */
  readonly random?: () => number;
  readonly name?: string;
}

export interface ProxyStats {
  connections: number;
  forwardBytes: number;
  backwardBytes: number;
  droppedBytes: number;
  resets: number;
}

const PASS: ProxyMode = { kind: 'pass' };

/** One direction of one connection: a FIFO of chunks due at a time (delay keeps the order). */
class Lane {
  readonly queue: { due: number; chunk: Buffer }[] = [];
  timer: NodeJS.Timeout | undefined;
  lastDue = 0;
}

class Link {
  readonly client: Socket;
  upstream: Socket | undefined;
  tainted = false;
  readonly lanes: Record<Direction, Lane> = { forward: new Lane(), backward: new Lane() };
  constructor(client: Socket) {
    this.client = client;
  }
}

export class TcpProxy {
  readonly name: string;
  readonly stats: ProxyStats = { connections: 0, forwardBytes: 0, backwardBytes: 0, droppedBytes: 0, resets: 0 };
  private readonly o: TcpProxyOptions;
  private readonly random: () => number;
  private readonly links = new Set<Link>();
  private server: Server | undefined;
  private current: ProxyMode = PASS;
  private listenPort = 0;

  constructor(o: TcpProxyOptions) {
    this.o = o;
    this.random = o.random ?? Math.random;
    this.name = o.name ?? `proxy→${o.targetHost ?? '127.0.0.1'}:${o.targetPort}`;
  }

  get port(): number {
    return this.listenPort;
  }

  get mode(): ProxyMode {
    return this.current;
  }

  /** Listens; resolves with the port dialers use. */
  async start(): Promise<number> {
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.listenPort ?? 0, this.o.listenHost ?? '127.0.0.1', () => resolve());
    });
    const a = server.address();
    if (a === null || typeof a !== 'object') throw new Error(`${this.name}: no port assigned`);
    this.listenPort = a.port;
    return this.listenPort;
  }

  setMode(mode: ProxyMode): void {
    if (mode.kind === 'delay' && (mode.ms < 0 || mode.jitterMs < 0)) throw new Error(`${this.name}: delay and jitter must be >= 0`);
    this.current = mode;
    if (mode.kind === 'reset') {
      for (const l of [...this.links]) this.reset(l);
    } else if (mode.kind === 'pass' || mode.kind === 'delay') {
      for (const l of [...this.links]) if (l.tainted) this.reset(l);
    }
  }

  /** Stops listening and resets every connection. */
  async close(): Promise<void> {
    for (const l of [...this.links]) this.reset(l);
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    const link = new Link(client);
    this.links.add(link);
    client.on('error', () => this.reset(link));
    client.on('close', () => this.reset(link, false));
    if (this.current.kind === 'reset') {
      this.reset(link);
      return;
    }
    client.on('data', (chunk: Buffer) => this.carry(link, 'forward', chunk));
    client.on('end', () => this.halfClose(link, 'forward'));
    if (this.current.kind === 'blackhole') {
      // Never dial the target: the dialer's bytes vanish. The link is useless once healed.
      link.tainted = true;
      return;
    }
    this.dial(link);
  }

  private dial(link: Link): void {
    const up = tcpConnect({ host: this.o.targetHost ?? '127.0.0.1', port: this.o.targetPort, noDelay: true });
    link.upstream = up;
    up.on('error', () => this.reset(link));
    up.on('close', () => this.reset(link, false));
    up.on('data', (chunk: Buffer) => this.carry(link, 'backward', chunk));
    up.on('end', () => this.halfClose(link, 'backward'));
  }

  private carry(link: Link, dir: Direction, chunk: Buffer): void {
    const m = this.current;
    if (m.kind === 'blackhole' || (m.kind === 'drop' && m.direction === dir) || (dir === 'forward' && link.upstream === undefined)) {
      this.stats.droppedBytes += chunk.length;
      link.tainted = true;
      return;
    }
    if (m.kind === 'reset') {
      this.reset(link);
      return;
    }
    const lane = link.lanes[dir];
    const now = performance.now();
    const wanted = m.kind === 'delay' ? now + m.ms + this.random() * m.jitterMs : now;
    if (lane.queue.length === 0 && wanted <= now) {
      this.deliver(link, dir, chunk);
      return;
    }
    // Never overtake a chunk still waiting in this lane.
    const due = Math.max(wanted, lane.lastDue);
    lane.lastDue = due;
    lane.queue.push({ due, chunk });
    this.schedule(link, dir);
  }

  private schedule(link: Link, dir: Direction): void {
    const lane = link.lanes[dir];
    if (lane.timer !== undefined) return;
    const head = lane.queue[0];
    if (head === undefined) return;
    lane.timer = setTimeout(
      () => {
        lane.timer = undefined;
        const now = performance.now();
        while (lane.queue.length > 0 && (lane.queue[0] as { due: number }).due <= now + 0.5) {
          const next = lane.queue.shift() as { due: number; chunk: Buffer };
          if (!this.links.has(link)) return;
          this.deliver(link, dir, next.chunk);
        }
        this.schedule(link, dir);
      },
      Math.max(0, head.due - performance.now()),
    );
  }

  private deliver(link: Link, dir: Direction, chunk: Buffer): void {
    const [from, to] = dir === 'forward' ? [link.client, link.upstream] : [link.upstream, link.client];
    if (to === undefined || to.destroyed) return;
    if (dir === 'forward') this.stats.forwardBytes += chunk.length;
    else this.stats.backwardBytes += chunk.length;
    if (!to.write(chunk) && from !== undefined && !from.isPaused()) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  }

  private halfClose(link: Link, dir: Direction): void {
    const to = dir === 'forward' ? link.upstream : link.client;
    const lane = link.lanes[dir];
    const end = () => {
      if (to && !to.destroyed) to.end();
    };
    if (lane.queue.length === 0) end();
    else setTimeout(end, Math.max(0, lane.lastDue - performance.now()) + 1);
  }

  /** Ends a connection: with an RST on both sides for a fault, a plain close otherwise. */
  private reset(link: Link, fault = true): void {
    if (!this.links.delete(link)) return;
    if (fault) this.stats.resets++;
    for (const lane of Object.values(link.lanes)) {
      if (lane.timer !== undefined) clearTimeout(lane.timer);
      lane.queue.length = 0;
    }
    for (const s of [link.client, link.upstream]) {
      if (s === undefined || s.destroyed) continue;
      // An RST where the socket is connected; a plain destroy while it is still connecting.
      if (fault && (s.readyState === 'open' || s.readyState === 'readOnly' || s.readyState === 'writeOnly')) s.resetAndDestroy();
      else s.destroy();
    }
  }
}
