/**
 * The writes of the kill -9 replication tests: write number i is key `crash-<i>` at hash
 * `i * 7919`, value `v<i>`. Both sides need them: the tests (`crash-trio.ts`) check them, and the
 * replica child process (`replica-process.ts`) proposes them, so they live apart from the
 * in-process harness the child does not load.
 */
import type { DataMutation } from '../replicated-command.ts';

export const crashKey = (i: number): Buffer => Buffer.from(`crash-${i}`);
export const crashHash = (i: number): bigint => BigInt(i) * 7919n;
/** Write number i: key `crash-<i>` at hash `i * 7919`, value `v<i>`. */
export const crashPut = (i: number): DataMutation => ({ type: 'put', hash: crashHash(i), key: crashKey(i), value: Buffer.from(`v${i}`), expiresAtMs: 0 });
