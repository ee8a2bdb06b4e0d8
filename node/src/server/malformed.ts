/**
 * grpc-js answers a request it cannot deserialize with INTERNAL. KeyVa wants INVALID_ENCODING
 * (INVALID_ARGUMENT), so each method's deserializer is wrapped: a decoding failure yields a
 * marker object that the handler turns into the right error.
 */
import type * as grpc from '@grpc/grpc-js';

export const MALFORMED = Symbol('malformed request');

export interface Malformed {
  readonly [MALFORMED]: string;
}

export function isMalformed(x: unknown): x is Malformed {
  return typeof x === 'object' && x !== null && MALFORMED in x;
}

export function tolerantService<S extends grpc.ServiceDefinition>(service: S): S {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, def] of Object.entries(service)) {
    const m = def as grpc.MethodDefinition<unknown, unknown>;
    out[name] = {
      ...m,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return m.requestDeserialize(bytes);
        } catch (e) {
          return { [MALFORMED]: (e as Error).message } satisfies Malformed;
        }
      },
    };
  }
  return out as S;
}
