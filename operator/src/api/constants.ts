/** Names shared by the CRDs, the reconcile core, the executor, the chart and the tests. */

export const GROUP = 'keyva.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const CLUSTER_KIND = 'KeyVaCluster';
export const CLUSTER_PLURAL = 'keyvaclusters';
export const CLUSTER_SINGULAR = 'keyvacluster';
export const CLUSTER_SHORT_NAMES = ['kvc'] as const;

/** The one field manager for every server-side apply and patch the operator makes. */
export const FIELD_MANAGER = 'keyva-operator';
/** Added to each KeyVaCluster so its deletion runs the deletion policy first. */
export const FINALIZER = 'keyva.io/cluster-protection';

export const LABELS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  cluster: 'keyva.io/cluster',
  member: 'keyva.io/member',
  /** On the volume of a member the data plane removed (scale-down), instead of `member`: its member id. Never adopted as a member again. */
  removedMember: 'keyva.io/removed-member',
} as const;

export const ANNOTATIONS = {
  /** Hash of the desired child (for a pod: everything that shapes it; a pod with another hash is rolled). */
  specHash: 'keyva.io/spec-hash',
  /** On the PVC of a member that was drained and removed (scale-down): <cluster>/<member id>. */
  removedMember: 'keyva.io/removed-member',
  /**
   * On the PVC of a removed member: when the operator first kept it (RFC 3339). Under deletionPolicy
   * Delete it is deleted `spec.storage.retainRemovedVolumesFor` after this; under Retain never.
   */
  removedAt: 'keyva.io/removed-at',
  /** On a PVC kept by deletionPolicy Retain: uid of the KeyVaCluster it belonged to. */
  retainedFrom: 'keyva.io/retained-from-uid',
  /**
   * Human approval, on the KeyVaCluster: comma-separated member ids whose volume is gone and
   * that may be replaced by new, empty members (their data is abandoned). See docs/operations.md.
   */
  approveReplaceMembers: 'keyva.io/approve-replace-members',
  /**
   * Human approval, on the KeyVaCluster: a partition id or `meta`, the Raft group whose lost quorum
   * the operator may force down to its survivors (unsafe; docs/operations.md, "Lost quorum").
   */
  approveUnsafeRecovery: 'keyva.io/approve-unsafe-recovery',
} as const;

export const MANAGED_BY = 'keyva-operator';
export const APP_NAME = 'keyva';
export const NODE_COMPONENT = 'node';

/** Ports and paths inside a member pod. */
export const NODE_GRPC_PORT = 7379;
export const NODE_HTTP_PORT = 7380;
/** The node's snapshot socket (SST-file snapshots between members, ADR 0014). */
export const NODE_SNAPSHOT_PORT = 7381;
export const NODE_DATA_DIR = '/var/lib/keyva';
export const NODE_CONFIG_DIR = '/etc/keyva';
export const NODE_CONFIG_FILE = 'node.json';

export const DEFAULT_NODE_IMAGE = 'ghcr.io/keyva/keyva-node:0.1.0';
