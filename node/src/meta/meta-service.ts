/**
 * The meta API of a node: the partition map and node registry it serves and routes by, and the
 * internal entry point a placement controller calls to change them (`proposeMetaChange`). Two
 * implementations: `ReplicatedMeta` (the meta Raft group, `--peers`) and `LocalMeta` (a lone
 * node: the same state and commands, in memory, bootstrapped from the node's configuration).
 */
import { type NodeId, type PartitionInfo, PartitionMap } from '@keyva/client/keyspace';
import { decodeMetaCommand, encodeMetaCommand } from './meta-codec.ts';
import { applyMetaCommand, EMPTY_META_STATE, type MetaCommand, type MetaResult, type MetaState } from './meta-state.ts';

export interface ProposeMetaOptions {
  /**
   * On a node that does not lead the meta group: send the change to the leader (one hop) instead
   * of refusing it with NOT_LEADER. Default false.
   */
  readonly forward?: boolean;
}

export interface MetaService {
  /** The latest state this node applied (epoch 0: nothing bootstrapped yet). */
  readonly state: MetaState;
  /**
   * Proposes a change through the meta group. Resolves with the new epoch (`ok`), or a refusal
   * against the current map (`reason`: staleEpoch, unknownPartition, ...; nothing changed).
   * Rejects with a KeyVaError when it could not be decided here: NOT_LEADER (details
   * `leaderHint`, `leaderAddress`), UNAVAILABLE (no leader yet, stopping; nothing proposed), or
   * DEADLINE_EXCEEDED (proposed, outcome unknown: re-read the map), INVALID_ARGUMENT (malformed).
   */
  proposeMetaChange(command: MetaCommand, opts?: ProposeMetaOptions): Promise<MetaResult>;
  /** Resolves once this node's state includes every change committed before the call (ReadIndex). */
  readBarrier(): Promise<void>;
  /** Calls `fn` with every new state, synchronously (keep it cheap). Returns an unsubscribe. */
  onChange(fn: (state: MetaState) => void): () => void;
}

/**
 * The routing map of a state: partitions with `leaderOf(id)` as leader hint, nodes from the
 * registry (the node objects keep their registry `state`, which the Admin API reports).
 */
export function partitionMapOf(s: MetaState, leaderOf: (p: PartitionInfo['id']) => NodeId | undefined = () => undefined): PartitionMap {
  return new PartitionMap(
    s.epoch,
    s.partitions.map((p) => ({ id: p.id, start: p.start, end: p.end, generation: p.generation, replicas: p.replicas, leaderHint: leaderOf(p.id) })),
    s.nodes,
  );
}

/** A lone node's meta state: in memory, applied at once, same commands and refusals as the group. */
export class LocalMeta implements MetaService {
  private current: MetaState = EMPTY_META_STATE;
  private readonly listeners = new Set<(s: MetaState) => void>();

  get state(): MetaState {
    return this.current;
  }

  async proposeMetaChange(command: MetaCommand): Promise<MetaResult> {
    // Through the codec, so a lone node validates exactly like the meta group.
    const { state, result } = applyMetaCommand(this.current, decodeMetaCommand(encodeMetaCommand(command)));
    if (state !== this.current) {
      this.current = state;
      for (const fn of this.listeners) fn(state);
    }
    return result;
  }

  async readBarrier(): Promise<void> {}

  onChange(fn: (state: MetaState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
