/**
 * The placement spec with defaults, validated once. Bad input is an INVALID_ARGUMENT KeyVaError
 * naming the field and the limit; the planner never sees an unchecked spec.
 */
import { KeyVaError } from '@keyva/proto/errors';
import type { ClusterSpec, NodeId, PartitionId } from './types.ts';

export interface ClusterSpecInput {
  readonly replicationFactor?: number;
  readonly zoneSpread?: ClusterSpec['zoneSpread'];
  readonly decommission?: readonly NodeId[];
  readonly splitRequests?: readonly { readonly partitionId: PartitionId; readonly atHash?: bigint | undefined }[];
  readonly moves?: Partial<ClusterSpec['moves']>;
  readonly split?: Partial<ClusterSpec['split']>;
  readonly merge?: Partial<ClusterSpec['merge']>;
  readonly leaders?: Partial<ClusterSpec['leaders']>;
}

const MiB = 1024 * 1024;

export const SPEC_DEFAULTS: ClusterSpec = {
  replicationFactor: 3,
  zoneSpread: 'preferred',
  decommission: [],
  splitRequests: [],
  moves: { clusterMax: 8, perNodeMax: 2, catchUpLagMax: 16, headroomRatio: 0.2, nodeDownGraceMs: 30 * 60_000, rebalance: true, startsPerMinuteMax: 0 },
  split: { auto: true, sizeBytes: 512 * MiB, qps: 5000, cooldownMs: 10 * 60_000, loadSplitsPerMinuteMax: 2 },
  // The data plane carries merges out (MergePartitions, docs/adr/0010-splits.md "Merges"); never below
  // partitionsMin (the initial count), so a new cluster keeps its parallelism.
  merge: { enabled: true, partitionsMin: 64, sizeBytes: 64 * MiB, qps: 500, cooldownMs: 30 * 60_000 },
  leaders: { toleranceRatio: 0.1, cooldownMs: 5 * 60_000, transfersPerPlanMax: 16 },
};

export const REPLICATION_FACTORS = [1, 3, 5] as const;

function invalid(field: string, message: string): never {
  throw new KeyVaError('INVALID_ARGUMENT', `placement spec: ${field} ${message}`, { field });
}

function intIn(field: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) invalid(field, `must be an integer in ${min}..${max}, got ${v}`);
}

function numIn(field: string, v: number, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) invalid(field, `must be a number in ${min}..${max}, got ${v}`);
}

/** Applies defaults and validates; throws INVALID_ARGUMENT with the field named. */
export function resolveSpec(input: ClusterSpecInput = {}): ClusterSpec {
  const d = SPEC_DEFAULTS;
  const spec: ClusterSpec = {
    replicationFactor: input.replicationFactor ?? d.replicationFactor,
    zoneSpread: input.zoneSpread ?? d.zoneSpread,
    decommission: input.decommission ?? d.decommission,
    splitRequests: input.splitRequests ?? d.splitRequests,
    moves: { ...d.moves, ...input.moves },
    split: { ...d.split, ...input.split },
    merge: { ...d.merge, ...input.merge },
    leaders: { ...d.leaders, ...input.leaders },
  };
  if (!(REPLICATION_FACTORS as readonly number[]).includes(spec.replicationFactor)) {
    invalid('replicationFactor', `must be one of ${REPLICATION_FACTORS.join(', ')}, got ${spec.replicationFactor}`);
  }
  if (!['none', 'preferred', 'required'].includes(spec.zoneSpread)) invalid('zoneSpread', `must be none, preferred or required, got ${spec.zoneSpread}`);
  if (new Set(spec.decommission).size !== spec.decommission.length) invalid('decommission', 'lists a node twice');
  intIn('moves.clusterMax', spec.moves.clusterMax, 1, 1024);
  intIn('moves.perNodeMax', spec.moves.perNodeMax, 1, 64);
  intIn('moves.catchUpLagMax', spec.moves.catchUpLagMax, 0, 1_000_000);
  numIn('moves.headroomRatio', spec.moves.headroomRatio, 0, 0.9);
  intIn('moves.nodeDownGraceMs', spec.moves.nodeDownGraceMs, 0, 7 * 24 * 3600_000);
  if (typeof spec.moves.rebalance !== 'boolean') invalid('moves.rebalance', `must be true or false, got ${spec.moves.rebalance}`);
  intIn('moves.startsPerMinuteMax', spec.moves.startsPerMinuteMax, 0, 100_000);
  if (typeof spec.split.auto !== 'boolean') invalid('split.auto', `must be true or false, got ${spec.split.auto}`);
  intIn('split.sizeBytes', spec.split.sizeBytes, 1, Number.MAX_SAFE_INTEGER);
  numIn('split.qps', spec.split.qps, 1, 1e9);
  intIn('split.cooldownMs', spec.split.cooldownMs, 0, 7 * 24 * 3600_000);
  intIn('split.loadSplitsPerMinuteMax', spec.split.loadSplitsPerMinuteMax, 0, 1000);
  intIn('merge.partitionsMin', spec.merge.partitionsMin, 1, 65536);
  intIn('merge.sizeBytes', spec.merge.sizeBytes, 0, Number.MAX_SAFE_INTEGER);
  numIn('merge.qps', spec.merge.qps, 0, 1e9);
  intIn('merge.cooldownMs', spec.merge.cooldownMs, 0, 7 * 24 * 3600_000);
  // Hysteresis (LESSONS #13): a merged partition must be far from splitting again, and the two
  // halves of a split must be too big to merge back.
  if (spec.merge.sizeBytes * 2 > spec.split.sizeBytes) {
    invalid('merge.sizeBytes', `must be at most half of split.sizeBytes (${spec.split.sizeBytes}), got ${spec.merge.sizeBytes}`);
  }
  if (spec.merge.qps * 2 > spec.split.qps) invalid('merge.qps', `must be at most half of split.qps (${spec.split.qps}), got ${spec.merge.qps}`);
  numIn('leaders.toleranceRatio', spec.leaders.toleranceRatio, 0, 10);
  intIn('leaders.cooldownMs', spec.leaders.cooldownMs, 0, 24 * 3600_000);
  intIn('leaders.transfersPerPlanMax', spec.leaders.transfersPerPlanMax, 0, 10_000);
  return spec;
}
