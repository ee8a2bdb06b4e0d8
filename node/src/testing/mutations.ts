/** Test helpers: the data mutations of a replicated write, from strings. */
import type { DataMutation } from '../replication/replicated-command.ts';

export const putMutation = (hash: bigint, key: string, value: string): DataMutation => ({
  type: 'put',
  hash,
  key: Buffer.from(key),
  value: Buffer.from(value),
  expiresAtMs: 0,
});

export const deleteMutation = (hash: bigint, key: string): DataMutation => ({ type: 'delete', hash, key: Buffer.from(key) });
