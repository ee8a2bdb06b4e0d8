/**
 * Rate limits for replica moves, counted from the observation (so a restarted controller sees
 * the same numbers): a move is in flight while its partition has a learner or a voter surplus.
 * The per-minute start limit is counted from the controller's history (a restart forgets it:
 * damping only, never safety).
 */
import type { NodeId } from './types.ts';

export class MoveBudget {
  readonly clusterMax: number;
  readonly perNodeMax: number;
  private inFlight = 0;
  private readonly perNode = new Map<NodeId, number>();
  /** New non-repair moves that may still start in this plan (the per-minute limit). */
  private startsLeft: number;

  constructor(clusterMax: number, perNodeMax: number, startsLeft = Number.POSITIVE_INFINITY) {
    this.clusterMax = clusterMax;
    this.perNodeMax = perNodeMax;
    this.startsLeft = startsLeft;
  }

  get movesInFlight(): number {
    return this.inFlight;
  }

  /** Records a move (already running or just started) and the nodes taking part in it. */
  count(nodes: readonly NodeId[]): void {
    this.inFlight += 1;
    for (const n of new Set(nodes)) this.perNode.set(n, (this.perNode.get(n) ?? 0) + 1);
  }

  /** May a new move start? Repairs of partitions below RF skip the cluster-wide limits only. */
  canStart(nodes: readonly NodeId[], repair: boolean): boolean {
    if (!repair && (this.inFlight >= this.clusterMax || this.startsLeft <= 0)) return false;
    return nodes.every((n) => (this.perNode.get(n) ?? 0) < this.perNodeMax);
  }

  /** Records a NEW move starting now (and, unless a repair, spends one of the per-minute starts). */
  start(nodes: readonly NodeId[], repair: boolean): void {
    this.count(nodes);
    if (!repair) this.startsLeft -= 1;
  }
}
