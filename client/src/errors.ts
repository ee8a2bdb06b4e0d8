/**
 * Client side of the error registry: turns what arrives on the wire (a gRPC status with KeyVa
 * trailers, or an `Error` message on the pipelined stream) into a `KeyVaError`. The code comes
 * from the `keyva-error-code` trailer; without one (an error raised by grpc-js itself, or by a
 * proxy) the gRPC status code is mapped with `codeForGrpcStatus`. Message text is never read.
 *
 * Each decoded error also records whether the write it answers is known not to have applied
 * (`writeOutcome`), which decides whether a non-idempotent write may be retried (retry.ts).
 */
import type { WireErrorOut } from '@keyva/proto';
import { codeForGrpcStatus, ERROR_METADATA, type ErrorCode, type ErrorDetails, GrpcCode, isErrorCode, KeyVaError } from '@keyva/proto/errors';

/**
 * What is known about a failed write: `not-applied` when the node answered with a KeyVa code that
 * means it rejected the request before proposing it, or the SDK never sent it; otherwise
 * `unknown` (a timeout, a broken connection or stream after sending).
 */
export type WriteOutcome = 'not-applied' | 'unknown';

/** KeyVa codes a node may answer after a write was proposed: its outcome is not known. */
const AMBIGUOUS_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['DEADLINE_EXCEEDED', 'CANCELLED', 'INTERNAL', 'STORAGE_ERROR']);

/** Detail key the SDK adds when it gives up on a write whose outcome is unknown. */
export const OUTCOME_DETAIL = 'outcome';

const notApplied = new WeakSet<KeyVaError>();

/** Records that the request this error answers did not apply (it is safe to send again). */
export function markNotApplied(err: KeyVaError): KeyVaError {
  notApplied.add(err);
  return err;
}

export function writeOutcome(err: KeyVaError): WriteOutcome {
  return notApplied.has(err) ? 'not-applied' : 'unknown';
}

/**
 * A copy of `err` whose details say the write's outcome is unknown (`details.outcome = 'unknown'`).
 * With `retryable: false` the copy tells callers not to resend it blindly (a conditional write),
 * whatever its code's registry default.
 */
export function withUnknownOutcome(err: KeyVaError, retryable = err.retryable): KeyVaError {
  const copy = new KeyVaError(err.code, err.message, { ...err.details, [OUTCOME_DETAIL]: 'unknown' }, { cause: err });
  if (retryable !== copy.retryable) Object.defineProperty(copy, 'retryable', { value: retryable, enumerable: true, writable: false });
  return copy;
}

interface MetadataLike {
  get(key: string): Array<string | Buffer>;
}

/** The shape of a grpc-js `ServiceError` (structural, so no instanceof across module copies). */
interface ServiceErrorLike {
  code: number;
  details?: string;
  message?: string;
  metadata?: MetadataLike;
}

export function isServiceError(e: unknown): e is ServiceErrorLike {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number';
}

function firstString(md: MetadataLike | undefined, key: string): string | undefined {
  if (md === undefined || typeof md.get !== 'function') return undefined;
  const v = md.get(key)[0];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.toString('utf8');
}

/** Parses the `keyva-error-details` JSON object; values that are not strings are JSON-encoded. */
export function parseDetails(json: string | undefined): ErrorDetails {
  if (json === undefined || json === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const out: ErrorDetails = {};
  for (const [k, v] of Object.entries(parsed)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

function fromCode(serverCode: string | undefined, grpcStatus: number, message: string, details: ErrorDetails, cause: unknown): KeyVaError {
  if (serverCode !== undefined && isErrorCode(serverCode)) {
    const err = new KeyVaError(serverCode, message, details, { cause });
    return AMBIGUOUS_CODES.has(serverCode) ? err : markNotApplied(err);
  }
  // No KeyVa code (grpc-js, a proxy, or a code newer than this SDK): map the status; keep what the server said.
  const extra = serverCode !== undefined && serverCode !== '' ? { ...details, serverCode } : details;
  return new KeyVaError(codeForGrpcStatus(grpcStatus), message, extra, { cause });
}

/**
 * Decodes a grpc-js `ServiceError` (or anything thrown by a call) into a KeyVaError.
 * A KeyVaError passes through unchanged.
 */
export function decodeGrpcError(e: unknown): KeyVaError {
  if (e instanceof KeyVaError) return e;
  if (!isServiceError(e)) return new KeyVaError('INTERNAL', e instanceof Error ? e.message : String(e), {}, { cause: e });
  const md = e.metadata;
  const serverCode = firstString(md, ERROR_METADATA.code);
  const details = parseDetails(firstString(md, ERROR_METADATA.details));
  const message = e.details !== undefined && e.details !== '' ? e.details : (e.message ?? '');
  return fromCode(serverCode, e.code, message, details, e);
}

/** Decodes the `error` result of a pipelined `StreamResponse`: the node answered, with a code. */
export function decodeWireError(e: WireErrorOut): KeyVaError {
  // An unknown code on the stream has no gRPC status to fall back on; INTERNAL is the honest reading.
  return fromCode(e.code, GrpcCode.INTERNAL, e.message, Object.fromEntries(e.details.map((d) => [d.key, d.value])), undefined);
}
