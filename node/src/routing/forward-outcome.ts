/**
 * What a forwarding node answers when the forwarded call failed (ADR 0008 §8). Pure.
 *
 * - Nothing was sent (no address for the leader, or its channel could not connect before the
 *   connect bound): UNAVAILABLE, retryable, with the leader hint: nothing was proposed anywhere.
 * - The leader answered with a KeyVa error (its trailers carry `keyva-error-code`): passed on
 *   unchanged. The leader already follows the rule (NOT_LEADER/UNAVAILABLE only when nothing
 *   was proposed; DEADLINE_EXCEEDED once proposed with an unknown outcome), and a NOT_LEADER
 *   from it is not forwarded again (one hop).
 * - The call failed without a KeyVa answer after it was sent (connection lost, the leader died,
 *   deadline): for a WRITE the leader may have proposed it, so the outcome is unknown:
 *   DEADLINE_EXCEEDED with `details.outcome = 'unknown'`, never NOT_LEADER/UNAVAILABLE; a READ
 *   changes nothing and is answered UNAVAILABLE (retryable), or DEADLINE_EXCEEDED if the
 *   deadline passed.
 */
import { ERROR_METADATA, GrpcCode, isErrorCode, KeyVaError } from '@keyva/proto/errors';

interface MetadataLike {
  get(key: string): Array<string | Buffer>;
}

/** The fields of a grpc-js ServiceError this module reads. */
export interface CallFailure {
  readonly code: number;
  readonly details?: string;
  readonly metadata?: MetadataLike;
}

export interface ForwardContext {
  readonly self: string;
  readonly leader: string;
  readonly method: string;
  /** A write (its outcome matters when the answer is lost). */
  readonly write: boolean;
}

function first(md: MetadataLike | undefined, key: string): string | undefined {
  if (md === undefined || typeof md.get !== 'function') return undefined;
  const v = md.get(key)[0];
  return v === undefined ? undefined : String(v);
}

function parseDetails(json: string | undefined): Record<string, string> {
  if (json === undefined || json === '') return {};
  try {
    const o = JSON.parse(json) as unknown;
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return {};
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  } catch {
    return {};
  }
}

/** The forwarded call failed after it was handed to gRPC: the error to answer the client with. */
export function forwardedCallError(e: CallFailure, c: ForwardContext): KeyVaError {
  const code = first(e.metadata, ERROR_METADATA.code);
  const message = e.details ?? '';
  if (code !== undefined && isErrorCode(code)) {
    // The leader's own answer; strip the "CODE: " prefix its status text carries.
    const text = message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message;
    return new KeyVaError(code, text, parseDetails(first(e.metadata, ERROR_METADATA.details)));
  }
  const details = { forwardedTo: c.leader, leaderHint: c.leader, grpcStatus: String(e.code) };
  if (c.write) {
    return new KeyVaError(
      'DEADLINE_EXCEEDED',
      `outcome unknown: ${c.method} was forwarded by ${c.self} to the partition leader ${c.leader}, whose answer never arrived (${message || `gRPC status ${e.code}`}); it may or may not be applied`,
      { ...details, outcome: 'unknown' },
    );
  }
  // Even CANCELLED here is the leader's side (e.g. it shut down), not this caller's: retryable.
  return new KeyVaError(
    e.code === GrpcCode.DEADLINE_EXCEEDED ? 'DEADLINE_EXCEEDED' : 'UNAVAILABLE',
    `${c.method} forwarded by ${c.self} to the partition leader ${c.leader} failed (${message || `gRPC status ${e.code}`}); a read changes nothing, retry`,
    details,
  );
}

/** Nothing was sent to the leader: retryable, nothing was proposed. */
export function notForwardedError(c: ForwardContext, why: string): KeyVaError {
  return new KeyVaError('UNAVAILABLE', `${c.method}: node ${c.self} could not forward to the partition leader ${c.leader} (${why}); nothing was sent, retry`, {
    leaderHint: c.leader,
    forwarded: 'false',
  });
}
