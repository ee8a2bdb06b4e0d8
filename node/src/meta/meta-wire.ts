/**
 * The meta API at the gRPC edge (proto/keyva/v1/admin.proto): requests to commands, results
 * and refusals to errors and back (a node forwarding a change to the meta leader reads the
 * leader's answer with `resultFromError`).
 *
 * Error mapping: a refusal against the current map is CONDITION_FAILED with details `reason`
 * and `epoch`; a malformed change INVALID_ARGUMENT (`reason: invalid`); "not bootstrapped yet"
 * UNAVAILABLE (retryable).
 */
import type { NodeId, PartitionId } from '@keyva/client/keyspace';
import type { RegisterNodeRequest, UpdatePartitionMapRequest, UpdatePartitionMapRequestOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { INCARNATION_PATTERN, type MetaCommand, MetaRefusal, type MetaResult, type NodeAddresses, NodeState } from './meta-state.ts';

export type WireNodeState = 'STATE_UNSPECIFIED' | 'ACTIVE' | 'DRAINING' | 'REMOVED';

const TO_WIRE: Record<NodeState, WireNodeState> = { active: 'ACTIVE', draining: 'DRAINING', removed: 'REMOVED' };

export function nodeStateToWire(s: NodeState | undefined): WireNodeState {
  return s === undefined ? 'STATE_UNSPECIFIED' : TO_WIRE[s];
}

export function nodeStateFromWire(s: string | number): NodeState {
  switch (s) {
    case 'ACTIVE':
    case 1:
      return NodeState.Active;
    case 'DRAINING':
    case 2:
      return NodeState.Draining;
    case 'REMOVED':
    case 3:
      return NodeState.Removed;
    default:
      throw new KeyVaError('INVALID_ARGUMENT', `node state ${String(s)} is not ACTIVE, DRAINING or REMOVED`, { field: 'state' });
  }
}

/** A RegisterNode request's node (an empty incarnation: not given; a malformed one: INVALID_ARGUMENT). */
export function nodeAddressesFromWire(n: { id: string; grpcAddress: string; httpAddress: string; incarnation?: string }): NodeAddresses {
  const incarnation = n.incarnation ?? '';
  if (incarnation !== '' && !INCARNATION_PATTERN.test(incarnation))
    throw new KeyVaError('INVALID_ARGUMENT', `node.incarnation must be 16 lowercase hex digits, got ${JSON.stringify(incarnation)}`, {
      field: 'node.incarnation',
    });
  return { id: n.id as NodeId, grpcAddress: n.grpcAddress, httpAddress: n.httpAddress, ...(incarnation === '' ? {} : { incarnation }) };
}

function u64(text: string, field: string): bigint {
  if (!/^\d{1,20}$/.test(text)) throw new KeyVaError('INVALID_ARGUMENT', `${field} is not an unsigned 64-bit integer`, { field });
  return BigInt(text);
}

/** An UpdatePartitionMap request as a command (INVALID_ARGUMENT if no change is set). */
export function commandFromWire(req: UpdatePartitionMapRequestOut): MetaCommand {
  const expectedEpoch = u64(req.expectedEpoch, 'expected_epoch');
  switch (req.change) {
    case 'setPartitionReplicas': {
      const c = req.setPartitionReplicas as NonNullable<typeof req.setPartitionReplicas>;
      return { kind: 'setPartitionReplicas', partitionId: c.partitionId as PartitionId, replicas: c.replicas as NodeId[], expectedEpoch };
    }
    case 'splitPartition': {
      const c = req.splitPartition as NonNullable<typeof req.splitPartition>;
      return {
        kind: 'splitPartition',
        partitionId: c.partitionId as PartitionId,
        atHash: u64(c.atHash, 'split_partition.at_hash'),
        newPartitionId: c.newPartitionId as PartitionId,
        expectedEpoch,
      };
    }
    case 'mergePartitions': {
      const c = req.mergePartitions as NonNullable<typeof req.mergePartitions>;
      return { kind: 'mergePartitions', leftId: c.leftId as PartitionId, rightId: c.rightId as PartitionId, expectedEpoch };
    }
    case 'setNodeState': {
      const c = req.setNodeState as NonNullable<typeof req.setNodeState>;
      return { kind: 'setNodeState', nodeId: c.nodeId as NodeId, state: nodeStateFromWire(c.state), expectedEpoch };
    }
    default:
      throw new KeyVaError(
        'INVALID_ARGUMENT',
        'UpdatePartitionMap needs one change (set_partition_replicas, split_partition, merge_partitions or set_node_state)',
        {
          field: 'change',
        },
      );
  }
}

/** The request carrying `c` to another node (the meta leader). */
export function commandToWire(
  c: MetaCommand,
): { method: 'RegisterNode'; req: RegisterNodeRequest } | { method: 'UpdatePartitionMap'; req: UpdatePartitionMapRequest } {
  switch (c.kind) {
    case 'registerNode':
      return {
        method: 'RegisterNode',
        req: { node: { id: c.node.id, grpcAddress: c.node.grpcAddress, httpAddress: c.node.httpAddress, incarnation: c.node.incarnation ?? '' } },
      };
    case 'setPartitionReplicas':
      return {
        method: 'UpdatePartitionMap',
        req: { expectedEpoch: c.expectedEpoch.toString(), setPartitionReplicas: { partitionId: c.partitionId, replicas: [...c.replicas] } },
      };
    case 'splitPartition':
      return {
        method: 'UpdatePartitionMap',
        req: {
          expectedEpoch: c.expectedEpoch.toString(),
          splitPartition: { partitionId: c.partitionId, atHash: c.atHash.toString(), newPartitionId: c.newPartitionId },
        },
      };
    case 'mergePartitions':
      return { method: 'UpdatePartitionMap', req: { expectedEpoch: c.expectedEpoch.toString(), mergePartitions: { leftId: c.leftId, rightId: c.rightId } } };
    case 'setNodeState':
      return {
        method: 'UpdatePartitionMap',
        req: { expectedEpoch: c.expectedEpoch.toString(), setNodeState: { nodeId: c.nodeId, state: nodeStateToWire(c.state) } },
      };
    case 'bootstrap':
      throw new KeyVaError('INVALID_ARGUMENT', 'the initial map is proposed by the meta leader itself, never forwarded', { field: 'command' });
  }
}

/** A refused result as the error the API answers. */
export function refusalError(r: Extract<MetaResult, { ok: false }>): KeyVaError {
  const details = { reason: r.reason, epoch: r.epoch.toString() };
  if (r.reason === MetaRefusal.Invalid) return new KeyVaError('INVALID_ARGUMENT', `meta change refused: ${r.message}`, { ...details, field: 'change' });
  if (r.reason === MetaRefusal.NotBootstrapped) return new KeyVaError('UNAVAILABLE', `meta change refused: ${r.message}; retry`, details);
  return new KeyVaError('CONDITION_FAILED', `meta change refused (${r.reason}): ${r.message}; nothing changed`, details);
}

const REFUSALS: readonly string[] = Object.values(MetaRefusal);

/** The result an error from `refusalError` stands for, or undefined for any other error. */
export function resultFromError(e: unknown): Extract<MetaResult, { ok: false }> | undefined {
  if (!(e instanceof KeyVaError)) return undefined;
  const reason = e.details.reason;
  const epoch = e.details.epoch;
  if (reason === undefined || !REFUSALS.includes(reason) || epoch === undefined || !/^\d+$/.test(epoch)) return undefined;
  return { ok: false, reason: reason as MetaRefusal, message: e.message, epoch: BigInt(epoch) };
}
