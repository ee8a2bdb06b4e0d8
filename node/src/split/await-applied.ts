/**
 * How a `SplitPartition` / `MergePartitions` call waits to see its change applied on the node
 * that answers: it polls, nudging the reconciler in between (which proposes what is due), until
 * the change shows, the wait is over, or waiting makes no sense any more (the group left this
 * node, or the coordinator stops or drains).
 */
export interface AwaitApplied {
  /** The change shows on this node. */
  applied(): boolean;
  /** Stop waiting now (answer `applied: false`). */
  gone(): boolean;
  /** Runs a reconcile pass soon. */
  nudge(): void;
  readonly waitMs: number;
  readonly pollMs: number;
}

/** True once `applied()` holds; false after `waitMs` or as soon as `gone()`. */
export async function awaitApplied(o: AwaitApplied): Promise<boolean> {
  const until = Date.now() + o.waitMs;
  while (!o.gone()) {
    if (o.applied()) return true;
    if (Date.now() >= until) return false;
    o.nudge();
    await new Promise<void>((resolve) => setTimeout(resolve, o.pollMs));
  }
  return false;
}
