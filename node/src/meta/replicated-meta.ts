/**
 * The meta API over the meta Raft group (group 0) of a replicated node.
 *
 * - `proposeMetaChange` proposes on this node's replica: the meta leader applies it and answers
 *   with the command's result (read from the state machine by entry index); a follower refuses
 *   with NOT_LEADER (leader id and gRPC address), or forwards once to the leader when asked.
 * - `start` runs the node's own upkeep in the background until it is done: while the map is
 *   empty and this node leads the meta group, it proposes the initial map (the state machine
 *   accepts only the first bootstrap, so several founders proposing is harmless, and a restart
 *   never re-bootstraps: the state comes back from disk); once the map exists, it registers the
 *   node's addresses (forwarded to the leader; a no-op when the registry already has them).
 */
import type { NodeId } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import type { Logger } from '../observability/logger.ts';
import type { GroupStatus } from '../replication/group-driver.ts';
import type { GroupId } from '../replication/raft-keys.ts';
import type { DataMutation } from '../replication/replicated-command.ts';
import { ProposeRefusal, type ProposeResult } from '../replication/replication-results.ts';
import { metaProposal } from './meta-codec.ts';
import type { MetaForwarder } from './meta-forwarder.ts';
import type { MetaService, ProposeMetaOptions } from './meta-service.ts';
import { type MetaCommand, MetaRefusal, type MetaResult, type MetaState, type NodeAddresses, NodeState } from './meta-state.ts';
import { META_GROUP, type MetaStateMachine, type MetaStateMachineStats } from './meta-state-machine.ts';

/** What the meta API needs from the Multi-Raft runtime (`MultiRaft` implements it). */
export interface MetaRaft {
  propose(group: GroupId, mutations: readonly DataMutation[]): Promise<ProposeResult>;
  read(group: GroupId): Promise<void>;
  status(group: GroupId): GroupStatus | undefined;
}

export interface ReplicatedMetaOptions {
  readonly self: NodeId;
  readonly raft: MetaRaft;
  readonly sm: MetaStateMachine;
  /** Sends changes to the leader when a caller asks for forwarding (and for the node's own registration); closed by `stop`. */
  readonly forwarder?: MetaForwarder;
  /** A node's gRPC address when the registry does not know it (yet): e.g. from `--peers`. */
  readonly fallbackAddressOf?: (id: NodeId) => string | undefined;
  readonly log?: Logger;
  /**
   * A node that hosts no meta replica (it joined with --join): the members it sends its
   * registration to (forwarded to the meta leader), by id (addresses from `fallbackAddressOf`).
   */
  readonly contacts?: readonly NodeId[];
  /** Pause between attempts of the background upkeep. */
  readonly retryMs?: number;
  /** How long a read barrier waits for the meta group to elect a leader before it answers UNAVAILABLE. */
  readonly barrierWaitMs?: number;
}

export const META_RETRY_MS = 200;
export const META_BARRIER_WAIT_MS = 5_000;

export interface MetaUpkeep {
  /** The initial map this node proposes if it leads an empty meta group; omit on a node that only joins. */
  readonly initial?: Extract<MetaCommand, { kind: 'bootstrap' }>;
  /** This node's addresses, registered once the map exists. */
  readonly self: NodeAddresses;
}

export class ReplicatedMeta implements MetaService {
  private readonly o: ReplicatedMetaOptions;
  private stopped = false;
  private upkeep: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(o: ReplicatedMetaOptions) {
    this.o = o;
  }

  get state(): MetaState {
    return this.o.sm.state;
  }

  /** The state machine's counters (commands, changes, refusals, invalid entries applied as no-ops). */
  get stats(): Readonly<MetaStateMachineStats> {
    return this.o.sm.stats;
  }

  onChange(fn: (state: MetaState) => void): () => void {
    return this.o.sm.onChange(fn);
  }

  /** gRPC address of `id`: from the registry, else the fallback. */
  addressOf(id: NodeId): string | undefined {
    return this.state.nodes.find((n) => n.id === id)?.grpcAddress ?? this.o.fallbackAddressOf?.(id);
  }

  /** The registry as a node directory (`routing/node-directory.ts`), for forwarding KV requests. */
  grpcAddressOf(nodeId: string): string | undefined {
    return this.addressOf(nodeId as NodeId);
  }

  async proposeMetaChange(command: MetaCommand, opts: ProposeMetaOptions = {}): Promise<MetaResult> {
    const r = await this.o.raft.propose(META_GROUP, metaProposal(command));
    if (r.ok) {
      const result = this.o.sm.takeResult(r.index);
      if (result === undefined) throw new KeyVaError('INTERNAL', `meta entry ${r.index} applied without a result`);
      return result;
    }
    if (!r.refused) throw new KeyVaError('INTERNAL', 'a meta command has no condition, yet one failed');
    const epoch = this.state.epoch.toString();
    const leader = r.reason === ProposeRefusal.NotLeader ? r.leaderHint : undefined;
    if (leader !== undefined && leader !== this.o.self) {
      const address = this.addressOf(leader);
      if (opts.forward === true && address !== undefined && this.o.forwarder !== undefined) return this.o.forwarder.propose(address, command);
      throw new KeyVaError('NOT_LEADER', `node ${this.o.self} does not lead the meta group (group 0); its leader is ${leader}; nothing was proposed`, {
        leaderHint: leader,
        leaderAddress: address ?? '',
        group: String(META_GROUP),
        epoch,
      });
    }
    throw new KeyVaError('UNAVAILABLE', `the meta group cannot take changes on node ${this.o.self} right now (${r.reason}); nothing was proposed, retry`, {
      reason: r.reason,
      group: String(META_GROUP),
      epoch,
    });
  }

  async readBarrier(): Promise<void> {
    if (this.o.raft.status(META_GROUP) === undefined)
      throw new KeyVaError('UNAVAILABLE', `node ${this.o.self} holds no meta replica (it joined with --join): ask a meta member for a linearizable map`, {
        group: String(META_GROUP),
      });
    // A barrier waits out an election (about two election timeouts) instead of surfacing it.
    const deadline = Date.now() + (this.o.barrierWaitMs ?? META_BARRIER_WAIT_MS);
    for (;;) {
      try {
        await this.o.raft.read(META_GROUP);
        return;
      } catch (e) {
        const transient = e instanceof KeyVaError && (e.code === 'NOT_LEADER' || e.code === 'UNAVAILABLE');
        if (!transient || this.stopped) throw e;
        if (Date.now() >= deadline) {
          if (e.code === 'NOT_LEADER')
            throw new KeyVaError('UNAVAILABLE', 'the meta group has no known leader here yet; retry', { group: String(META_GROUP) }, { cause: e });
          throw e;
        }
        await new Promise<void>((r) => setTimeout(r, 50));
      }
    }
  }

  /** Starts the background upkeep (see the file comment). */
  start(job: MetaUpkeep): void {
    if (this.upkeep !== undefined || this.stopped) return;
    this.upkeep = this.runUpkeep(job);
  }

  /**
   * Stops the upkeep (cancelling a forwarded call in flight) and closes the forwarder; resolves
   * when the upkeep ended. A local proposal in flight ends when the runtime stops.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.o.forwarder?.close();
    await this.upkeep;
  }

  private async runUpkeep(job: MetaUpkeep): Promise<void> {
    const log = this.o.log;
    while (!this.stopped) {
      try {
        if (await this.upkeepStep(job)) return;
      } catch (e) {
        log?.debug({ err: e }, 'meta upkeep: will retry');
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.o.retryMs ?? META_RETRY_MS);
        t.unref();
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /**
   * Registration of a node without a meta replica: sent to each contact in turn (a follower
   * answers NOT_LEADER with the leader's address: sent there then). True once registered.
   */
  private async registerThroughContacts(me: NodeAddresses): Promise<boolean> {
    const forwarder = this.o.forwarder;
    if (forwarder === undefined) return true;
    const command = { kind: 'registerNode', node: me } as const;
    for (const id of this.o.contacts ?? []) {
      if (id === this.o.self || this.stopped) continue;
      const address = this.o.fallbackAddressOf?.(id);
      if (address === undefined) continue;
      let r: MetaResult;
      try {
        r = await forwarder.propose(address, command);
      } catch (e) {
        const leaderAddress = e instanceof KeyVaError && e.code === 'NOT_LEADER' ? e.details.leaderAddress : undefined;
        if (typeof leaderAddress !== 'string' || leaderAddress === '') continue;
        r = await forwarder.propose(leaderAddress, command).catch(() => ({ ok: false, reason: MetaRefusal.Invalid, message: '', epoch: 0n }) as const);
      }
      if (r.ok) {
        this.o.log?.info({ epoch: r.epoch.toString(), changed: r.changed }, 'registered this node with the cluster (no meta replica here)');
        return true;
      }
      if (r.reason === MetaRefusal.NodeRemoved) {
        this.o.log?.error({ nodeId: me.id }, 'this node id was removed from the cluster: it does not register again');
        return true;
      }
      if (r.reason === MetaRefusal.IncarnationChanged) {
        this.o.log?.fatal({ nodeId: me.id }, r.message);
        return true;
      }
    }
    return false;
  }

  /** One attempt; true when there is nothing left to do. */
  private async upkeepStep(job: MetaUpkeep): Promise<boolean> {
    if (this.o.raft.status(META_GROUP) === undefined) return this.registerThroughContacts(job.self);
    const s = this.state;
    if (s.epoch === 0n) {
      if (job.initial !== undefined && this.o.raft.status(META_GROUP)?.serving === true) {
        const r = await this.proposeMetaChange(job.initial);
        if (r.ok) this.o.log?.info({ epoch: r.epoch.toString(), partitions: job.initial.partitions.length }, 'bootstrapped the partition map');
      }
      return false;
    }
    const me = job.self;
    const known = s.nodes.find((n) => n.id === me.id);
    if (
      known !== undefined &&
      known.grpcAddress === me.grpcAddress &&
      known.httpAddress === me.httpAddress &&
      (me.incarnation === undefined || known.incarnation === me.incarnation)
    )
      return true;
    if (known?.state === NodeState.Removed) {
      this.o.log?.error({ nodeId: me.id }, 'this node id was removed from the cluster: it does not register again');
      return true;
    }
    const r = await this.proposeMetaChange({ kind: 'registerNode', node: me }, { forward: true });
    if (!r.ok && r.reason === MetaRefusal.NodeRemoved) {
      this.o.log?.error({ nodeId: me.id }, 'this node id was removed from the cluster: it does not register again');
      return true;
    }
    if (!r.ok && r.reason === MetaRefusal.IncarnationChanged) {
      this.o.log?.fatal({ nodeId: me.id }, r.message);
      return true;
    }
    if (r.ok) this.o.log?.info({ epoch: r.epoch.toString(), changed: r.changed }, 'registered this node in the meta group');
    return false;
  }
}
