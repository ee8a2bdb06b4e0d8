/**
 * Maps any thrown error to a gRPC status explicitly (DESIGN §10): KeyVaErrors keep their code,
 * mapped status and details in the trailers; anything else is INTERNAL and logged.
 */
import * as grpc from '@grpc/grpc-js';
import { ERROR_METADATA, KeyVaError } from '@keyva/proto/errors';

export function asKeyVaError(e: unknown): KeyVaError {
  if (e instanceof KeyVaError) return e;
  return new KeyVaError('INTERNAL', 'internal error; see the node log', {}, { cause: e });
}

export function toServiceError(err: KeyVaError): Partial<grpc.StatusObject> & { code: grpc.status } {
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_METADATA.code, err.code);
  metadata.set(ERROR_METADATA.retryable, String(err.retryable));
  if (Object.keys(err.details).length > 0) metadata.set(ERROR_METADATA.details, JSON.stringify(err.details));
  return { code: err.grpcCode as number as grpc.status, details: `${err.code}: ${err.message}`, metadata };
}
