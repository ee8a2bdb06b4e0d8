/** Transport-neutral request and result shapes of the KV API (gRPC, REST and the stream share them). */
import type { Condition, Timestamp } from '../engine/types.ts';

export type Consistency = 'linearizable' | 'follower' | 'snapshot';
export type Concern = 'majority' | 'all' | 'leader';

export interface ReadSpec {
  readonly consistency: Consistency;
  /** With 'snapshot': the timestamp to read at. */
  readonly snapshotTs?: Timestamp | undefined;
  /** With 'follower': the most staleness accepted, in ms (default: the node's setting). */
  readonly maxStalenessMs?: number | undefined;
}

/** When a write is acknowledged (ADR 0008 §7); a lone node treats every concern alike. */
export interface WriteSpec {
  readonly concern: Concern;
  /** With 'all': how long to wait for every replica once the write committed. */
  readonly allTimeoutMs?: number | undefined;
  /**
   * The client's id of this logical write (16 bytes, the same in every resend): a replicated
   * partition applies it at most once (docs/adr/0011-exactly-once-writes.md).
   */
  readonly requestId?: Buffer | undefined;
}

export const MAJORITY: WriteSpec = { concern: 'majority' };

export interface GetInput {
  readonly key: Buffer;
  readonly read: ReadSpec;
}

export interface GetOutput {
  readonly found: boolean;
  readonly value: Buffer;
  readonly version: Timestamp;
  readonly expiresAtMs: number;
  readonly readTs: Timestamp;
}

export interface PutInput {
  readonly key: Buffer;
  readonly value: Buffer;
  /** 0 = no expiry. */
  readonly ttlMs: number;
  readonly condition?: Condition | undefined;
}

export interface DeleteInput {
  readonly key: Buffer;
  readonly condition?: Condition | undefined;
}

export type MutationInput = ({ readonly type: 'put' } & PutInput) | ({ readonly type: 'delete' } & DeleteInput);

export interface ScanInput {
  readonly tag: Buffer;
  readonly start: Buffer;
  readonly end: Buffer;
  readonly prefix: Buffer;
  /** 0 = no limit. */
  readonly limit: number;
  readonly cursor: string;
  readonly read: ReadSpec;
  readonly keysOnly: boolean;
}

export interface KeyValueOut {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly version: Timestamp;
  readonly expiresAtMs: number;
}

export interface ScanChunk {
  readonly items: KeyValueOut[];
  /** Set on the last chunk when the limit stopped the scan before the end. */
  readonly nextCursor: string;
  readonly readTs: Timestamp;
}
