/** Builds the node's grpc-js server: KV + Admin services, server reflection, message limits. */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { keyvaV1, packageDefinition } from '@keyva/proto';
import { tolerantService } from './malformed.ts';

export interface GrpcServerOptions {
  readonly messageBytesMax: number;
}

export function createGrpcServer(
  opts: GrpcServerOptions,
  handlers: { kv: grpc.UntypedServiceImplementation; admin: grpc.UntypedServiceImplementation; raft?: grpc.UntypedServiceImplementation },
): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.messageBytesMax,
    'grpc.max_send_message_length': opts.messageBytesMax,
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  });
  server.addService(tolerantService(keyvaV1.KV.service), handlers.kv);
  server.addService(tolerantService(keyvaV1.Admin.service), handlers.admin);
  // Node-to-node Raft traffic (replicated mode); the transport tolerates malformed input itself.
  if (handlers.raft !== undefined) server.addService(keyvaV1.Raft.service, handlers.raft);
  new ReflectionService(packageDefinition).addToServer(server);
  return server;
}

export function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}
