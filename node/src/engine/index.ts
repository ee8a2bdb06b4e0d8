/**
 * The storage engine package: the `StorageEngine` contract, the memory and RocksDB engines, the
 * on-disk key codec and the `openEngine` factory. Only `node/src/engine` imports RocksDB.
 *
 * Stable API: the contract types, `openEngine`, the engines, `metaKey`/`checkRawKey`.
 * Internals for tests and tools: `keyCodec`, `runEngineCompliance` (import `./compliance.ts`
 * directly; it needs vitest).
 */

export * as keyCodec from './key-codec.ts';
export { checkRawKey, META_PREFIX, metaKey } from './key-codec.ts';
export { MemoryEngine } from './memory-engine.ts';
export { type EngineConfig, openEngine } from './open-engine.ts';
export { DEFAULT_GROUP_LIMITS, IN_FLIGHT_REQUESTS_MAX, RocksDbEngine, type RocksDbEngineTuning, type WriterCounters } from './rocksdb-engine.ts';
export { SUPPORTED_COMPRESSIONS } from './rocksdb-options.ts';
export type { GroupLimits } from './rocksdb-writer-protocol.ts';
export * from './types.ts';
