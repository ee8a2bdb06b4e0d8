/**
 * @keyva/client — the KeyVa TypeScript SDK. Stable API: `KeyVa`, its option and result types,
 * and the error registry re-exported from @keyva/proto. See docs/sdk.md.
 */

export { ERROR_CODE_LIST, type ErrorCode, ErrorCodes, type ErrorDetails, isKeyVaError, KeyVaError } from '@keyva/proto/errors';
export { KeyVa, SCAN_PAGE_LIMIT_DEFAULT } from './client.ts';
export type { Clock } from './clock.ts';
export { decodeGrpcError, OUTCOME_DETAIL, type WriteOutcome, writeOutcome } from './errors.ts';
export { hashTag, keyHash, type NodeId, type PartitionId, type PartitionInfo, PartitionMap, tagHash } from './keyspace/index.ts';
export { CLIENT_DEFAULTS, type ClientOptions } from './options.ts';
export { RECONNECT_OPTIONS } from './reconnect-options.ts';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';
export * from './types.ts';
