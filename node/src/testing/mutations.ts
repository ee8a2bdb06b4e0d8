/** Test helpers: the data mutations of a replicated write, from strings, and log entries carrying them. */
import type { Entry } from '../raft/types.ts';
import { type DataMutation, encodeCommand } from '../replication/replicated-command.ts';

export const putMutation = (hash: bigint, key: string, value: string): DataMutation => ({
  type: 'put',
  hash,
  key: Buffer.from(key),
  value: Buffer.from(value),
  expiresAtMs: 0,
});

export const deleteMutation = (hash: bigint, key: string): DataMutation => ({ type: 'delete', hash, key: Buffer.from(key) });

/** A normal log entry carrying a replicated command of `mutations` (request id none, nowMs 1000). */
export const commandEntry = (index: number, commitTs: bigint, mutations: readonly DataMutation[], term = 1): Entry => ({
  type: 'normal',
  index,
  term,
  data: new Uint8Array(encodeCommand({ id: BigInt(index), commitTs, nowMs: 1000, mutations })),
});
