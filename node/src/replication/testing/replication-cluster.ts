/**
 * Test helper: replication nodes in this process, each with its own engine, `MultiRaft`,
 * `RaftTransport` and gRPC server on 127.0.0.1 (port picked by the OS). Addresses live in one
 * map, so a restarted node may come back on a new port. Every wait is bounded in time.
 */
import * as grpc from '@grpc/grpc-js';
import type { NodeId } from '@keyva/client/keyspace';
import { keyvaV1 } from '@keyva/proto';
import { HybridClock } from '../../clock/hybrid-clock.ts';
import type { StorageEngine } from '../../engine/types.ts';
import type { GroupStatus } from '../group-driver.ts';
import { type GroupSpec, MultiRaft, type MultiRaftOptions } from '../multi-raft.ts';
import type { GroupId } from '../raft-keys.ts';
import { RaftTransport, type RaftTransportOptions } from '../raft-transport.ts';

export interface ClusterNode {
  readonly id: NodeId;
  readonly engine: StorageEngine;
  readonly runtime: MultiRaft;
  readonly transport: RaftTransport;
  readonly server: grpc.Server;
  readonly port: number;
  readonly clock: HybridClock;
}

export type RuntimeOverrides = Partial<Omit<MultiRaftOptions, 'nodeId' | 'engine' | 'transport' | 'clock'>>;
/** Transport settings a test may change (snapshot stream pacing). */
export type TransportOverrides = Partial<
  Pick<RaftTransportOptions, 'snapshotBytesPerSecond' | 'snapshotChunkBytes' | 'snapshotRowsOnly' | 'snapshotSocket' | 'snapshotSocketHostOf'>
>;

/** Polling period of the bounded waits. */
const POLL_MS = 5;

export class ReplicationCluster {
  readonly addresses = new Map<string, string>();
  readonly nodes = new Map<NodeId, ClusterNode>();
  private readonly defaults: RuntimeOverrides;

  constructor(defaults: RuntimeOverrides = {}) {
    this.defaults = defaults;
  }

  node(id: string): ClusterNode {
    const n = this.nodes.get(id as NodeId);
    if (n === undefined) throw new Error(`node ${id} is not running`);
    return n;
  }

  /** Starts a node: opens its groups, serves the Raft service, starts ticking. */
  async start(
    id: string,
    engine: StorageEngine,
    groups: readonly GroupSpec[],
    overrides: RuntimeOverrides = {},
    transportOverrides: TransportOverrides = {},
  ): Promise<ClusterNode> {
    const nodeId = id as NodeId;
    if (this.nodes.has(nodeId)) throw new Error(`node ${id} is already running`);
    const clock = new HybridClock();
    let runtime: MultiRaft | undefined;
    const transport = new RaftTransport({
      self: id,
      addressOf: (peer) => this.addresses.get(peer),
      onReceive: (from, group, m) => runtime?.receive(from, group, m),
      reconnectBackoffMs: 50,
      ...transportOverrides,
    });
    runtime = new MultiRaft({ ...this.defaults, ...overrides, nodeId, engine, transport, clock });
    for (const g of groups) await runtime.addGroup(g);
    const server = new grpc.Server();
    server.addService(keyvaV1.Raft.service, transport.handlers());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    this.addresses.set(id, `127.0.0.1:${port}`);
    await transport.startSnapshotSocket();
    runtime.start();
    const node: ClusterNode = { id: nodeId, engine, runtime, transport, server, port, clock };
    this.nodes.set(nodeId, node);
    return node;
  }

  /** Stops a node's runtime and server (its engine stays open: the caller owns it). */
  async stop(id: string): Promise<ClusterNode> {
    const n = this.node(id);
    this.nodes.delete(n.id);
    n.server.forceShutdown();
    await n.runtime.stop();
    return n;
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
  }

  /** The running node that leads `group` and serves proposals (highest term if several think so). */
  leader(group: GroupId): ClusterNode | undefined {
    let best: { n: ClusterNode; s: GroupStatus } | undefined;
    for (const n of this.nodes.values()) {
      const s = n.runtime.status(group);
      if (s?.serving && (best === undefined || s.term > best.s.term)) best = { n, s };
    }
    return best?.n;
  }

  followers(group: GroupId): ClusterNode[] {
    const l = this.leader(group);
    return [...this.nodes.values()].filter((n) => n !== l && n.runtime.status(group) !== undefined);
  }

  /** Waits for a serving leader of `group`; returns it and how long it took. */
  async waitForLeader(group: GroupId, timeoutMs: number): Promise<{ node: ClusterNode; ms: number }> {
    const t0 = performance.now();
    await until(() => this.leader(group) !== undefined, timeoutMs, `a serving leader of group ${group}`);
    return { node: this.leader(group) as ClusterNode, ms: performance.now() - t0 };
  }

  /** Waits until every running replica of `group` applied at least `index`. */
  async waitApplied(group: GroupId, index: number, timeoutMs: number): Promise<void> {
    await until(
      () => [...this.nodes.values()].every((n) => (n.runtime.status(group)?.applied.index ?? index) >= index),
      timeoutMs,
      `every replica of group ${group} to apply ${index}`,
    );
  }
}

/** Polls `pred` until it holds; throws after `timeoutMs`. */
export async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** `count` equal hash ranges tiling the hash space. */
export function equalRanges(count: number): { start: bigint; end: bigint }[] {
  const size = (1n << 64n) / BigInt(count);
  return Array.from({ length: count }, (_, i) => ({ start: size * BigInt(i), end: i === count - 1 ? 1n << 64n : size * BigInt(i + 1) }));
}
