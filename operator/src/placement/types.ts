/**
 * The placement core's model: what the cluster should look like (ClusterSpec), what the data
 * plane reports (Observation), and what the planner asks for (Step, Refusal, Plan). Pure data.
 */

/** A node's durable id (never a pod name, ordinal or address: LESSONS #3, #7). */
export type NodeId = string & { readonly __brand: 'PlacementNodeId' };
/** A partition's stable id (the meta group allocates new ids on split). */
export type PartitionId = number & { readonly __brand: 'PlacementPartitionId' };

export const nodeId = (s: string): NodeId => s as NodeId;
export const partitionId = (n: number): PartitionId => n as PartitionId;

export const ReplicaRole = { Voter: 'voter', Learner: 'learner' } as const;
export type ReplicaRole = (typeof ReplicaRole)[keyof typeof ReplicaRole];

export const NodeHealth = { Up: 'up', Degraded: 'degraded', Down: 'down', Unknown: 'unknown' } as const;
export type NodeHealth = (typeof NodeHealth)[keyof typeof NodeHealth];

export const NodeState = { Active: 'active', Draining: 'draining', Removed: 'removed' } as const;
export type NodeState = (typeof NodeState)[keyof typeof NodeState];

/**
 * Content digest of one replica's partition data at a read timestamp (for the "replicas agree"
 * invariant, LESSONS #10): replicas that applied past `readTs` and agree on the log hold the same.
 */
export interface ReplicaDigest {
  readonly readTs: bigint;
  readonly keyCount: number;
  readonly checksum: string;
}

export interface ReplicaView {
  readonly nodeId: NodeId;
  readonly role: ReplicaRole;
  /** The leader's match index for this replica (Raft progress); the leader's own = its last index. */
  readonly matchIndex: number;
  readonly digest?: ReplicaDigest | undefined;
}

export interface PartitionView {
  readonly id: PartitionId;
  /** Inclusive. */
  readonly start: bigint;
  /** Exclusive; HASH_SPACE_END (2^64) for the last partition. */
  readonly end: bigint;
  /** Bumps on every split, merge and membership change; fences split/merge steps. */
  readonly generation: bigint;
  readonly replicas: readonly ReplicaView[];
  /** The current Raft leader, if one is known. */
  readonly leader?: NodeId | undefined;
  /** The leader's commit index: the yardstick for "caught up". */
  readonly commitIndex: number;
  readonly sizeBytes: number;
  readonly qps: number;
  /** Where the data plane suggests splitting (median key hash by size, or hottest point). */
  readonly splitHint?: bigint | undefined;
  /** When the range last changed (split/merge), as recorded by the meta group. */
  readonly rangeChangedAtMs?: number | undefined;
  /** When the leader last changed. */
  readonly leaderChangedAtMs?: number | undefined;
}

export interface NodeView {
  readonly id: NodeId;
  readonly zone?: string | undefined;
  /** Relative capacity: a node of weight 2 should hold twice the replicas of one of weight 1. */
  readonly weight: number;
  readonly health: NodeHealth;
  /** Since when the node has been down (injected clock), if it is down. */
  readonly downSinceMs?: number | undefined;
  readonly state: NodeState;
  readonly capacityBytes: number;
  readonly freeBytes: number;
  /**
   * The node's own fresh answer about itself: the id it reports and how many replicas it hosts.
   * Missing = unknown, and unknown is never "safe to remove" (LESSONS #3).
   */
  readonly report?: { readonly nodeId: NodeId; readonly replicasHosted: number } | undefined;
}

export interface Observation {
  /** Partition map epoch (meta group). */
  readonly epoch: bigint;
  readonly partitions: readonly PartitionView[];
  /**
   * The smallest partition id never used (the meta group keeps it: ids of merged-away partitions
   * are not reused, their Raft groups may still linger on nodes). Default: max id + 1.
   */
  readonly nextPartitionId?: number | undefined;
  readonly nodes: readonly NodeView[];
}

/** What the user asks for (CRD fields, defaults applied by `resolveSpec`). */
export interface ClusterSpec {
  readonly replicationFactor: number;
  /** `required`: every partition spans min(RF, zones) zones, and plans that cannot are refused. */
  readonly zoneSpread: 'none' | 'preferred' | 'required';
  /** Nodes the user wants gone, drained one at a time in this order (LESSONS #5). */
  readonly decommission: readonly NodeId[];
  /** Explicit split requests. */
  readonly splitRequests: readonly { readonly partitionId: PartitionId; readonly atHash?: bigint | undefined }[];
  readonly moves: {
    /** Replica moves (learner present or voter surplus) in flight in the whole cluster. */
    readonly clusterMax: number;
    /** Moves a node takes part in at once (as receiver or sender). */
    readonly perNodeMax: number;
    /** A learner within this many entries of the commit index counts as caught up. */
    readonly catchUpLagMax: number;
    /** A new replica may not take a node's free space below this fraction of its capacity. */
    readonly headroomRatio: number;
    /** A down node keeps its replicas this long before they are re-placed. */
    readonly nodeDownGraceMs: number;
    /**
     * Balancing moves (false: a partition keeps the nodes it is on while they are live and
     * active; repairs below RF and the evacuation of draining nodes still move replicas).
     */
    readonly rebalance: boolean;
    /** New replica moves started in any 60 s window, repairs below RF exempt (0: no limit). */
    readonly startsPerMinuteMax: number;
  };
  readonly split: {
    /** Split on size and load by itself (false: only `splitRequests`). */
    readonly auto: boolean;
    readonly sizeBytes: number;
    readonly qps: number;
    /** A partition whose range changed less than this long ago is not split again. */
    readonly cooldownMs: number;
    /** Load (hot) splits in any 60 s window (LESSONS #13). */
    readonly loadSplitsPerMinuteMax: number;
  };
  readonly merge: {
    readonly enabled: boolean;
    /** Never merge below this many partitions (the initial `spec.partitions` keeps its parallelism). */
    readonly partitionsMin: number;
    /** Neighbours merge only if their SUM stays below these (validated: at most half the split thresholds). */
    readonly sizeBytes: number;
    readonly qps: number;
    readonly cooldownMs: number;
  };
  readonly leaders: {
    /** A node may lead up to ceil(fair share * (1 + toleranceRatio)) partitions before balancing starts. */
    readonly toleranceRatio: number;
    /** A partition whose leader changed less than this long ago is not transferred for balance. */
    readonly cooldownMs: number;
    /** Balance transfers per plan (batched, not one per second: LESSONS #14). */
    readonly transfersPerPlanMax: number;
  };
}

/** Recent planner actions, kept by the controller (losing them only weakens damping, never safety). */
export interface HistoryEntry {
  readonly kind: 'split' | 'loadSplit' | 'merge' | 'transferLeader' | 'moveStart';
  readonly partitionId: PartitionId;
  readonly atMs: number;
}
export type PlannerHistory = readonly HistoryEntry[];

interface StepBase {
  /** Why the planner wants it (events, status). */
  readonly reason: string;
}

/** A single-replica Raft membership change, fenced by the partition generation it was planned on. */
interface MembershipStep extends StepBase {
  readonly partitionId: PartitionId;
  readonly nodeId: NodeId;
  /**
   * Fence: the node refuses the change if the partition's generation moved on since the plan
   * (a delayed step from a stale plan can never remove a replica that became needed).
   */
  readonly expectedGeneration: bigint;
}

/**
 * One step = one Admin RPC (see ADR 0009). Every step is idempotent: the executor may send it
 * again after a crash, and `isDone(step, observation)` decides from a fresh observation.
 */
export type Step =
  | ({ readonly type: 'addLearner' } & MembershipStep)
  | ({ readonly type: 'promoteLearner' } & MembershipStep)
  | ({ readonly type: 'removeReplica' } & MembershipStep)
  | ({ readonly type: 'transferLeader'; readonly partitionId: PartitionId; readonly to: NodeId } & StepBase)
  | ({
      readonly type: 'split';
      readonly partitionId: PartitionId;
      readonly atHash: bigint;
      /** What asked for it; load splits are capped per minute. */
      readonly trigger: 'request' | 'size' | 'load';
      /** The id for the right half [atHash, end): `observation.nextPartitionId` (ids are never reused). */
      readonly newPartitionId: PartitionId;
      /** Fence: the node refuses if the partition's generation moved on. */
      readonly expectedGeneration: bigint;
      /** Fence for the meta group's compare-and-set (UpdatePartitionMap.expected_epoch). */
      readonly expectedEpoch: bigint;
    } & StepBase)
  | ({
      readonly type: 'merge';
      /** The left neighbour absorbs the right one; `rightEnd` is the merged range's end. */
      readonly left: PartitionId;
      readonly right: PartitionId;
      readonly rightEnd: bigint;
      readonly expectedGenerations: readonly [bigint, bigint];
      readonly expectedEpoch: bigint;
    } & StepBase)
  | ({ readonly type: 'drainNode'; readonly nodeId: NodeId; readonly expectedEpoch: bigint } & StepBase)
  | ({ readonly type: 'removeNode'; readonly nodeId: NodeId; readonly expectedEpoch: bigint } & StepBase);

export type StepType = Step['type'];

export const RefusalCode = {
  /** Decommissioning would leave fewer active nodes than RF. */
  BelowReplicationFactor: 'BELOW_REPLICATION_FACTOR',
  /** The remaining nodes cannot hold the data with the configured headroom. */
  InsufficientCapacity: 'INSUFFICIENT_CAPACITY',
  /** Zone spread `required` cannot be met (now, or after a decommission). */
  ZonesImpossible: 'ZONES_IMPOSSIBLE',
  /** A node still holds replicas (by durable id), so it cannot be removed yet. */
  NodeHoldsReplicas: 'NODE_HOLDS_REPLICAS',
  /** The node's own answer is missing, stale or from another identity: unknown is not safe. */
  RemovalUnconfirmed: 'REMOVAL_UNCONFIRMED',
  /** The decommission waits for another topology operation or for repairs. */
  WaitingForOperation: 'WAITING_FOR_OPERATION',
  /** A decommission names a node that is not in the registry. */
  UnknownNode: 'UNKNOWN_NODE',
  /** A split request is invalid (unknown partition, point outside its range). */
  InvalidSplit: 'INVALID_SPLIT',
  /** A partition has no leader, so its membership cannot change. */
  NoLeader: 'NO_LEADER',
  /** Not enough eligible nodes to place a partition's replicas. */
  NotEnoughNodes: 'NOT_ENOUGH_NODES',
} as const;
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode];

export interface Refusal {
  readonly code: RefusalCode;
  readonly message: string;
  readonly nodeId?: NodeId | undefined;
  readonly partitionId?: PartitionId | undefined;
}

export interface PlanProgress {
  /** Partitions with a membership change under way (learner present or voter surplus). */
  readonly movesInFlight: number;
  /** Replicas still to be placed on their target node (including those in flight). */
  readonly movesRemaining: number;
  readonly partitionsBelowRF: number;
  readonly partitionsWithoutLeader: number;
}

export interface Plan {
  /** The next steps, safe to execute concurrently (at most one per partition, one topology step). */
  readonly steps: readonly Step[];
  readonly refusals: readonly Refusal[];
  readonly progress: PlanProgress;
}
