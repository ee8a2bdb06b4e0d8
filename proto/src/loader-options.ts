import { resolve } from 'node:path';
import type { Options } from '@grpc/proto-loader';

/** Where the .proto files live, and which ones make the contract. */
export const PROTO_ROOT = resolve(import.meta.dirname, '..');
export const PROTO_FILES = ['keyva/v1/kv.proto', 'keyva/v1/admin.proto', 'keyva/v1/raft.proto'] as const;

/**
 * One set of proto-loader options for the runtime loader and the type generator, so the
 * generated types describe exactly the objects grpc-js hands us: 64-bit integers as decimal
 * strings (convert with BigInt at the edges), enums as their names, defaults filled, oneof
 * fields named by a virtual property.
 */
export const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
} as const satisfies Options;

export const loaderOptions = (): Options => ({ ...LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
