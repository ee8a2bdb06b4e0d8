/**
 * THE schema source of the KeyVaCluster custom resource: the CRD (crds/, charts/keyva/crds/,
 * written by operator/scripts/gen-crds.ts) and the operator's TypeScript types both come from here.
 */
import { DEFAULT_NODE_IMAGE } from './constants.ts';
import { DURATION_PATTERN } from './duration.ts';
import {
  applyDefaults,
  arr,
  bool,
  type CelRule,
  freeform,
  type Infer,
  int,
  intOneOf,
  map,
  obj,
  oneOf,
  optional,
  quantity,
  str,
  withDefault,
} from './schema-builder.ts';

const immutable = (what: string): CelRule => ({ rule: 'self == oldSelf', message: `${what} is immutable` });

export const NODES_MAX = 100;
export const PARTITIONS_MAX = 65536;
export const REPLICATION_FACTORS = [1, 3, 5] as const;
export const DELETION_POLICIES = ['Retain', 'Delete'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

const storage = obj(
  {
    size: withDefault(quantity({ description: 'Volume size per member. May grow (if the storage class allows expansion), never shrink.' }), '10Gi'),
    storageClassName: optional(str({ description: 'Storage class of the member volumes; immutable. Unset: the cluster default.' })),
    retainRemovedVolumesFor: withDefault(
      str({
        pattern: DURATION_PATTERN,
        description:
          'How long the volume of a member removed by a scale-down (drained, confirmed empty by the data plane) is kept before it is deleted, e.g. 24h, 90m. Applies under deletionPolicy Delete; under Retain such volumes are kept until a human deletes them. Kept volumes are listed in status.removedVolumes.',
      }),
      '24h',
    ),
  },
  {
    description: 'One PersistentVolumeClaim per member, named data-<member id>.',
    rules: [
      {
        rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
        message: 'storage.storageClassName is immutable',
      },
      { rule: 'quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0', message: 'storage.size may not shrink' },
    ],
  },
);

const resources = obj(
  {
    requests: optional(map(quantity())),
    limits: optional(map(quantity())),
  },
  { description: 'CPU and memory of each node container (core/v1 ResourceRequirements: requests, limits).' },
);

const topology = obj(
  {
    zoneKey: withDefault(str({ description: 'Node label that names a failure zone.', minLength: 1 }), 'topology.kubernetes.io/zone'),
    zones: optional(arr(str({ minLength: 1 }), { description: 'Zones members may run in; unset: any.', listType: 'set', maxItems: 16 })),
    spread: withDefault(
      oneOf(['Preferred', 'Required'], {
        description: 'Spread members across zones and hosts: Preferred (best effort) or Required (a member stays Pending rather than share).',
      }),
      'Preferred',
    ),
    nodeSelector: optional(map(str())),
    tolerations: optional(arr(freeform<Record<string, unknown>>(), { description: 'core/v1 Tolerations for member pods.', listType: 'atomic' })),
  },
  { description: 'Where members run.' },
);

const rebalance = obj(
  {
    enabled: withDefault(
      bool({
        description:
          'Move partition replicas to keep members balanced (e.g. onto a new member). false: replicas stay where they are; repairs below the replication factor and the drain of members being scaled away still move them.',
      }),
      true,
    ),
    movesPerMinuteMax: withDefault(
      int({ minimum: 1, maximum: 600, description: 'New replica moves started per minute (repairs below the replication factor are exempt).' }),
      60,
    ),
    movesInFlightMax: withDefault(int({ minimum: 1, maximum: 1024, description: 'Replica moves under way at once in the cluster.' }), 8),
    leaderBalance: withDefault(bool({ description: 'Spread partition leaders across members, damped.' }), true),
  },
  { description: 'Rebalancing policy (LESSONS #8, #13, #14), applied by the placement control loop.' },
);

const split = obj(
  {
    policy: withDefault(oneOf(['Auto', 'Manual'], { description: 'Auto: split on size and load; Manual: never split by itself.' }), 'Auto'),
    splitBytes: withDefault(int({ minimum: 1_048_576, description: 'Split a partition above this size.' }), 536_870_912),
    mergeBytes: withDefault(int({ minimum: 0, description: 'Merge neighbours whose combined size is below this.' }), 67_108_864),
    splitsPerMinuteMax: withDefault(int({ minimum: 1, maximum: 60 }), 2),
    cooldownSeconds: withDefault(int({ minimum: 0, maximum: 86_400, description: 'A partition is not split or merged again within this time.' }), 300),
  },
  {
    description:
      'Split and merge policy (LESSONS #13), applied by the placement control loop. Adjacent partitions on the same nodes merge when both are small and cold, never below 64 partitions.',
    rules: [{ rule: 'self.mergeBytes * 4 <= self.splitBytes', message: 'split.mergeBytes must be at most a quarter of split.splitBytes (hysteresis)' }],
  },
);

const observability = obj(
  {
    logLevel: withDefault(oneOf(LOG_LEVELS), 'info'),
    metrics: withDefault(obj({ enabled: withDefault(bool({ description: 'Annotate pods for Prometheus scraping of /metrics.' }), true) }), {}),
    tracing: withDefault(
      obj({
        otlpEndpoint: optional(str({ description: 'OTLP/HTTP endpoint of the collector (OTEL_EXPORTER_OTLP_ENDPOINT).' })),
        serviceName: withDefault(str({ minLength: 1 }), 'keyva-node'),
      }),
      {},
    ),
  },
  { description: 'Logs, metrics and traces of the nodes.' },
);

export const clusterSpecSchema = obj(
  {
    nodes: withDefault(int({ minimum: 1, maximum: NODES_MAX, description: 'Number of members (storage nodes).' }), 3),
    image: withDefault(str({ minLength: 1, description: 'Node image. Changing it rolls members one at a time.' }), DEFAULT_NODE_IMAGE),
    version: optional(str({ description: 'KeyVa version the image contains (informational; shown in status).' })),
    imagePullPolicy: withDefault(oneOf(['Always', 'IfNotPresent', 'Never']), 'IfNotPresent'),
    partitions: withDefault(
      int({
        minimum: 1,
        maximum: PARTITIONS_MAX,
        description: 'Partitions at creation; immutable (splits and merges change them later).',
        rules: [immutable('partitions')],
      }),
      64,
    ),
    replicationFactor: withDefault(
      intOneOf(REPLICATION_FACTORS, {
        description: 'Replicas per partition. Immutable for now (changing it needs data movement).',
        rules: [immutable('replicationFactor')],
      }),
      3,
    ),
    storage: withDefault(storage, {}),
    resources: optional(resources),
    topology: withDefault(topology, {}),
    rebalance: withDefault(rebalance, {}),
    split: withDefault(split, {}),
    observability: withDefault(observability, {}),
    deletionPolicy: withDefault(
      oneOf(DELETION_POLICIES, {
        description: 'On deletion of the KeyVaCluster: Retain keeps every member volume (default), Delete removes them.',
      }),
      'Retain',
    ),
    pause: withDefault(bool({ description: 'Stop acting on this cluster (status is still reported).' }), false),
  },
  {
    description: 'Desired state of a KeyVa cluster.',
    rules: [{ rule: 'self.replicationFactor <= self.nodes', message: 'replicationFactor cannot exceed nodes', fieldPath: '.replicationFactor' }],
  },
);

export const CONDITION_TYPES = ['Ready', 'Progressing', 'Degraded'] as const;
export const PHASES = ['Creating', 'Running', 'Scaling', 'Upgrading', 'Recovering', 'Blocked', 'Paused', 'Deleting'] as const;
export const OPERATION_TYPES = ['Create', 'ScaleUp', 'ScaleDown', 'RollingUpgrade', 'ReplaceMember', 'Delete'] as const;
export const MEMBER_STATES = ['Pending', 'Running', 'Ready', 'Terminating', 'VolumeLost'] as const;
export const PLACEMENT_STATES = ['Idle', 'Moving', 'Blocked', 'Unreachable', 'Unknown', 'Paused'] as const;

const condition = obj({
  type: str({ minLength: 1 }),
  status: oneOf(['True', 'False', 'Unknown']),
  observedGeneration: optional(int({ minimum: 0 })),
  lastTransitionTime: str({ format: 'date-time' }),
  reason: str({ minLength: 1 }),
  message: optional(str()),
});

const member = obj({
  id: str({ description: 'Durable KeyVa node id (also the pod name and --node-id); never derived from an ordinal or an IP.' }),
  pvc: str(),
  state: oneOf(MEMBER_STATES),
  ready: bool(),
  podIP: optional(str()),
  image: optional(str()),
});

const placementStatus = obj(
  {
    state: oneOf(PLACEMENT_STATES, {
      description:
        'The placement loop: Idle (nothing to move), Moving (replicas or a drain under way), Blocked (the planner refuses something, see blockers), Unreachable (no node answered its last observation), Unknown (no observation yet), Paused (spec.pause).',
    }),
    progress: optional(obj({ done: int({ minimum: 0 }), total: int({ minimum: 0 }) }, { description: 'Replica moves of the change under way.' })),
    message: optional(str()),
    blockers: optional(
      arr(obj({ code: str(), message: str(), member: optional(str()) }), {
        listType: 'atomic',
        maxItems: 10,
        description: "The planner's refusals and blocked steps from the loop's last round (first 10).",
      }),
    ),
  },
  { description: "The cluster's placement control loop as of its last round (moves, blockers)." },
);

const removedVolume = obj({
  member: str({ description: 'Id of the removed member (retired: never reused).' }),
  pvc: str(),
  removedAt: str({ format: 'date-time', description: 'When the operator kept the volume (its member had been removed by the data plane).' }),
  deleteAfter: optional(
    str({
      format: 'date-time',
      description: 'When the operator deletes it (deletionPolicy Delete + spec.storage.retainRemovedVolumesFor). Unset: kept until a human deletes it.',
    }),
  ),
});

const operation = obj({
  type: oneOf(OPERATION_TYPES),
  startedAt: optional(str({ format: 'date-time' })),
  progress: optional(obj({ done: int({ minimum: 0 }), total: int({ minimum: 0 }) })),
  blockedBy: optional(str({ description: 'Why the operation cannot proceed; empty when it can.' })),
  message: optional(str()),
});

export const clusterStatusSchema = obj(
  {
    phase: optional(oneOf(PHASES)),
    observedGeneration: optional(int({ minimum: 0 })),
    conditions: optional(arr(condition, { listType: 'map', mapKeys: ['type'] })),
    nodes: optional(int({ minimum: 0, description: 'Members (with a volume) now.' })),
    readyNodes: optional(int({ minimum: 0 })),
    image: optional(str({ description: 'The image every member runs, once they all agree.' })),
    version: optional(str()),
    members: optional(arr(member, { listType: 'map', mapKeys: ['id'] })),
    retiredMembers: optional(
      arr(str(), {
        listType: 'set',
        maxItems: 1000,
        description: 'Ids of members that were abandoned (replaced) or drained and removed (scale-down); never reused.',
      }),
    ),
    placement: optional(placementStatus),
    removedVolumes: optional(
      arr(removedVolume, {
        listType: 'map',
        mapKeys: ['member'],
        maxItems: 100,
        description: 'Volumes of members removed by a scale-down that are still kept (LESSONS #1, #4: a quarantine before data is deleted).',
      }),
    ),
    founders: optional(
      arr(str(), {
        listType: 'atomic',
        maxItems: 100,
        description:
          'Members that founded the data plane (the --peers list of every member); fixed once the cluster is created. Later members start with --join.',
      }),
    ),
    partitions: optional(
      obj({
        total: int({ minimum: 0 }),
        underReplicated: optional(int({ minimum: 0 })),
        mapEpoch: optional(int({ minimum: 0 })),
        source: optional(str({ description: 'Member whose partition map this summary comes from.' })),
      }),
    ),
    underReplicatedPartitions: optional(int({ minimum: 0 })),
    currentOperation: optional(operation),
  },
  { description: 'Observed state, written by the operator only.' },
);

export type KeyVaClusterSpec = Infer<typeof clusterSpecSchema>;
export type KeyVaClusterStatus = Infer<typeof clusterStatusSchema>;
export type ClusterCondition = Infer<typeof condition>;
export type MemberStatus = Infer<typeof member>;
export type ClusterOperation = Infer<typeof operation>;
export type RemovedVolumeStatus = Infer<typeof removedVolume>;
export type PlacementStatus = Infer<typeof placementStatus>;
export type Phase = (typeof PHASES)[number];
export type OperationType = (typeof OPERATION_TYPES)[number];
export type ConditionType = (typeof CONDITION_TYPES)[number];

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A KeyVaCluster as the API returns it; `spec` may lack defaults (old objects), see `specWithDefaults`. */
export interface KeyVaCluster {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Partial<KeyVaClusterSpec>;
  status?: KeyVaClusterStatus;
}

export function specWithDefaults(spec: unknown): KeyVaClusterSpec {
  return applyDefaults(clusterSpecSchema.json, spec ?? {}) as KeyVaClusterSpec;
}

/** Root-level rules: names must fit in DNS labels once a member suffix is added. */
export const CLUSTER_NAME_MAX = 50;
export const clusterRootRules: CelRule[] = [
  {
    rule: `self.metadata.name.size() <= ${CLUSTER_NAME_MAX} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')`,
    message: `metadata.name must be a DNS label of at most ${CLUSTER_NAME_MAX} characters starting with a letter (member ids append 6)`,
  },
];
