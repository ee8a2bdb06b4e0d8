/**
 * Small builders for message-level tests of one replica: a storage with a given log, a node
 * on it, and a `drain` that plays the driver (persist, collect messages, apply, advance).
 */
import { confState } from '../conf-change.ts';
import { MemoryRaftStorage } from '../memory-storage.ts';
import { type Message, message } from '../messages.ts';
import { Prng } from '../prng.ts';
import type { RaftConfig } from '../raft.ts';
import { RaftNode } from '../raw-node.ts';
import { bootstrapSnapshot, type Entry, type HardState, type Index, type ReadState, type ReplicaId, replicaId, type Term } from '../types.ts';

export const A = replicaId('a');
export const B = replicaId('b');
export const C = replicaId('c');
export const D = replicaId('d');
export const E = replicaId('e');

/** Normal entries from [index, term] pairs; data is `e<index>@<term>`. */
export function entries(...spec: readonly (readonly [Index, Term])[]): Entry[] {
  return spec.map(([index, term]) => ({ type: 'normal', index, term, data: new TextEncoder().encode(`e${index}@${term}`) }));
}

/** Entries index from..to (inclusive), all of `term`. */
export function run(from: Index, to: Index, term: Term): Entry[] {
  const out: [Index, Term][] = [];
  for (let i = from; i <= to; i++) out.push([i, term]);
  return entries(...out);
}

/** A founding member's storage (bootstrap snapshot at index 1) with `log` after it. */
export function storageWith(
  voters: readonly ReplicaId[],
  hardState: Partial<HardState> = {},
  log: readonly Entry[] = [],
  learners: readonly ReplicaId[] = [],
): MemoryRaftStorage {
  return new MemoryRaftStorage({
    hardState: { term: hardState.term ?? 1, vote: hardState.vote, commit: hardState.commit ?? 1 },
    snapshot: bootstrapSnapshot(confState(voters, learners)),
    entries: log,
  });
}

export type NodeOptions = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

export function newNode(id: ReplicaId, storage: MemoryRaftStorage, options: NodeOptions = {}): RaftNode {
  return new RaftNode({ electionTick: 10, heartbeatTick: 1, random: new Prng(7), ...options, id, storage });
}

export interface Drained {
  messages: Message[];
  committed: Entry[];
  readStates: ReadState[];
}

/** Plays the driver until the node has nothing left to do. */
export function drain(node: RaftNode, storage: MemoryRaftStorage): Drained {
  const out: Drained = { messages: [], committed: [], readStates: [] };
  while (node.hasReady()) {
    const rd = node.ready();
    if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    out.messages.push(...rd.messages);
    out.committed.push(...rd.committedEntries);
    out.readStates.push(...rd.readStates);
    node.advance(rd);
  }
  return out;
}

export { message };
