/** Maps KeyVa's `RocksDbOptions` onto the binding's open options, rejecting what it cannot do. */
import { KeyVaError } from '@keyva/proto/errors';
import type { RocksOpenOptions } from './rocksdb-binding.ts';
import type { RocksDbOptions } from './types.ts';

/** The binding passes `cacheSize` as uint32. */
export const BLOCK_CACHE_BYTES_MAX = 2 ** 32 - 1;
/** Above this a bloom filter costs memory for no gain. */
export const BLOOM_BITS_PER_KEY_MAX = 64;

/**
 * Compaction output files are cut where the key space byte or the top byte of the hash changes
 * (ADR 0017), once they hold `SST_PARTITION_MIN_BYTES`: a hash range aligned to 1/256 of the
 * space, as evenly split partitions are, then owns most of its files in levels 1 and below whole,
 * and a range delete drops them without rewriting anything. Without the floor, a database of a
 * few hundred MiB is cut into 256 files per key space, and its compactions ran ~45 % longer.
 */
export const SST_PARTITION_PREFIX_BYTES = 2;
export const SST_PARTITION_MIN_BYTES = 4 << 20;

/** Compressions the binding can configure (ZSTD or none; 'tiered' mixes the two by level, ADR 0015). */
export const SUPPORTED_COMPRESSIONS: readonly RocksDbOptions['compression'][] = ['tiered', 'zstd', 'none'];

export function toRocksOpenOptions(o: RocksDbOptions): RocksOpenOptions {
  const bad = (field: string, msg: string): never => {
    throw new KeyVaError('INVALID_ARGUMENT', `rocksdb ${field}: ${msg}`, { field });
  };
  if (typeof o.path !== 'string' || o.path.length === 0) bad('path', 'must be a non-empty string');
  if (!SUPPORTED_COMPRESSIONS.includes(o.compression)) {
    bad('compression', `'${o.compression}' is not available in @nxtedition/rocksdb (it exposes only zstd, none, or both by level as 'tiered'; see ADR 0004)`);
  }
  if (!Number.isSafeInteger(o.blockCacheBytes) || o.blockCacheBytes < 0 || o.blockCacheBytes > BLOCK_CACHE_BYTES_MAX) {
    bad('blockCacheBytes', `must be an integer in [0, ${BLOCK_CACHE_BYTES_MAX}]`);
  }
  if (!Number.isFinite(o.bloomBitsPerKey) || o.bloomBitsPerKey < 0 || o.bloomBitsPerKey > BLOOM_BITS_PER_KEY_MAX) {
    bad('bloomBitsPerKey', `must be in [0, ${BLOOM_BITS_PER_KEY_MAX}]`);
  }
  if (o.walCompression !== undefined && typeof o.walCompression !== 'boolean') bad('walCompression', `must be true or false, got ${String(o.walCompression)}`);
  return {
    createIfMissing: true,
    compression: o.compression !== 'none',
    keyvaTieredCompression: o.compression === 'tiered',
    cacheSize: o.blockCacheBytes,
    filterPolicy: o.bloomBitsPerKey === 0 ? 'nullptr' : `bloomfilter:${o.bloomBitsPerKey}:false`,
    // Always passed: the binding's own default is ZSTD (see `RocksDbOptions.walCompression`).
    walCompression: o.walCompression ?? false,
    keyvaSstPartitionPrefix: SST_PARTITION_PREFIX_BYTES,
    keyvaSstPartitionMinBytes: SST_PARTITION_MIN_BYTES,
  };
}
