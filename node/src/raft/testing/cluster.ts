/**
 * A synchronous in-memory cluster for unit tests: every replica's Ready is persisted to its
 * `MemoryRaftStorage`, messages are delivered until the cluster is quiet, and links can be cut.
 * Unlike the simulator it has no time and no randomness beyond election timeouts: tests drive
 * it step by step and inspect the result.
 */
import { confState } from '../conf-change.ts';
import { MemoryRaftStorage } from '../memory-storage.ts';
import type { Message } from '../messages.ts';
import { Prng } from '../prng.ts';
import type { RaftConfig } from '../raft.ts';
import { RaftNode, type Ready } from '../raw-node.ts';
import { type Entry, type ReadState, type ReplicaId, replicaId, type Snapshot } from '../types.ts';

export type ClusterOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'random'>> & {
  readonly learners?: readonly string[];
  readonly seed?: number;
  /** Start some replicas from a given durable state instead of the bootstrap snapshot. */
  readonly storages?: Readonly<Record<string, MemoryRaftStorage>>;
};

export interface Member {
  node: RaftNode;
  storage: MemoryRaftStorage;
  /** Entries applied to this replica's state machine, in order (empty entries included). */
  applied: Entry[];
  readStates: ReadState[];
  /** Snapshots this replica installed from its leader. */
  restored: Snapshot[];
  /** Every message this replica sent, for assertions. */
  sent: Message[];
  up: boolean;
}

const DELIVERY_ROUNDS_MAX = 10_000;

export class TestCluster {
  readonly members = new Map<ReplicaId, Member>();
  private mailbox: Message[] = [];
  private readonly cut = new Set<string>();
  /** Returns false to drop a message (in addition to cut links). */
  filter: ((m: Message) => boolean) | undefined = undefined;
  readonly options: ClusterOptions;
  private readonly rng: Prng;

  constructor(voters: readonly string[], options: ClusterOptions = {}) {
    this.options = options;
    this.rng = new Prng(options.seed ?? 1);
    const conf = confState(voters.map(replicaId), (options.learners ?? []).map(replicaId));
    for (const id of [...conf.voters, ...conf.learners]) this.add(id, options.storages?.[id] ?? MemoryRaftStorage.bootstrap(conf));
  }

  /** Adds a replica with the given storage (an empty one for a learner about to join). */
  add(id: ReplicaId, storage: MemoryRaftStorage = new MemoryRaftStorage()): Member {
    const m: Member = { node: this.newNode(id, storage), storage, applied: [], readStates: [], restored: [], sent: [], up: true };
    this.members.set(id, m);
    return m;
  }

  private newNode(id: ReplicaId, storage: MemoryRaftStorage): RaftNode {
    const { learners: _l, seed: _s, storages: _st, ...rest } = this.options;
    return new RaftNode({ electionTick: 10, heartbeatTick: 1, ...rest, id, storage, random: this.rng.fork() });
  }

  member(id: string): Member {
    const m = this.members.get(replicaId(id));
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: string): RaftNode {
    return this.member(id).node;
  }

  /** Processes one Ready of one replica: persist, queue messages, apply. */
  processReady(id: ReplicaId): Ready | undefined {
    const m = this.members.get(id);
    if (m === undefined || !m.up || !m.node.hasReady()) return undefined;
    const rd = m.node.ready();
    if (rd.snapshot !== undefined) {
      m.storage.applySnapshot(rd.snapshot);
      m.restored.push(rd.snapshot);
    }
    m.storage.append(rd.entries);
    if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
    for (const msg of rd.messages) {
      m.sent.push(msg);
      this.mailbox.push(msg);
    }
    m.applied.push(...rd.committedEntries);
    m.readStates.push(...rd.readStates);
    m.node.advance(rd);
    return rd;
  }

  /** Persists every pending Ready without delivering anything. */
  flush(): void {
    let busy = true;
    while (busy) {
      busy = false;
      for (const id of this.members.keys()) if (this.processReady(id) !== undefined) busy = true;
    }
  }

  /** Takes the queued messages (after `flush`) without delivering them. */
  takeMessages(): Message[] {
    this.flush();
    const out = this.mailbox;
    this.mailbox = [];
    return out;
  }

  /** Delivers one message (if its link is up), as the network would. */
  deliver(msg: Message): void {
    if (this.cut.has(`${msg.from}>${msg.to}`)) return;
    if (this.filter !== undefined && !this.filter(msg)) return;
    const to = this.members.get(msg.to);
    if (to === undefined || !to.up) return;
    to.node.step(msg);
  }

  /** Processes Readys and delivers messages until nothing is left to do. */
  stabilize(): void {
    for (let round = 0; round < DELIVERY_ROUNDS_MAX; round++) {
      this.flush();
      if (this.mailbox.length === 0) return;
      const batch = this.mailbox;
      this.mailbox = [];
      for (const msg of batch) this.deliver(msg);
    }
    throw new Error('cluster did not stabilize');
  }

  /** Ticks one replica (or all) `n` times, stabilizing after each tick. */
  tick(ids: string | readonly string[] | 'all', n = 1): void {
    const list = ids === 'all' ? [...this.members.keys()] : (typeof ids === 'string' ? [ids] : ids).map(replicaId);
    for (let i = 0; i < n; i++) {
      for (const id of list) {
        const m = this.members.get(id);
        if (m?.up) m.node.tick();
      }
      this.stabilize();
    }
  }

  /** Makes `id` campaign and lets the election finish. */
  elect(id: string): void {
    this.node(id).campaign();
    this.stabilize();
  }

  /** Cuts both directions between `id` and every other replica. */
  isolate(id: string): void {
    for (const other of this.members.keys()) {
      if (other === id) continue;
      this.cutLink(id, other);
      this.cutLink(other, id);
    }
  }

  cutLink(from: string, to: string): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
    this.filter = undefined;
  }

  /** Loses the replica's volatile state; its storage (what was persisted) survives. */
  crash(id: string): void {
    this.member(id).up = false;
  }

  restart(id: string): void {
    const m = this.member(id);
    m.node = this.newNode(replicaId(id), m.storage);
    m.applied = [];
    m.up = true;
  }

  leader(): ReplicaId | undefined {
    for (const [id, m] of this.members) if (m.up && m.node.status().softState.role === 'leader') return id;
    return undefined;
  }

  /** Data of the non-empty normal entries a replica applied, decoded as UTF-8. */
  appliedData(id: string): string[] {
    const dec = new TextDecoder();
    return this.member(id)
      .applied.filter((e) => e.type === 'normal' && e.data.byteLength > 0)
      .map((e) => (e.type === 'normal' ? dec.decode(e.data) : ''));
  }
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
