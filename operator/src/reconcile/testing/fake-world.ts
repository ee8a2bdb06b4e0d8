/**
 * A tiny in-memory "Kubernetes + kubelet" for the pure core's tests: applies the core's actions
 * to pods/volumes/children and lets a test make pods ready, delete them, or lose volumes.
 */
import { ANNOTATIONS, FINALIZER, LABELS } from '../../api/constants.ts';
import type { KeyVaCluster, KeyVaClusterSpec } from '../../api/keyva-cluster.ts';
import { hashOf } from '../manifests.ts';
import { reconcile } from '../reconcile.ts';
import type { Action, ChildView, MemberProbe, Observed, PodView, PvcView, ReconcileResult, RemovedPvcView } from '../types.ts';

export function cluster(spec: Partial<KeyVaClusterSpec> = {}, meta: Partial<KeyVaCluster['metadata']> = {}): KeyVaCluster {
  return {
    apiVersion: 'keyva.io/v1alpha1',
    kind: 'KeyVaCluster',
    metadata: { name: 'kv', namespace: 'ns', uid: 'uid-1', generation: 1, resourceVersion: '1', finalizers: [FINALIZER], ...meta },
    spec,
  };
}

export class FakeWorld {
  cluster: KeyVaCluster;
  pods = new Map<string, PodView & { image: string }>();
  pvcs = new Map<string, PvcView>();
  children = new Map<string, ChildView>();
  probes = new Map<string, MemberProbe>();
  partitionMap: Observed['partitionMap'];
  dataPlane: Observed['dataPlane'];
  /** Volumes of removed members (label keyva.io/removed-member), kept by name. */
  removedPvcs = new Map<string, RemovedPvcView>();
  now = Date.UTC(2026, 0, 1);
  private uid = 0;
  private suffix = 0;
  readonly log: Action[] = [];
  /** Pods become ready as soon as they exist (a healthy kubelet). */
  autoReady = true;
  lastError: string | undefined;

  constructor(c: KeyVaCluster) {
    this.cluster = c;
  }

  observed(): Observed {
    const suffixes = Array.from({ length: 8 }, (_, i) => this.suffixAt(this.suffix + i));
    return {
      pods: [...this.pods.values()],
      pvcs: [...this.pvcs.values()],
      removedPvcs: [...this.removedPvcs.values()],
      children: [...this.children.values()],
      probes: [...this.probes.values()],
      partitionMap: this.partitionMap,
      dataPlane: this.dataPlane,
      freshSuffixes: suffixes,
      lastError: this.lastError,
    };
  }

  private suffixAt(i: number): string {
    const a = 'bcdfghjklmnpqrstvwxz';
    return `${a[Math.floor(i / 400) % 20]}${a[Math.floor(i / 20) % 20]}${a[i % 20]}xx`;
  }

  /** One pass of the core, then its actions and status applied to the world. */
  step(): ReconcileResult {
    const r = reconcile(this.cluster, this.observed(), this.now);
    this.apply(r);
    this.now += 1000;
    return r;
  }

  /** Steps until nothing is left to do (or `max` passes). */
  settle(max = 20): ReconcileResult {
    let r = this.step();
    for (let i = 1; i < max && r.actions.some((a) => a.type !== 'event'); i++) r = this.step();
    return r;
  }

  apply(r: ReconcileResult): void {
    for (const a of r.actions) {
      this.log.push(a);
      switch (a.type) {
        case 'addFinalizer':
          this.cluster.metadata.finalizers = [...a.finalizers, FINALIZER];
          break;
        case 'removeFinalizer':
          this.cluster.metadata.finalizers = a.finalizers.filter((f) => f !== FINALIZER);
          break;
        case 'apply': {
          const o = a.object;
          const hash = hashOf(o);
          if (o.kind === 'Pod') {
            const memberId = o.metadata.labels?.[LABELS.member] as string;
            if (this.pods.has(o.metadata.name)) break; // SSA onto an existing pod: the core must not rely on it
            const spec = o.spec as { containers: { image: string }[] };
            this.pods.set(o.metadata.name, {
              name: o.metadata.name,
              uid: `pod-${++this.uid}`,
              memberId,
              phase: this.autoReady ? 'Running' : 'Pending',
              ready: this.autoReady,
              podIP: `127.0.0.${this.uid % 250}`,
              image: spec.containers[0]?.image as string,
              specHash: hash,
              deleting: false,
            });
          } else if (o.kind === 'PersistentVolumeClaim') {
            const memberId = o.metadata.labels?.[LABELS.member] as string;
            const prev = this.pvcs.get(o.metadata.name);
            const owned = (o.metadata.ownerReferences ?? []).some((x) => x.uid === this.cluster.metadata.uid);
            const removedId = o.metadata.labels?.[LABELS.removedMember];
            if (memberId === undefined && removedId !== undefined) {
              // No longer a member's volume: a removed member's, kept.
              this.pvcs.delete(o.metadata.name);
              const was = this.removedPvcs.get(o.metadata.name);
              this.removedPvcs.set(o.metadata.name, {
                name: o.metadata.name,
                uid: was?.uid ?? prev?.uid ?? `pvc-${++this.uid}`,
                memberId: removedId,
                deleting: false,
                ownedByCluster: owned,
                removedAt: o.metadata.annotations?.[ANNOTATIONS.removedAt],
              });
              break;
            }
            this.pvcs.set(o.metadata.name, {
              name: o.metadata.name,
              uid: prev?.uid ?? `pvc-${++this.uid}`,
              memberId,
              deleting: false,
              ownedByCluster: owned,
              specHash: hash,
              creationTimestamp: new Date(this.now).toISOString(),
            });
          } else {
            const key = `${o.kind}/${o.metadata.name}`;
            this.children.set(key, {
              kind: o.kind,
              name: o.metadata.name,
              uid: this.children.get(key)?.uid ?? `c-${++this.uid}`,
              specHash: hash,
              deleting: false,
            });
          }
          break;
        }
        case 'delete':
          if (a.kind === 'Pod') {
            const p = this.pods.get(a.name);
            if (p && p.uid === a.uid) this.pods.delete(a.name); // a kubelet that stops at once
          } else {
            const v = this.pvcs.get(a.name);
            if (v && v.uid === a.uid) this.pvcs.delete(a.name);
            const r = this.removedPvcs.get(a.name);
            if (r && r.uid === a.uid) this.removedPvcs.delete(a.name);
          }
          break;
        case 'releasePvc': {
          const v = this.pvcs.get(a.name);
          if (v) this.pvcs.set(a.name, { ...v, ownedByCluster: false });
          const r = this.removedPvcs.get(a.name);
          if (r) this.removedPvcs.set(a.name, { ...r, ownedByCluster: false });
          break;
        }
        case 'event':
          break;
      }
    }
    if (r.status) this.cluster = { ...this.cluster, status: r.status };
    if (this.autoReady) for (const [k, p] of this.pods) if (!p.deleting) this.pods.set(k, { ...p, phase: 'Running', ready: true });
  }

  setSpec(spec: Partial<KeyVaClusterSpec>): void {
    this.cluster = {
      ...this.cluster,
      spec: { ...this.cluster.spec, ...spec },
      metadata: { ...this.cluster.metadata, generation: (this.cluster.metadata.generation ?? 0) + 1 },
    };
  }

  annotate(key: string, value: string): void {
    this.cluster = { ...this.cluster, metadata: { ...this.cluster.metadata, annotations: { ...(this.cluster.metadata.annotations ?? {}), [key]: value } } };
  }

  memberIds(): string[] {
    return (this.cluster.status?.members ?? []).map((m) => m.id);
  }

  markDeleted(): void {
    this.cluster = { ...this.cluster, metadata: { ...this.cluster.metadata, deletionTimestamp: new Date(this.now).toISOString() } };
  }
}

export const APPROVE = ANNOTATIONS.approveReplaceMembers;
