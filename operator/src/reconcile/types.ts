/**
 * Inputs and outputs of the pure reconcile core: what the executor observed (caches + data
 * plane), and what it must do (ordered actions + the status to report).
 */
import type { KeyVaClusterStatus } from '../api/keyva-cluster.ts';

/** A member pod as the cache shows it. */
export interface PodView {
  readonly name: string;
  readonly uid: string;
  readonly memberId: string;
  /** core/v1 PodPhase. */
  readonly phase: string;
  readonly ready: boolean;
  readonly podIP?: string | undefined;
  readonly image?: string | undefined;
  readonly specHash?: string | undefined;
  readonly deleting: boolean;
}

export interface PvcView {
  readonly name: string;
  readonly uid: string;
  readonly memberId: string;
  readonly deleting: boolean;
  /** Has an owner reference to this KeyVaCluster (uid). */
  readonly ownedByCluster: boolean;
  readonly specHash?: string | undefined;
  readonly creationTimestamp?: string | undefined;
}

/** Any other child (ConfigMap, Service, PodDisruptionBudget). */
export interface ChildView {
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly specHash?: string | undefined;
  readonly deleting: boolean;
}

/** A fresh answer from a member's node process (GET /v1/node on its pod IP), keyed by member id. */
export interface MemberProbe {
  readonly memberId: string;
  readonly reachable: boolean;
  /** The node id the process reports: must equal the member id (LESSONS #3). */
  readonly nodeId?: string | undefined;
  /** Partition replicas the node hosts. */
  readonly partitionsHosted?: number | undefined;
  readonly error?: string | undefined;
}

/** The partition map one member serves (GET /v1/partitions). */
export interface PartitionMapView {
  readonly source: string;
  readonly epoch: number;
  readonly partitions: readonly { readonly id: number; readonly replicas: readonly string[] }[];
}

/** A node as the data plane's registry has it (the placement control loop's latest observation). */
export interface DataPlaneNode {
  readonly id: string;
  readonly state: 'active' | 'draining' | 'removed';
  /** Replicas the node reports hosting (its own answer; for a draining node, counted per partition). */
  readonly replicasHosted?: number | undefined;
  /** Partitions it leads, as the partition leaders report. */
  readonly leaderOf: number;
}

/** What the cluster's placement control loop saw last (undefined until it observed once). */
export interface DataPlaneView {
  readonly nodes: readonly DataPlaneNode[];
  /** Something is moving: replicas, a draining node. */
  readonly changing: boolean;
  readonly movesDone: number;
  readonly movesTotal: number;
  readonly blockers: readonly { readonly code: string; readonly message: string; readonly nodeId?: string | undefined }[];
  readonly error?: string | undefined;
}

export interface Observed {
  readonly pods: readonly PodView[];
  readonly pvcs: readonly PvcView[];
  readonly children: readonly ChildView[];
  readonly probes: readonly MemberProbe[];
  readonly partitionMap?: PartitionMapView | undefined;
  /** Random suffixes for new member ids (randomness is injected: the core stays deterministic). */
  readonly freshSuffixes: readonly string[];
  /** The placement control loop's view (undefined: no loop yet, or it has not observed). */
  readonly dataPlane?: DataPlaneView | undefined;
  /** The error of the previous pass over this cluster, if it failed. */
  readonly lastError?: string | undefined;
  /** Identity of the operator instance (for event messages). */
  readonly operatorVersion?: string | undefined;
}

export interface KubeManifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

interface Described {
  /** Event reason (CamelCase), recorded for every action. */
  readonly reason: string;
  readonly message: string;
}

export type Action =
  | ({ readonly type: 'addFinalizer'; readonly finalizers: readonly string[]; readonly resourceVersion: string } & Described)
  | ({ readonly type: 'removeFinalizer'; readonly finalizers: readonly string[] } & Described)
  | ({ readonly type: 'apply'; readonly object: KubeManifest } & Described)
  | ({
      readonly type: 'delete';
      readonly kind: 'Pod' | 'PersistentVolumeClaim';
      readonly name: string;
      readonly uid: string;
      /** A member pod whose partition leaderships move away first (bounded; then deleted anyway, with an event). */
      readonly transferLeadersFirst?: boolean | undefined;
    } & Described)
  /** Keep a volume after the cluster is gone: drop owner references to the cluster, mark it retained. */
  | ({ readonly type: 'releasePvc'; readonly name: string; readonly uid: string; readonly ownerUid: string } & Described)
  | ({ readonly type: 'event'; readonly eventType: 'Normal' | 'Warning' } & Described);

export interface ReconcileResult {
  readonly actions: readonly Action[];
  /** Status to report; undefined = do not write (e.g. the object is about to disappear). */
  readonly status: KeyVaClusterStatus | undefined;
  /** Come back after this long even if nothing changes; undefined = only on events. */
  readonly requeueAfterMs: number | undefined;
  /**
   * What the cluster's placement control loop should aim for (undefined: no loop, e.g. deleting
   * or paused): its replication factor and the members being scaled away, drained in this order.
   */
  readonly placement?: { readonly replicationFactor: number; readonly decommission: readonly string[] } | undefined;
}
