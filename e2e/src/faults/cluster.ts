/**
 * A replicated cluster of real node processes (RocksDB, `--peers`, one Raft group per
 * partition) for fault tests: every directed Raft link A→B runs through its own TcpProxy (node A
 * dials B via `--raft-dial`, while clients get the real addresses from `--peers`), so the test
 * can cut, delay or reset any link, and it can kill -9, restart (same data dir and ports),
 * SIGSTOP and SIGCONT any node.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { keyHash, type PartitionMap } from '@keyva/client';
import { freePort } from '@keyva/node/net/free-port';
import { type ProxyMode, TcpProxy } from './tcp-proxy.ts';

export interface FaultClusterOptions {
  /** Folder for the nodes' data dirs and logs. */
  readonly root: string;
  readonly nodes?: number;
  readonly partitions?: number;
  /** `--raft-tick-ms`; unset = the node's default. */
  readonly raftTickMs?: number;
  /** Jitter source for delayed links (seeded for replay). */
  readonly random?: () => number;
  readonly logLevel?: string;
}

export interface NodeSpec {
  readonly id: string;
  readonly dataDir: string;
  readonly grpcPort: number;
  readonly httpPort: number;
}

export type NodeState = 'running' | 'paused' | 'down';

/**
 * A free loopback port BELOW the kernel's ephemeral range (32768-60999 by default): a node is
 * restarted on the same ports after kill -9, and while it is down no outgoing connection or
 * port-0 listener (its peers' proxies, the clients) can be handed its port (`freePort`).
 */
export const stablePort = (): Promise<number> => freePort();

const linkName = (from: string, to: string) => `${from}->${to}`;

export class FaultCluster {
  readonly specs: readonly NodeSpec[];
  readonly ids: readonly string[];
  private readonly o: FaultClusterOptions;
  private readonly proxies: ReadonlyMap<string, TcpProxy>;
  private readonly running = new Map<string, LocalNode>();
  private readonly paused = new Set<string>();

  private constructor(o: FaultClusterOptions, specs: NodeSpec[], proxies: Map<string, TcpProxy>) {
    this.o = o;
    this.specs = specs;
    this.ids = specs.map((s) => s.id);
    this.proxies = proxies;
  }

  /** Picks ports and starts one proxy per directed link (nodes are started by `startAll`). */
  static async create(o: FaultClusterOptions): Promise<FaultCluster> {
    const specs: NodeSpec[] = [];
    const taken = new Set<number>();
    const port = async () => {
      let p = await stablePort();
      while (taken.has(p)) p = await stablePort();
      taken.add(p);
      return p;
    };
    for (let i = 0; i < (o.nodes ?? 3); i++) {
      const id = `node-${i + 1}`;
      specs.push({ id, dataDir: join(o.root, id), grpcPort: await port(), httpPort: await port() });
    }
    const proxies = new Map<string, TcpProxy>();
    for (const from of specs)
      for (const to of specs) {
        if (from === to) continue;
        const p = new TcpProxy({ targetPort: to.grpcPort, name: linkName(from.id, to.id), ...(o.random ? { random: o.random } : {}) });
        await p.start();
        proxies.set(linkName(from.id, to.id), p);
      }
    return new FaultCluster(o, specs, proxies);
  }

  get endpoints(): string[] {
    return this.specs.map((s) => `127.0.0.1:${s.grpcPort}`);
  }

  spec(id: string): NodeSpec {
    const s = this.specs.find((x) => x.id === id);
    if (!s) throw new Error(`no node ${id} (have ${this.ids.join(', ')})`);
    return s;
  }

  state(id: string): NodeState {
    return !this.running.has(id) ? 'down' : this.paused.has(id) ? 'paused' : 'running';
  }

  node(id: string): LocalNode | undefined {
    return this.running.get(id);
  }

  link(from: string, to: string): TcpProxy {
    const p = this.proxies.get(linkName(from, to));
    if (!p) throw new Error(`no link ${linkName(from, to)}`);
    return p;
  }

  /** Starts a node (first start or restart on its data dir and ports). */
  async start(id: string): Promise<LocalNode> {
    if (this.running.has(id)) throw new Error(`${id} is already running`);
    const s = this.spec(id);
    mkdirSync(s.dataDir, { recursive: true });
    const peers = this.specs.map((p) => `${p.id}=127.0.0.1:${p.grpcPort}`).join(',');
    const dial = this.specs
      .filter((p) => p.id !== id)
      .map((p) => `${p.id}=127.0.0.1:${this.link(id, p.id).port}`)
      .join(',');
    const n = await startLocalNode({
      dataDir: s.dataDir,
      engine: 'rocksdb',
      grpcPort: s.grpcPort,
      httpPort: s.httpPort,
      nodeId: id,
      logLevel: this.o.logLevel ?? 'warn',
      // A node start takes 1-2 s on a quiet machine, but 30 s+ was seen at load average 20.
      readyTimeoutMs: 90_000,
      extraArgs: [
        '--peers',
        peers,
        '--raft-dial',
        dial,
        '--replication-factor',
        String(this.specs.length),
        '--partitions',
        String(this.o.partitions ?? 8),
        ...(this.o.raftTickMs === undefined ? [] : ['--raft-tick-ms', String(this.o.raftTickMs)]),
      ],
    });
    this.running.set(id, n);
    n.exited.then(() => {
      if (this.running.get(id) === n) {
        this.running.delete(id);
        this.paused.delete(id);
      }
    });
    return n;
  }

  async startAll(): Promise<void> {
    await Promise.all(this.ids.filter((id) => !this.running.has(id)).map((id) => this.start(id)));
  }

  /** kill -9 (a paused node dies too); resolves once the process is gone. */
  async kill(id: string): Promise<void> {
    const n = this.running.get(id);
    if (!n) return;
    n.process.kill('SIGKILL');
    await n.exited;
    this.running.delete(id);
    this.paused.delete(id);
  }

  async killAll(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.kill(id)));
  }

  pause(id: string): void {
    const n = this.running.get(id);
    if (!n) throw new Error(`cannot pause ${id}: not running`);
    n.process.kill('SIGSTOP');
    this.paused.add(id);
  }

  resume(id: string): void {
    const n = this.running.get(id);
    if (n && this.paused.delete(id)) n.process.kill('SIGCONT');
  }

  /** Sets one directed link's mode. */
  setLink(from: string, to: string, mode: ProxyMode): void {
    this.link(from, to).setMode(mode);
  }

  /** Sets the mode of `id`'s links: outgoing ('out'), incoming ('in') or both. */
  setLinksOf(id: string, mode: ProxyMode, which: 'in' | 'out' | 'both' = 'both'): void {
    for (const other of this.ids) {
      if (other === id) continue;
      if (which !== 'in') this.setLink(id, other, mode);
      if (which !== 'out') this.setLink(other, id, mode);
    }
  }

  setAllLinks(mode: ProxyMode): void {
    for (const p of this.proxies.values()) p.setMode(mode);
  }

  /** Every link back to pass and every paused node continued (down nodes stay down). */
  heal(): void {
    for (const id of [...this.paused]) this.resume(id);
    this.setAllLinks({ kind: 'pass' });
  }

  /** The node leading the most partitions in `map`, and those partitions. */
  static busiestLeader(map: PartitionMap): { node: string; partitions: number[] } | undefined {
    const by = new Map<string, number[]>();
    for (const p of map.partitions) if (p.leaderHint) by.set(p.leaderHint, [...(by.get(p.leaderHint) ?? []), p.id]);
    const best = [...by.entries()].sort((a, b) => b[1].length - a[1].length)[0];
    return best && { node: best[0], partitions: best[1] };
  }

  /** The partition a key belongs to. */
  static partitionOf(map: PartitionMap, key: string): number {
    return map.locate(keyHash(Buffer.from(key))).id;
  }

  /** Partition id → the leader node `id` currently knows of (its own Raft view, from its REST gateway). */
  async leadersSeenBy(id: string): Promise<Map<number, string | undefined>> {
    const n = this.running.get(id);
    if (!n) throw new Error(`${id} is not running`);
    const r = await fetch(`http://${n.http}/v1/partitions`, { signal: AbortSignal.timeout(1000) });
    if (r.status !== 200) throw new Error(`GET /v1/partitions on ${id}: HTTP ${r.status}`);
    const body = (await r.json()) as { map: { partitions: { id: number; leaderHint: string }[] } };
    return new Map(body.map.partitions.map((p) => [p.id, p.leaderHint === '' ? undefined : p.leaderHint]));
  }

  /** Continues paused nodes, stops every node (SIGTERM, then SIGKILL) and closes the proxies. */
  async close(): Promise<void> {
    for (const id of [...this.paused]) this.resume(id);
    await Promise.all([...this.running.values()].map((n) => n.stop(3000)));
    this.running.clear();
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }
}
