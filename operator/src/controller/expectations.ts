/**
 * Write expectations (client-go ControllerExpectations, keyed by resourceVersion): after the
 * executor writes, the next pass over that cluster waits until the informer caches reflect the
 * write — otherwise a stale cache could make the core create a second member, or recompute a
 * condition from an old status. Pure with an injected clock; a deadline stops a lost event from
 * blocking a cluster forever.
 */

export interface ObjectRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface CachedMeta {
  readonly uid?: string | undefined;
  readonly resourceVersion?: string | undefined;
  readonly deletionTimestamp?: string | undefined;
}

type Expectation = ObjectRef & {
  /** Wait until the cache holds this resourceVersion (after a create/update). */
  readonly resourceVersion?: string | undefined;
  /** Wait until the object with this uid is gone or terminating (after a delete). */
  readonly goneUid?: string | undefined;
  readonly deadline: number;
  satisfied: boolean;
};

export class Expectations {
  private readonly byKey = new Map<string, Expectation[]>();
  /**
   * Versions the informers delivered recently (insertion-ordered, pruned by age and size): a
   * watch event can arrive before the write's own response, i.e. before the expectation exists.
   */
  private readonly recent = new Map<string, number>();
  private readonly recentMax: number;
  private readonly now: () => number;
  private readonly timeoutMs: number;

  constructor(now: () => number, timeoutMs = 15_000, recentMax = 8192) {
    this.now = now;
    this.timeoutMs = timeoutMs;
    this.recentMax = recentMax;
  }

  expectVersion(key: string, ref: ObjectRef, resourceVersion: string): void {
    if (this.recent.has(recentKey(ref.kind, ref.namespace, ref.name, resourceVersion))) return; // already delivered
    this.push(key, { ...ref, resourceVersion, deadline: this.now() + this.timeoutMs, satisfied: false });
  }

  expectGone(key: string, ref: ObjectRef, uid: string): void {
    this.push(key, { ...ref, goneUid: uid, deadline: this.now() + this.timeoutMs, satisfied: false });
  }

  private push(key: string, e: Expectation): void {
    const list = (this.byKey.get(key) ?? []).filter((x) => !(x.kind === e.kind && x.namespace === e.namespace && x.name === e.name));
    list.push(e);
    this.byKey.set(key, list);
  }

  /** Informer events: an event carrying the expected version satisfies it even if the cache moved on since. */
  observe(kind: string, namespace: string, name: string, meta: CachedMeta, deleted: boolean): void {
    if (meta.resourceVersion) this.remember(recentKey(kind, namespace, name, meta.resourceVersion));
    for (const list of this.byKey.values()) {
      for (const e of list) {
        if (e.satisfied || e.kind !== kind || e.namespace !== namespace || e.name !== name) continue;
        if (e.resourceVersion !== undefined && meta.resourceVersion === e.resourceVersion) e.satisfied = true;
        if (e.goneUid !== undefined && meta.uid === e.goneUid && (deleted || meta.deletionTimestamp)) e.satisfied = true;
      }
    }
  }

  /**
   * True when every expectation of `key` is met by the caches (or expired). `lookup` reads the
   * current cached object. Met and expired expectations are dropped.
   */
  settled(key: string, lookup: (ref: ObjectRef) => CachedMeta | undefined): boolean {
    const list = this.byKey.get(key);
    if (!list) return true;
    const now = this.now();
    const open = list.filter((e) => {
      if (e.satisfied || now >= e.deadline) return false;
      const cur = lookup(e);
      if (e.resourceVersion !== undefined) return cur?.resourceVersion !== e.resourceVersion;
      return cur !== undefined && cur.uid === e.goneUid && !cur.deletionTimestamp;
    });
    if (open.length) this.byKey.set(key, open);
    else this.byKey.delete(key);
    return open.length === 0;
  }

  private remember(k: string): void {
    const now = this.now();
    this.recent.delete(k);
    this.recent.set(k, now);
    for (const [old, at] of this.recent) {
      if (this.recent.size <= this.recentMax && now - at < this.timeoutMs) break;
      this.recent.delete(old);
    }
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }

  pending(key: string): number {
    return this.byKey.get(key)?.length ?? 0;
  }
}

function recentKey(kind: string, namespace: string, name: string, rv: string): string {
  return `${kind}/${namespace}/${name}@${rv}`;
}
