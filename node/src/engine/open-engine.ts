/** Creates and opens the configured storage engine. */
import { MemoryEngine } from './memory-engine.ts';
import { RocksDbEngine, type RocksDbEngineTuning } from './rocksdb-engine.ts';
import type { RocksDbOptions, StorageEngine } from './types.ts';

export type EngineConfig = { readonly kind: 'memory' } | ({ readonly kind: 'rocksdb' } & RocksDbOptions);

/** Opens the engine; throws KeyVaError (INVALID_ARGUMENT for bad options, STORAGE_ERROR on I/O). */
export async function openEngine(config: EngineConfig, tuning: RocksDbEngineTuning = {}): Promise<StorageEngine> {
  let engine: StorageEngine;
  switch (config.kind) {
    case 'memory':
      engine = new MemoryEngine();
      break;
    case 'rocksdb':
      engine = new RocksDbEngine(
        {
          path: config.path,
          compression: config.compression,
          bloomBitsPerKey: config.bloomBitsPerKey,
          blockCacheBytes: config.blockCacheBytes,
          ...(config.walCompression === undefined ? {} : { walCompression: config.walCompression }),
        },
        tuning,
      );
      break;
  }
  await engine.open();
  return engine;
}
