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

/**
 * The volume of a member the data plane removed (label `keyva.io/removed-member` instead of
 * `keyva.io/member`): kept for a grace period, never adopted as a member again.
 */
export interface RemovedPvcView {
  readonly name: string;
  readonly uid: string;
  readonly memberId: string;
  readonly deleting: boolean;
  readonly ownedByCluster: boolean;
  /** Annotation `keyva.io/removed-at` (RFC 3339); missing or unreadable: the clock has not started. */
  readonly removedAt?: string | undefined;
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
  /**
   * Raft groups seen without a leader, and since when (the loop's clock, ms): the meta group when
   * the members that answer all report no meta leader; a partition when no replica answers as
   * its leader. Absent or empty: every group observed has a leader.
   */
  readonly noLeader?: readonly LeaderlessGroup[] | undefined;
}

/** A Raft group without a leader: `'meta'` or a partition id. */
export interface LeaderlessGroup {
  readonly group: 'meta' | number;
  readonly sinceMs: number;
}

/** Settings of the pure core that are not observations. */
export interface ReconcileOptions {
  /** How long a group may stay without a leader before status reports `Degraded=QuorumLost` (default 60 s). */
  readonly quorumLossGraceMs?: number | undefined;
}

export interface Observed {
  readonly pods: readonly PodView[];
  readonly pvcs: readonly PvcView[];
  /** Volumes of removed members still kept (absent: none). */
  readonly removedPvcs?: readonly RemovedPvcView[] | undefined;
  readonly children: readonly ChildView[];
  readonly probes: readonly MemberProbe[];
  readonly partitionMap?: PartitionMapView | undefined;
  /** Random suffixes for new member ids (randomness is injected: the core stays deterministic). */
  readonly freshSuffixes: readonly string[];
  /** Failure zone per member id (from its pod's Kubernetes node); absent or partial when unknown. */
  readonly memberZones?: Readonly<Record<string, string>> | undefined;
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

/**
 * What the cluster's placement control loop aims for, from the KeyVaCluster spec: RF, the members
 * being scaled away (drained in this order), zones and the rebalance and split policy. Plain data
 * in CRD terms; `operator/src/kube/data-plane-loops.ts` turns it into the planner's spec.
 */
export interface PlacementTarget {
  readonly replicationFactor: number;
  readonly decommission: readonly string[];
  /** spec.topology.spread. */
  readonly zoneSpread: 'preferred' | 'required';
  /** Failure zone of each member (its Kubernetes node's `spec.topology.zoneKey` label), where known. */
  readonly zones: Readonly<Record<string, string>>;
  readonly rebalance: {
    readonly enabled: boolean;
    readonly movesPerMinuteMax: number;
    readonly movesInFlightMax: number;
    readonly leaderBalance: boolean;
  };
  readonly split: {
    readonly auto: boolean;
    readonly splitBytes: number;
    readonly mergeBytes: number;
    readonly splitsPerMinuteMax: number;
    readonly cooldownMs: number;
  };
}

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
  readonly placement?: PlacementTarget | undefined;
}
