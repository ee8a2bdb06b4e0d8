/**
 * Client configuration: what `KeyVa.connect` accepts, its defaults, and their validation.
 * Every limit is named and bounded.
 */
import * as grpc from '@grpc/grpc-js';
import { KeyVaError } from '@keyva/proto/errors';
import { MESSAGE_BYTES_MAX_DEFAULT } from './channel-pool.ts';
import { type Clock, systemClock } from './clock.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';

export interface ClientOptions {
  /** Seed nodes as host:port, at least one. The partition map tells the client about the rest. */
  readonly endpoints: readonly string[];
  /** Channels (HTTP/2 connections) per node. Default 2. */
  readonly poolSize?: number | undefined;
  /** Default overall budget of a call, retries included. Default 5000. */
  readonly deadlineMs?: number | undefined;
  /** Retry policy; unset fields keep their defaults (attemptsMax 12, baseDelayMs 20, maxDelayMs 1000: `DEFAULT_RETRY_POLICY`). */
  readonly retry?: Partial<RetryPolicy> | undefined;
  /** Single-key get/put/delete over the pipelined bidirectional stream. Default true. */
  readonly useStream?: boolean | undefined;
  /** Requests on the wire per stream, at most. Default 1024. */
  readonly inFlightMax?: number | undefined;
  /** Requests waiting for a stream slot, at most (beyond: UNAVAILABLE, retried with backoff). Default 16384. */
  readonly streamQueueMax?: number | undefined;
  /** Largest gRPC message sent or received. Default 8 MiB. */
  readonly messageBytesMax?: number | undefined;
  /** Keepalive ping interval while calls are open. Default 30000. */
  readonly keepaliveTimeMs?: number | undefined;
  /** Keepalive ping timeout. Default 10000. */
  readonly keepaliveTimeoutMs?: number | undefined;
  /** Channel credentials. Default insecure (plaintext, for loopback and in-cluster meshes). */
  readonly credentials?: grpc.ChannelCredentials | undefined;
  /** Whether `connect` must load the partition map (fails when no endpoint answers). Default true. */
  readonly requireMap?: boolean | undefined;
  /** Randomness for backoff jitter, in [0, 1). Default Math.random. */
  readonly random?: (() => number) | undefined;
  /** Clock for deadlines and backoff sleeps. Default the system clock. */
  readonly clock?: Clock | undefined;
  /**
   * Exactly-once writes (docs/sdk.md): every put, delete and batch carries a random request id,
   * reused by its resends, so a write may be resent after an ambiguous failure without applying
   * twice. Default true. Turn off only against nodes that predate request ids (they ignore the
   * id, so a resend could apply twice): writes are then resent only when they provably did not apply.
   */
  readonly exactlyOnce?: boolean | undefined;
}

export interface ResolvedOptions {
  readonly endpoints: readonly string[];
  readonly poolSize: number;
  readonly deadlineMs: number;
  readonly retry: RetryPolicy;
  readonly useStream: boolean;
  readonly inFlightMax: number;
  readonly streamQueueMax: number;
  readonly messageBytesMax: number;
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly credentials: grpc.ChannelCredentials;
  readonly requireMap: boolean;
  readonly random: () => number;
  readonly clock: Clock;
  readonly exactlyOnce: boolean;
  /** Nodes the channel pool keeps channels for, at most. */
  readonly nodesMax: number;
}

export const CLIENT_DEFAULTS = {
  poolSize: 2,
  deadlineMs: 5000,
  inFlightMax: 1024,
  streamQueueMax: 16384,
  messageBytesMax: MESSAGE_BYTES_MAX_DEFAULT,
  keepaliveTimeMs: 30_000,
  keepaliveTimeoutMs: 10_000,
  nodesMax: 1024,
} as const;

const ENDPOINT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/;

function positiveInt(v: number | undefined, dflt: number, field: string): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n < 1) throw new KeyVaError('INVALID_ARGUMENT', `${field} must be a positive integer, got ${String(v)}`, { field });
  return n;
}

export function resolveOptions(o: ClientOptions): ResolvedOptions {
  if (!Array.isArray(o.endpoints) || o.endpoints.length === 0)
    throw new KeyVaError('INVALID_ARGUMENT', 'endpoints must list at least one host:port', { field: 'endpoints' });
  for (const e of o.endpoints) {
    if (typeof e !== 'string' || !ENDPOINT.test(e)) throw new KeyVaError('INVALID_ARGUMENT', `endpoint ${String(e)} is not host:port`, { field: 'endpoints' });
  }
  const retry: RetryPolicy = {
    attemptsMax: positiveInt(o.retry?.attemptsMax, DEFAULT_RETRY_POLICY.attemptsMax, 'retry.attemptsMax'),
    baseDelayMs: positiveInt(o.retry?.baseDelayMs, DEFAULT_RETRY_POLICY.baseDelayMs, 'retry.baseDelayMs'),
    maxDelayMs: positiveInt(o.retry?.maxDelayMs, DEFAULT_RETRY_POLICY.maxDelayMs, 'retry.maxDelayMs'),
  };
  return {
    endpoints: [...new Set(o.endpoints)],
    poolSize: positiveInt(o.poolSize, CLIENT_DEFAULTS.poolSize, 'poolSize'),
    deadlineMs: positiveInt(o.deadlineMs, CLIENT_DEFAULTS.deadlineMs, 'deadlineMs'),
    retry,
    useStream: o.useStream ?? true,
    inFlightMax: positiveInt(o.inFlightMax, CLIENT_DEFAULTS.inFlightMax, 'inFlightMax'),
    streamQueueMax: positiveInt(o.streamQueueMax, CLIENT_DEFAULTS.streamQueueMax, 'streamQueueMax'),
    messageBytesMax: positiveInt(o.messageBytesMax, CLIENT_DEFAULTS.messageBytesMax, 'messageBytesMax'),
    keepaliveTimeMs: positiveInt(o.keepaliveTimeMs, CLIENT_DEFAULTS.keepaliveTimeMs, 'keepaliveTimeMs'),
    keepaliveTimeoutMs: positiveInt(o.keepaliveTimeoutMs, CLIENT_DEFAULTS.keepaliveTimeoutMs, 'keepaliveTimeoutMs'),
    credentials: o.credentials ?? grpc.credentials.createInsecure(),
    requireMap: o.requireMap ?? true,
    random: o.random ?? Math.random,
    clock: o.clock ?? systemClock,
    exactlyOnce: o.exactlyOnce ?? true,
    nodesMax: CLIENT_DEFAULTS.nodesMax,
  };
}
