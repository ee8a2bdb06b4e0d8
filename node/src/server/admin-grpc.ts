/** The Admin gRPC service: Health, NodeInfo, GetPartitionMap. */
import type * as grpc from '@grpc/grpc-js';
import type { PartitionMap } from '@keyva/client/keyspace';
import type { GetPartitionMapResponse, HealthResponse, NodeInfoResponse } from '@keyva/proto';
import { HASH_SPACE_END } from '../engine/types.ts';
import { contextFromMetadata } from './grpc-context.ts';
import { asKeyVaError, toServiceError } from './grpc-errors.ts';
import type { RequestRunner } from './request-runner.ts';

export interface AdminSource {
  health(): HealthResponse;
  nodeInfo(): NodeInfoResponse;
  partitionMap(): PartitionMap;
}

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
      nodes: [...m.nodes.values()].map((n) => ({ id: n.id, grpcAddress: n.grpcAddress, httpAddress: n.httpAddress })),
    },
  };
}

export function adminGrpcHandlers(src: AdminSource, runner: RequestRunner): grpc.UntypedServiceImplementation {
  const unary =
    <Res>(method: string, fn: () => Res): grpc.handleUnaryCall<unknown, Res> =>
    (call, callback) => {
      // Health answers even while draining, so probes see NOT_SERVING instead of an error.
      if (method === 'Health') return callback(null, fn());
      runner
        .run(method, 'grpc', contextFromMetadata(call.metadata), async () => fn())
        .then(
          (res) => callback(null, res),
          (e) => callback(toServiceError(asKeyVaError(e))),
        );
    };
  return {
    Health: unary('Health', () => src.health()),
    NodeInfo: unary('NodeInfo', () => src.nodeInfo()),
    GetPartitionMap: unary('GetPartitionMap', () => partitionMapToWire(src.partitionMap())),
  } as grpc.UntypedServiceImplementation;
}
