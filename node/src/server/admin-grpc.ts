/**
 * The Admin gRPC service: Health, NodeInfo, GetPartitionMap (optionally linearizable through the
 * meta group), and the meta changes a placement controller makes: UpdatePartitionMap
 * (compare-and-set on the map's epoch) and RegisterNode. Changes are decided by the meta group's
 * leader; another node answers NOT_LEADER with the leader's id and address (no forwarding here).
 * Replica membership of a partition's Raft group (AddLearner, PromoteLearner, RemoveReplica,
 * TransferLeader, GetPartitionReplicas) is served by the partition's leader, ListPartitionReplicas
 * by any node (the views of the listed partitions it leads), and the internal node-to-node steps
 * behind them (HostReplica, DropReplica, LocalReplica) by the target node
 * (`node/src/membership/replica-membership.ts`). SplitPartition records a split in the map and
 * waits for the partition's group to apply it (`node/src/split`, docs/adr/0010-splits.md);
 * MergePartitions checks both partitions' replicas, records the merge and waits for the left
 * group to absorb the right one (`node/src/split/merge-coordinator.ts`).
 * UnsafeRecoverPartition forces a group that lost its quorum for good down to its survivors
 * (`node/src/membership/quorum-recovery.ts`, docs/adr/0012-unsafe-quorum-recovery.md).
 */
import type * as grpc from '@grpc/grpc-js';
import type { NodeId, PartitionMap } from '@keyva/client/keyspace';
import type {
  GetPartitionMapResponse,
  HealthResponse,
  LocalDigestRequestOut,
  MergePartitionsRequestOut,
  MergePartitionsResponse,
  NodeInfoResponse,
  RegisterNodeRequestOut,
  RegisterNodeResponse,
  SplitPartitionRequestOut,
  SplitPartitionResponse,
  UnsafeRecoverPartitionRequestOut,
  UpdatePartitionMapRequestOut,
  UpdatePartitionMapResponse,
} from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { HASH_SPACE_END } from '../engine/types.ts';
import type { QuorumRecovery } from '../membership/quorum-recovery.ts';
import { DIGEST_APPLY_WAIT_MS, type ReplicaDigests } from '../membership/replica-digest.ts';
import { META_PARTITION, type ReplicaMembership } from '../membership/replica-membership.ts';
import type { MetaService } from '../meta/meta-service.ts';
import type { MetaCommand, NodeState } from '../meta/meta-state.ts';
import { commandFromWire, nodeAddressesFromWire, nodeStateToWire, refusalError } from '../meta/meta-wire.ts';
import type { MergeCoordinator } from '../split/merge-coordinator.ts';
import type { SplitCoordinator } from '../split/split-coordinator.ts';
import { contextFromMetadata } from './grpc-context.ts';
import { asKeyVaError, toServiceError } from './grpc-errors.ts';
import type { RequestRunner } from './request-runner.ts';

export interface AdminSource {
  health(): HealthResponse;
  nodeInfo(): NodeInfoResponse;
  /** The map this node serves and routes by (its latest applied meta state, with live leader hints). */
  partitionMap(): PartitionMap;
  /** The node's meta API; without it, GetPartitionMap ignores `linearizable` and changes are UNIMPLEMENTED. */
  readonly meta?: MetaService;
  /** Replica membership (replicated mode); without it the membership RPCs are UNIMPLEMENTED. */
  readonly membership?: ReplicaMembership;
  /** Partition splits (replicated mode, docs/adr/0010-splits.md); without it SplitPartition is UNIMPLEMENTED. */
  readonly splits?: SplitCoordinator;
  /** Partition merges (replicated mode, docs/adr/0010-splits.md "Merges"); without it MergePartitions is UNIMPLEMENTED. */
  readonly merges?: MergeCoordinator;
  /** Unsafe quorum-loss recovery (docs/adr/0012-unsafe-quorum-recovery.md); without it UnsafeRecoverPartition is UNIMPLEMENTED. */
  readonly recovery?: QuorumRecovery;
  /** Replica digests (replicated mode; LESSONS #10); without it PartitionDigest and LocalDigest are UNIMPLEMENTED. */
  readonly digests?: ReplicaDigests;
}

function splitsOf(src: AdminSource): SplitCoordinator {
  if (src.splits === undefined) throw new KeyVaError('ROUTE_NOT_FOUND', 'partition splits need a replicated node (--peers)');
  return src.splits;
}

async function splitPartition(src: AdminSource, req: SplitPartitionRequestOut): Promise<SplitPartitionResponse> {
  const at = u64(req.atHash, 'at_hash');
  const r = await splitsOf(src).splitPartition(req.partitionId, at === 0n ? undefined : at);
  return {
    changed: r.changed,
    epoch: r.epoch.toString(),
    partitionId: r.partitionId,
    newPartitionId: r.newPartitionId,
    atHash: r.atHash.toString(),
    applied: r.applied,
  };
}

async function mergePartitions(src: AdminSource, req: MergePartitionsRequestOut): Promise<MergePartitionsResponse> {
  if (src.merges === undefined) throw new KeyVaError('ROUTE_NOT_FOUND', 'partition merges need a replicated node (--peers)');
  const r = await src.merges.mergePartitions(req.leftId, req.rightId);
  return {
    changed: r.changed,
    epoch: r.epoch.toString(),
    leftId: r.leftId,
    rightId: r.rightId,
    start: r.start.toString(),
    end: r.end === HASH_SPACE_END ? '0' : r.end.toString(),
    applied: r.applied,
  };
}

function membershipOf(src: AdminSource): ReplicaMembership {
  if (src.membership === undefined) throw new KeyVaError('ROUTE_NOT_FOUND', 'replica membership needs a replicated node (--peers)');
  return src.membership;
}

/** The membership API's name of the group a request means: its partition, or the meta group. */
function groupRef(req: { partitionId: number; metaGroup?: boolean }): number {
  return req.metaGroup === true ? META_PARTITION : req.partitionId;
}

function u64(text: string, field: string): bigint {
  if (!/^\d{1,20}$/.test(text)) throw new KeyVaError('INVALID_ARGUMENT', `${field} is not a u64`, { field });
  return BigInt(text);
}

interface MemberReq {
  readonly partitionId: number;
  readonly nodeId: string;
}

/** The wire map. Node objects that carry a registry `state` (see `partitionMapOf`) report it. */
export function partitionMapToWire(m: PartitionMap): GetPartitionMapResponse {
  return {
    map: {
      epoch: m.epoch.toString(),
      partitions: m.partitions.map((p) => ({
        id: p.id,
        start: p.start.toString(),
        end: p.end === HASH_SPACE_END ? '0' : p.end.toString(),
        generation: p.generation.toString(),
        replicas: [...p.replicas],
        leaderHint: p.leaderHint ?? '',
      })),
      nodes: [...m.nodes.values()].map((n) => ({
        id: n.id,
        grpcAddress: n.grpcAddress,
        httpAddress: n.httpAddress,
        state: nodeStateToWire((n as { state?: NodeState }).state),
        incarnation: n.incarnation ?? '',
      })),
    },
  };
}

/** Applies a change through the meta group and answers its new epoch, or the refusal as an error. */
async function change(src: AdminSource, command: () => MetaCommand): Promise<UpdatePartitionMapResponse & RegisterNodeResponse> {
  if (src.meta === undefined) throw new KeyVaError('ROUTE_NOT_FOUND', 'this node has no meta API');
  const cmd = command();
  // Replicated mode: a merge goes through MergePartitions, which checks every replica before it
  // records the merge (docs/adr/0010-splits.md "Merges"); a bare map change would skip the checks.
  if (cmd.kind === 'mergePartitions' && src.splits !== undefined)
    throw new KeyVaError(
      'INVALID_ARGUMENT',
      'in a replicated cluster, merge partitions with Admin MergePartitions (keyva partition merge); nothing was changed',
      {
        field: 'merge_partitions',
      },
    );
  const r = await src.meta.proposeMetaChange(cmd);
  if (!r.ok) throw refusalError(r);
  return { epoch: r.epoch.toString(), changed: r.changed };
}

export function adminGrpcHandlers(src: AdminSource, runner: RequestRunner): grpc.UntypedServiceImplementation {
  const unary =
    <Req, Res>(method: string, fn: (req: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      // Health answers even while draining, so probes see NOT_SERVING instead of an error.
      if (method === 'Health') return callback(null, fn(call.request) as Res);
      runner
        .run(method, 'grpc', contextFromMetadata(call.metadata), async () => fn(call.request))
        .then(
          (res) => callback(null, res),
          (e) => callback(toServiceError(asKeyVaError(e))),
        );
    };
  return {
    Health: unary('Health', () => src.health()),
    NodeInfo: unary('NodeInfo', () => src.nodeInfo()),
    GetPartitionMap: unary('GetPartitionMap', async (req: { linearizable?: boolean }) => {
      if (req.linearizable === true) await src.meta?.readBarrier();
      return partitionMapToWire(src.partitionMap());
    }),
    UpdatePartitionMap: unary('UpdatePartitionMap', (req: UpdatePartitionMapRequestOut) => change(src, () => commandFromWire(req))),
    RegisterNode: unary('RegisterNode', (req: RegisterNodeRequestOut) =>
      change(src, () => {
        if (req.node === null) throw new KeyVaError('INVALID_ARGUMENT', 'RegisterNode needs node', { field: 'node' });
        return { kind: 'registerNode', node: nodeAddressesFromWire(req.node) };
      }),
    ),
    AddLearner: unary('AddLearner', (req: MemberReq) => membershipOf(src).addLearner(req.partitionId, req.nodeId)),
    PromoteLearner: unary('PromoteLearner', (req: MemberReq) => membershipOf(src).promoteLearner(req.partitionId, req.nodeId)),
    RemoveReplica: unary('RemoveReplica', (req: MemberReq & { force: boolean }) => membershipOf(src).removeReplica(req.partitionId, req.nodeId, req.force)),
    TransferLeader: unary('TransferLeader', (req: { partitionId: number; toNodeId: string }) =>
      membershipOf(src).transferLeader(req.partitionId, req.toNodeId),
    ),
    GetPartitionReplicas: unary('GetPartitionReplicas', (req: { partitionId: number; metaGroup?: boolean; leaderViewOnly?: boolean }) =>
      membershipOf(src).replicas(groupRef(req), req.leaderViewOnly === true),
    ),
    ListPartitionReplicas: unary('ListPartitionReplicas', async (req: { partitionIds: number[] }) => ({
      partitions: await membershipOf(src).leaderViews(req.partitionIds),
    })),
    HostReplica: unary('HostReplica', (req: { partitionId: number; metaGroup?: boolean; start: string; end: string }) => {
      const end = u64(req.end, 'end');
      return membershipOf(src).hostReplica(groupRef(req), { start: u64(req.start, 'start'), end: end === 0n ? HASH_SPACE_END : end });
    }),
    DropReplica: unary('DropReplica', (req: { partitionId: number; metaGroup?: boolean; index: string; term: string }) =>
      membershipOf(src).dropReplica(groupRef(req), { index: Number(u64(req.index, 'index')), term: Number(u64(req.term, 'term')) }),
    ),
    LocalReplica: unary('LocalReplica', (req: { partitionId: number; metaGroup?: boolean }) =>
      membershipOf(src).localReplica(req.partitionId, req.metaGroup === true),
    ),
    SplitPartition: unary('SplitPartition', (req: SplitPartitionRequestOut) => splitPartition(src, req)),
    MergePartitions: unary('MergePartitions', (req: MergePartitionsRequestOut) => mergePartitions(src, req)),
    UnsafeRecoverPartition: unary('UnsafeRecoverPartition', (req: UnsafeRecoverPartitionRequestOut) => {
      if (src.recovery === undefined) throw new KeyVaError('ROUTE_NOT_FOUND', 'quorum-loss recovery needs a replicated node (--peers)');
      return src.recovery.recover({
        partitionId: req.partitionId,
        metaGroup: req.metaGroup,
        survivingReplicas: req.survivingReplicas,
        confirmDataLoss: req.confirmDataLoss,
      });
    }),
    PartitionDigest: unary('PartitionDigest', (req: { partitionId: number }) => digestsOf(src).partitionDigest(req.partitionId)),
    LocalDigest: unary('LocalDigest', (req: LocalDigestRequestOut) => {
      const end = u64(req.end, 'end');
      const range = { start: u64(req.start, 'start'), end: end === 0n ? HASH_SPACE_END : end };
      return digestsOf(src).localDigest(req.partitionId, range, u64(req.readTs, 'read_ts'), Math.min(req.waitMs || DIGEST_APPLY_WAIT_MS, 60_000));
    }),
  } as grpc.UntypedServiceImplementation;
}

function digestsOf(src: AdminSource): ReplicaDigests {
  if (src.digests === undefined) throw new KeyVaError('ROUTE_NOT_FOUND', 'replica digests need a replicated node (--peers)');
  return src.digests;
}
