/**
 * The KeyVa wire contract: loads the .proto files once and exposes the grpc-js service
 * definitions, the package definition (for server reflection) and the generated types.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as AdminProto } from '../gen/admin.ts';
import type { ProtoGrpcType as KvProto } from '../gen/kv.ts';
import type { ProtoGrpcType as RaftProto } from '../gen/raft.ts';
import { loaderOptions, PROTO_FILES, PROTO_ROOT } from './loader-options.ts';

export * from './errors.ts';
export { PROTO_FILES, PROTO_ROOT } from './loader-options.ts';

export const packageDefinition: protoLoader.PackageDefinition = protoLoader.loadSync(
  PROTO_FILES.map((f) => `${PROTO_ROOT}/${f}`),
  loaderOptions(),
);

const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as KvProto & AdminProto & RaftProto;

/** `keyva.v1` namespace with `KV` and `Admin` client constructors and `.service` definitions. */
export const keyvaV1 = loaded.keyva.v1;

export type * from './types.ts';
