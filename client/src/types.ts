/**
 * The public value types of the SDK: what callers pass in and get back. Keys and values are
 * bytes; strings are accepted and encoded as UTF-8. 64-bit versions are bigints.
 */

/** A key or value as the caller gives it: a string (UTF-8) or bytes. */
export type Bytes = string | Uint8Array;

/** A stored key with its current value. */
export interface Entry {
  readonly key: Buffer;
  /** Empty with `keysOnly` scans. */
  readonly value: Buffer;
  /** Commit timestamp of the write that produced this value. */
  readonly version: bigint;
  /** 0 = no TTL; otherwise the unix ms at which the key expires. */
  readonly expiresAtMs: number;
}

export const Consistency = {
  linearizable: 'linearizable',
  follower: 'follower',
  snapshot: 'snapshot',
} as const;
/** How fresh a read must be (DESIGN §5). Default `linearizable`. */
export type Consistency = (typeof Consistency)[keyof typeof Consistency];

export const WriteConcern = {
  majority: 'majority',
  all: 'all',
  leader: 'leader',
} as const;
/** When a write is acknowledged. Default `majority`; `leader` may be lost on failover. */
export type WriteConcern = (typeof WriteConcern)[keyof typeof WriteConcern];

/** Options every call accepts. */
export interface CallOptions {
  /** Aborting cancels the call; it then rejects with a KeyVaError `CANCELLED`. */
  readonly signal?: AbortSignal | undefined;
  /** Overall budget for the call, across all retries. Default: the client's `deadlineMs`. */
  readonly deadlineMs?: number | undefined;
}

export interface ReadCallOptions extends CallOptions {
  readonly consistency?: Consistency | undefined;
  /** With `consistency: 'snapshot'` (implied when set): read as of this timestamp. */
  readonly snapshotTs?: bigint | undefined;
}

/**
 * A precondition for a write; at most one may be set. A conditional write is not idempotent,
 * so the SDK never retries it after an ambiguous failure (see docs/sdk.md).
 */
export interface WriteConditions {
  /** The key must not exist. */
  readonly ifAbsent?: boolean | undefined;
  /** The key must exist. */
  readonly ifExists?: boolean | undefined;
  /** The key's current version must equal this. */
  readonly ifVersion?: bigint | undefined;
  /** The key's current value must equal these bytes. */
  readonly ifValue?: Bytes | undefined;
}

export interface PutOptions extends CallOptions, WriteConditions {
  /** Expire the key this many ms after the write. 0 or unset = keep forever. */
  readonly ttlMs?: number | undefined;
  readonly writeConcern?: WriteConcern | undefined;
}

export interface DeleteOptions extends CallOptions, WriteConditions {
  readonly writeConcern?: WriteConcern | undefined;
}

export interface PutResult {
  readonly version: bigint;
}

export interface DeleteResult {
  /** false when the key did not exist (after a retry, a delete that did apply may report false). */
  readonly deleted: boolean;
  readonly version: bigint;
}

/** What a compare-and-set compares against. */
export type CasExpected = { readonly version: bigint } | { readonly value: Bytes } | { readonly absent: true };

export interface CasOptions extends CallOptions {
  readonly ttlMs?: number | undefined;
  readonly writeConcern?: WriteConcern | undefined;
}

export type CasResult = { readonly ok: true; readonly version: bigint } | { readonly ok: false; readonly currentVersion: bigint };

/** One write of a batch. Mutations of one partition (one hash tag) apply atomically. */
export type Mutation =
  | ({ readonly type: 'put'; readonly key: Bytes; readonly value: Bytes; readonly ttlMs?: number | undefined } & WriteConditions)
  | ({ readonly type: 'delete'; readonly key: Bytes } & WriteConditions);

export interface BatchWriteOptions extends CallOptions {
  readonly writeConcern?: WriteConcern | undefined;
}

export interface BatchWriteResult {
  /** Commit version per mutation, same order. */
  readonly versions: bigint[];
}

export interface ScanOptions extends ReadCallOptions {
  /** Scan inside one hash tag: keys in key order, one partition. Unset = whole keyspace (not in key order). */
  readonly tag?: Bytes | undefined;
  /** Only keys starting with these bytes. */
  readonly prefix?: Bytes | undefined;
  /** Inclusive start key (tag scans). */
  readonly start?: Bytes | undefined;
  /** Exclusive end key (tag scans). */
  readonly end?: Bytes | undefined;
  /** Total number of entries to return; 0 or unset = no limit (`scanPage`: page size, default 1000). */
  readonly limit?: number | undefined;
  /** Values left empty. */
  readonly keysOnly?: boolean | undefined;
  /** Continue a previous `scanPage`. */
  readonly cursor?: string | undefined;
}

export interface ScanPage {
  readonly items: Entry[];
  /** Pass as `cursor` to get the next page; undefined when the scan is complete. */
  readonly cursor: string | undefined;
}

/** Calls addressed to one node rather than routed by key. */
export interface NodeCallOptions extends CallOptions {
  /** host:port of the node to ask. Default: the first configured endpoint. */
  readonly endpoint?: string | undefined;
}

export interface HealthStatus {
  readonly status: 'SERVING' | 'NOT_SERVING' | 'STATUS_UNSPECIFIED';
  readonly nodeId: string;
}

export interface NodeInfo {
  readonly nodeId: string;
  readonly version: string;
  readonly grpcAddress: string;
  readonly httpAddress: string;
  readonly engine: string;
  readonly dataDir: string;
  readonly partitions: number;
  readonly uptimeMs: number;
  readonly storageBytes: number;
  readonly keysEstimate: number;
}
