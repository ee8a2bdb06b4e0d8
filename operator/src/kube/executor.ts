/**
 * Carries out the pure core's actions against the API server, in order, stopping at the first
 * failure: server-side apply under ONE field manager, deletes with a uid precondition,
 * finalizers by JSON patch with a `test` precondition (never replacing others' finalizers), and
 * one Event per action. Then writes the status (server-side apply on /status) if it changed.
 * Every write is recorded as an expectation so the next pass waits for the caches to catch up.
 */
import type { Logger } from 'pino';
import { ANNOTATIONS, FINALIZER } from '../api/constants.ts';
import type { KeyVaCluster } from '../api/keyva-cluster.ts';
import type { Expectations } from '../controller/expectations.ts';
import { statusChanged } from '../reconcile/status-diff.ts';
import type { Action, ReconcileResult } from '../reconcile/types.ts';
import type { EventRecorder } from './event-recorder.ts';
import { isConflict, isNotFound, isPreconditionFailed, type JsonPatchOp, type KubeClient, type KubeObject } from './kube-client.ts';
import { RESOURCES } from './resources.ts';

export interface ExecutorDeps {
  readonly client: KubeClient;
  readonly events: EventRecorder;
  readonly expectations: Expectations;
  readonly log: Logger;
  /** Checked before every write: a replica that lost its Lease must not write (fencing, best effort). */
  readonly isLeader: () => boolean;
  /**
   * Before a member pod is deleted for a rolling upgrade: move its partition leaderships away and
   * wait (bounded). Returns how many it led and how many it still leads.
   */
  readonly transferLeadersAway?: (key: string, memberId: string) => Promise<{ led: number; left: number }>;
}

export class NotLeaderError extends Error {
  constructor() {
    super('not the leader any more: write skipped');
    this.name = 'NotLeaderError';
  }
}

/** A precondition failed: our view was stale. Not an error worth a Degraded condition; retry soon. */
export class StaleViewError extends Error {
  constructor(what: string) {
    super(`stale view: ${what}`);
    this.name = 'StaleViewError';
  }
}

const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

export class Executor {
  private readonly d: ExecutorDeps;

  constructor(d: ExecutorDeps) {
    this.d = d;
  }

  /** Returns the number of writes done. */
  async execute(key: string, cluster: KeyVaCluster, result: ReconcileResult): Promise<number> {
    let writes = 0;
    for (const a of result.actions) {
      if (a.type === 'event') {
        await this.d.events.record(cluster, a.eventType, a.reason, a.message);
        continue;
      }
      this.fence();
      try {
        await this.one(key, cluster, a);
        writes++;
      } catch (e) {
        if (e instanceof StaleViewError) throw e;
        await this.d.events.record(cluster, 'Warning', 'ActionFailed', `${a.reason}: ${(e as Error).message}`);
        throw e;
      }
      this.d.log.info({ cluster: key, action: a.type, reason: a.reason, detail: a.message }, 'action');
      await this.d.events.record(cluster, a.type === 'delete' ? 'Warning' : 'Normal', a.reason, a.message);
    }
    if (result.status && statusChanged(cluster.status, result.status)) {
      this.fence();
      try {
        const out = await this.d.client.apply<KubeObject>(
          {
            apiVersion: cluster.apiVersion,
            kind: cluster.kind,
            metadata: { name: cluster.metadata.name, namespace: cluster.metadata.namespace },
            status: result.status,
          },
          { subresource: 'status' },
        );
        this.expectCluster(key, cluster, out);
        writes++;
      } catch (e) {
        if (isNotFound(e)) return writes; // deleted meanwhile
        throw e;
      }
    }
    return writes;
  }

  private fence(): void {
    if (!this.d.isLeader()) throw new NotLeaderError();
  }

  private expectCluster(key: string, cluster: KeyVaCluster, out: KubeObject | undefined): void {
    const rv = out?.metadata?.resourceVersion;
    if (rv) this.d.expectations.expectVersion(key, { kind: 'KeyVaCluster', namespace: cluster.metadata.namespace, name: cluster.metadata.name }, rv);
  }

  private async one(key: string, cluster: KeyVaCluster, a: Exclude<Action, { type: 'event' }>): Promise<void> {
    const { client, expectations } = this.d;
    const ns = cluster.metadata.namespace;
    switch (a.type) {
      case 'addFinalizer': {
        const ops: JsonPatchOp[] = [{ op: 'test', path: '/metadata/resourceVersion', value: a.resourceVersion }];
        if (a.finalizers.length === 0) ops.push({ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] });
        else ops.push({ op: 'test', path: '/metadata/finalizers', value: a.finalizers }, { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER });
        const out = await this.patchCluster(cluster, ops);
        this.expectCluster(key, cluster, out);
        return;
      }
      case 'removeFinalizer': {
        const i = a.finalizers.indexOf(FINALIZER);
        if (i < 0) return;
        const out = await this.patchCluster(cluster, [
          { op: 'test', path: `/metadata/finalizers/${i}`, value: FINALIZER },
          { op: 'remove', path: `/metadata/finalizers/${i}` },
        ]);
        this.expectCluster(key, cluster, out);
        return;
      }
      case 'apply': {
        const out = await client.apply<KubeObject>(a.object);
        const rv = out?.metadata?.resourceVersion;
        if (rv) expectations.expectVersion(key, { kind: a.object.kind, namespace: ns, name: a.object.metadata.name }, rv);
        return;
      }
      case 'delete': {
        const r = a.kind === 'Pod' ? RESOURCES.Pod : RESOURCES.PersistentVolumeClaim;
        if (a.kind === 'Pod' && a.transferLeadersFirst && this.d.transferLeadersAway) {
          const t = await this.d.transferLeadersAway(key, a.name);
          if (t.left > 0) {
            await this.d.events.record(
              cluster,
              'Warning',
              'LeaderTransferIncomplete',
              `${a.name} still leads ${t.left} of its ${t.led} partition(s) after the transfer deadline; restarting it anyway (those partitions elect a new leader)`,
            );
          } else if (t.led > 0) {
            await this.d.events.record(cluster, 'Normal', 'LeadersTransferred', `moved ${t.led} partition leadership(s) off ${a.name} before restarting it`);
          }
          this.fence();
        }
        try {
          await client.delete(r, ns, a.name, { uid: a.uid });
        } catch (e) {
          if (isNotFound(e)) return;
          if (isConflict(e)) throw new StaleViewError(`${a.kind} ${a.name} is not uid ${a.uid} any more`);
          throw e;
        }
        expectations.expectGone(key, { kind: a.kind, namespace: ns, name: a.name }, a.uid);
        return;
      }
      case 'releasePvc': {
        const pvc = await client.getOrUndefined<KubeObject>(RESOURCES.PersistentVolumeClaim, ns, a.name);
        if (!pvc || pvc.metadata?.uid !== a.uid) return;
        const ops: JsonPatchOp[] = [{ op: 'test', path: '/metadata/uid', value: a.uid }];
        const refs = pvc.metadata.ownerReferences ?? [];
        // Remove from the end so earlier indexes stay valid; each removal is preceded by a test.
        for (let i = refs.length - 1; i >= 0; i--) {
          if (refs[i]?.uid !== a.ownerUid) continue;
          ops.push({ op: 'test', path: `/metadata/ownerReferences/${i}/uid`, value: a.ownerUid }, { op: 'remove', path: `/metadata/ownerReferences/${i}` });
        }
        if (pvc.metadata.annotations) ops.push({ op: 'add', path: `/metadata/annotations/${escapePointer(ANNOTATIONS.retainedFrom)}`, value: a.ownerUid });
        else ops.push({ op: 'add', path: '/metadata/annotations', value: { [ANNOTATIONS.retainedFrom]: a.ownerUid } });
        try {
          const out = await client.jsonPatch<KubeObject>(RESOURCES.PersistentVolumeClaim, ns, a.name, ops);
          const rv = out?.metadata?.resourceVersion;
          if (rv) expectations.expectVersion(key, { kind: 'PersistentVolumeClaim', namespace: ns, name: a.name }, rv);
        } catch (e) {
          if (isPreconditionFailed(e)) throw new StaleViewError(`PersistentVolumeClaim ${a.name} changed`);
          throw e;
        }
        return;
      }
    }
  }

  private async patchCluster(cluster: KeyVaCluster, ops: JsonPatchOp[]): Promise<KubeObject | undefined> {
    try {
      return await this.d.client.jsonPatch<KubeObject>(RESOURCES.KeyVaCluster, cluster.metadata.namespace, cluster.metadata.name, ops);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      if (isPreconditionFailed(e)) throw new StaleViewError(`KeyVaCluster ${cluster.metadata.name} changed since it was read`);
      throw e;
    }
  }
}
