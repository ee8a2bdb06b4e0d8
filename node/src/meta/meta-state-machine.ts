/**
 * The meta group's state machine content (`GroupContent`): keeps the `MetaState` in memory,
 * applies each committed meta command with `applyMetaCommand`, and persists the new state as
 * ONE record (`contentStateKey(0)`) in the same engine write as the group's applied state, so
 * after a crash the stored state and the applied index always match. A command that changes
 * nothing (refused, or an idempotent registration) writes only the applied state. Rewriting
 * the whole record per change is fine for maps of thousands of partitions (64 by default, ~130
 * bytes each); a much larger map would want one record per partition.
 *
 * Entries that carry no valid meta command (see `meta-codec.ts`) apply as no-ops on every
 * replica alike and are counted (`stats.invalidCommands`). Each applied command's result is kept
 * by entry index (the last `RESULTS_MAX`), for the proposer on this node to pick up.
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { Mutation, StorageEngine } from '../engine/types.ts';
import type { GroupContent } from '../replication/group-state-machine.ts';
import { contentStateKey, type GroupId } from '../replication/raft-keys.ts';
import type { ReplicatedCommand } from '../replication/replicated-command.ts';
import { decodeMetaState, encodeMetaState, metaCommandOf } from './meta-codec.ts';
import { applyMetaCommand, EMPTY_META_STATE, MetaRefusal, type MetaResult, type MetaState } from './meta-state.ts';

/** The meta group (ADR 0008 §1). */
export const META_GROUP: GroupId = 0;
/** Results kept for proposers, at most (the oldest are dropped). */
export const RESULTS_MAX = 1024;

export interface MetaStateMachineStats {
  commands: number;
  changes: number;
  refusals: number;
  invalidCommands: number;
  snapshotsInstalled: number;
  listenerErrors: number;
}

export type MetaListener = (state: MetaState) => void;

export class MetaStateMachine implements GroupContent {
  readonly stats: MetaStateMachineStats = { commands: 0, changes: 0, refusals: 0, invalidCommands: 0, snapshotsInstalled: 0, listenerErrors: 0 };
  private current: MetaState;
  private readonly key: Buffer;
  private readonly results = new Map<number, MetaResult>();
  private readonly listeners = new Set<MetaListener>();

  private constructor(group: GroupId, state: MetaState) {
    this.key = contentStateKey(group);
    this.current = state;
  }

  /** Loads the stored state (empty if none). */
  static async open(engine: StorageEngine, group: GroupId = META_GROUP): Promise<MetaStateMachine> {
    const raw = await engine.getRaw(contentStateKey(group));
    return new MetaStateMachine(group, raw === undefined ? EMPTY_META_STATE : decodeMetaState(raw));
  }

  /** The state as of the last entry submitted for apply (committed entries only). */
  get state(): MetaState {
    return this.current;
  }

  /** Calls `fn` with every new state (synchronously, in apply order; keep it cheap). Returns an unsubscribe. */
  onChange(fn: MetaListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The result of the command applied at `index`, once (it is forgotten when taken). */
  takeResult(index: number): MetaResult | undefined {
    const r = this.results.get(index);
    this.results.delete(index);
    return r;
  }

  apply(command: ReplicatedCommand, index: number): Mutation[] {
    this.stats.commands++;
    let result: MetaResult;
    let next = this.current;
    try {
      ({ state: next, result } = applyMetaCommand(this.current, metaCommandOf(command)));
    } catch (e) {
      // The same bytes fail the same way on every replica: a counted no-op keeps them equal.
      this.stats.invalidCommands++;
      const message = e instanceof KeyVaError ? e.message : String(e);
      result = { ok: false, reason: MetaRefusal.Invalid, message, epoch: this.current.epoch };
    }
    this.remember(index, result);
    if (!result.ok) this.stats.refusals++;
    if (next === this.current) return [];
    this.stats.changes++;
    this.set(next);
    return [{ type: 'rawPut', key: this.key, value: encodeMetaState(next) }];
  }

  snapshot(): Uint8Array {
    return encodeMetaState(this.current);
  }

  install(data: Uint8Array): Mutation[] {
    const state = decodeMetaState(data);
    this.stats.snapshotsInstalled++;
    this.set(state);
    return [state.epoch === 0n ? { type: 'rawDelete', key: this.key } : { type: 'rawPut', key: this.key, value: Buffer.from(data) }];
  }

  private set(state: MetaState): void {
    this.current = state;
    for (const fn of this.listeners) {
      try {
        fn(state);
      } catch {
        // A listener's bug must not stop the group (this runs inside the Ready loop).
        this.stats.listenerErrors++;
      }
    }
  }

  private remember(index: number, result: MetaResult): void {
    this.results.set(index, result);
    if (this.results.size > RESULTS_MAX) {
      const oldest = this.results.keys().next().value;
      if (oldest !== undefined) this.results.delete(oldest);
    }
  }
}
