/**
 * Test fixture: a cluster of real nodes in this process (`startNode` with `--peers`, RocksDB in a
 * temp dir per node, real gRPC on 127.0.0.1). Every node keeps its ports and data dir, so it can
 * be stopped and started again; SDK clients made by `connect` are closed with the cluster.
 * `NodeCluster.start` starts every node and waits for `ready`; `close` stops everything and
 * removes the temp dirs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClientOptions, KeyVa } from '@keyva/client';
import type { GetPartitionMapResponseOut, MergePartitionsResponseOut, SplitPartitionResponseOut } from '@keyva/proto';
import type { NodeConfigInput } from '../config/config.ts';
import { freePort } from '../net/free-port.ts';
import { eventually } from './eventually.ts';
import { startTestNode, type TestNode, unary } from './test-node.ts';

export interface NodeClusterOptions {
  readonly ids: readonly string[];
  /** Prefix of the temp dir that holds the nodes' data dirs. */
  readonly name: string;
  /** Every node's configuration, besides its id, ports and `peers`. */
  readonly config: NodeConfigInput;
  /** Options of the SDK clients `connect` makes (the endpoints are the nodes'). */
  readonly client: Omit<ClientOptions, 'endpoints'>;
  /** How long `ready` waits (default: `eventually`'s). */
  readonly readyMs?: number;
}

export class NodeCluster {
  readonly ids: readonly string[];
  private readonly o: NodeClusterOptions;
  private readonly root: string;
  private readonly ports: ReadonlyMap<string, { readonly grpc: number; readonly http: number }>;
  private readonly peers: string;
  private readonly nodes = new Map<string, TestNode>();
  private readonly stopped = new Set<string>();
  private readonly clients: KeyVa[] = [];

  private constructor(o: NodeClusterOptions, ports: Map<string, { grpc: number; http: number }>) {
    this.o = o;
    this.ids = o.ids;
    this.root = mkdtempSync(join(tmpdir(), `keyva-${o.name}-`));
    this.ports = ports;
    this.peers = o.ids.map((id) => `${id}=127.0.0.1:${ports.get(id)?.grpc}`).join(',');
  }

  /** Picks the ports, starts every node and waits until the cluster is `ready`. */
  static async start(o: NodeClusterOptions): Promise<NodeCluster> {
    const ports = new Map<string, { grpc: number; http: number }>();
    for (const id of o.ids) ports.set(id, { grpc: await freePort(), http: await freePort() });
    const c = new NodeCluster(o, ports);
    try {
      await Promise.all(o.ids.map((id) => c.start(id)));
      await c.ready();
    } catch (e) {
      await c.close(); // what did start, so a failed set-up leaves no node running
      throw e;
    }
    return c;
  }

  /** The running node `id` (the last one started under that id). */
  node(id: string): TestNode {
    const t = this.nodes.get(id);
    if (t === undefined) throw new Error(`no node ${id}`);
    return t;
  }

  /** Starts node `id` on its ports and data dir (again, after `stop`). */
  async start(id: string): Promise<void> {
    const p = this.ports.get(id);
    if (p === undefined) throw new Error(`no node ${id}`);
    const config = { ...this.o.config, nodeId: id, grpcPort: p.grpc, httpPort: p.http, peers: this.peers };
    this.nodes.set(id, await startTestNode('rocksdb', config, join(this.root, id)));
    this.stopped.delete(id);
  }

  /** Stops node `id` (its data dir stays). */
  stop(id: string): Promise<void> {
    this.stopped.add(id);
    return this.node(id).close();
  }

  /** Deletes the data dir of the stopped node `id` (a wiped or replaced disk). */
  wipe(id: string): void {
    if (!this.stopped.has(id)) throw new Error(`node ${id} is running: stop it before wiping its data dir`);
    rmSync(join(this.root, id), { recursive: true, force: true });
  }

  endpoints(): string[] {
    return this.ids.map((id) => `127.0.0.1:${this.ports.get(id)?.grpc}`);
  }

  /** An SDK client on every node's endpoint; closed by `close`. */
  async connect(): Promise<KeyVa> {
    const c = await KeyVa.connect({ ...this.o.client, endpoints: this.endpoints() });
    this.clients.push(c);
    return c;
  }

  /** Every node applied a map, and group 1 has a serving leader. */
  async ready(): Promise<void> {
    await eventually(
      () =>
        this.ids.every((id) => (this.node(id).node.meta.state.epoch ?? 0n) > 0n) && this.ids.some((id) => this.node(id).node.raft?.status(1)?.serving === true),
      'a map and a serving leader of group 1',
      this.o.readyMs,
    );
  }

  /** A running node that leads the meta group now (in its own view), if one does. */
  metaLeader(): string | undefined {
    return this.ids.find((id) => !this.stopped.has(id) && this.nodes.get(id)?.node.raft?.status(0)?.serving === true);
  }

  splitPartition(via: string, partitionId: number, atHash: bigint): Promise<SplitPartitionResponseOut> {
    return unary(this.node(via).admin, 'SplitPartition', { partitionId, atHash: atHash.toString() }, 20_000);
  }

  mergePartitions(via: string, leftId: number, rightId: number): Promise<MergePartitionsResponseOut> {
    return unary(this.node(via).admin, 'MergePartitions', { leftId, rightId }, 30_000);
  }

  /** The map, read through the meta group. */
  partitionMap(via: string): Promise<GetPartitionMapResponseOut> {
    return unary(this.node(via).admin, 'GetPartitionMap', { linearizable: true });
  }

  /** Closes the SDK clients, stops every node and removes the data dirs. */
  async close(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => undefined);
    await Promise.all([...this.nodes.values()].map((t) => t.close().catch(() => undefined)));
    rmSync(this.root, { recursive: true, force: true });
  }
}
