/**
 * Test fixture: Multi-Raft runtimes wired for splits as node.ts wires them (a `SplitHost` that
 * opens a split's child in the runtime and campaigns for the children it leads), over real gRPC
 * on 127.0.0.1 (`ReplicationCluster`), on memory engines made by `engine`. `close` stops every
 * runtime, then closes the engines.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { StorageEngine } from '../engine/types.ts';
import type { GroupSpec, MultiRaft } from '../replication/multi-raft.ts';
import type { HashRange } from '../replication/partition-snapshot.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { type ClusterNode, ReplicationCluster, type RuntimeOverrides } from '../replication/testing/replication-cluster.ts';
import { SplitHost } from '../split/split-host.ts';

export interface SplitRuntimesOptions {
  /** Every runtime's settings (tick, log compaction). */
  readonly runtime?: RuntimeOverrides;
  /** How long `propose` waits for a leader (default 15 s). */
  readonly waitMs?: number;
}

export class SplitRuntimes {
  readonly cluster: ReplicationCluster;
  private readonly waitMs: number;
  private readonly engines: StorageEngine[] = [];

  constructor(o: SplitRuntimesOptions = {}) {
    this.cluster = new ReplicationCluster(o.runtime);
    this.waitMs = o.waitMs ?? 15_000;
  }

  /** A new open memory engine, closed by `close`. */
  async engine(): Promise<MemoryEngine> {
    const e = new MemoryEngine();
    await e.open();
    this.engines.push(e);
    return e;
  }

  /**
   * Starts runtime `id` on `engine` with `groups`. `onNarrowed` is the split host's hook for a
   * split applied through a snapshot (what the split coordinator does from the map).
   */
  async start(
    id: string,
    engine: StorageEngine,
    groups: readonly GroupSpec[],
    onNarrowed?: (runtime: MultiRaft, parentGroup: number, cutOff: HashRange) => void,
  ): Promise<ClusterNode> {
    let runtime: MultiRaft | undefined;
    const splits = new SplitHost({
      self: id as NodeId,
      hosted: (g) => runtime?.status(g) !== undefined,
      open: async (g, range) => {
        await runtime?.addGroup({ group: g, range });
      },
      leads: (g) => runtime?.status(g)?.leader === id,
      campaign: (g) => runtime?.campaign(g),
      onNarrowed: (parent, cutOff) => {
        if (runtime !== undefined) onNarrowed?.(runtime, parent, cutOff);
      },
    });
    const node = await this.cluster.start(id, engine, groups, { splits });
    runtime = node.runtime;
    return node;
  }

  /** Proposes `mutations` through the leader of `group`; throws unless they applied. */
  async propose(group: GroupId, mutations: DataMutation[]): Promise<void> {
    const leader = (await this.cluster.waitForLeader(group, this.waitMs)).node;
    const r = await leader.runtime.propose(group, mutations);
    if (!r.ok) throw new Error(`group ${group}: not applied (${JSON.stringify(r)})`);
  }

  async close(): Promise<void> {
    await this.cluster.stopAll();
    for (const e of this.engines) await e.close();
  }
}
