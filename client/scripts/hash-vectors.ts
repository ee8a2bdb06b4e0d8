/**
 * Writes proto/testdata/hash-vectors.json: keys, their hash tags, XXH64 hashes and the
 * partition each lands in for several uniform partition counts. Run once when the vector set
 * grows; the test suite checks the implementation against the file, never the reverse.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hashTag, keyHash, PartitionMap, uniformPartitions } from '@keyva/client/keyspace';

const keys: Buffer[] = [
  '',
  'a',
  'abc',
  'hello',
  'user:1',
  'user:2',
  '{user42}:profile',
  '{user42}:orders:0001',
  'x{user42}y',
  '{}',
  '{}{user42}',
  '{',
  '}',
  '}{',
  'a{b}c{d}e',
  '{a}{b}',
  '{{a}}',
  'prefix{tag',
  'tag}{',
  '日本語のキー',
  '{日本}:1',
  'The quick brown fox jumps over the lazy dog',
  'k'.repeat(100),
  'x'.repeat(4096),
].map((s) => Buffer.from(s, 'utf8'));
keys.push(Buffer.from([0x00]), Buffer.from([0xff, 0x00, 0xfe]), Buffer.from([0x7b, 0x00, 0x7d]));

const counts = [1, 3, 64, 1000];
const maps = counts.map((c) => new PartitionMap(1n, uniformPartitions(c)));
const vectors = keys.map((k) => {
  const tag = hashTag(k);
  const h = keyHash(k);
  return {
    keyHex: k.toString('hex'),
    tagHex: tag ? Buffer.from(tag).toString('hex') : null,
    hash: h.toString(),
    partitions: Object.fromEntries(maps.map((m, i) => [String(counts[i]), m.locate(h).id])),
  };
});
const out = resolve(import.meta.dirname, '..', '..', 'proto', 'testdata', 'hash-vectors.json');
writeFileSync(
  out,
  `${JSON.stringify({ algorithm: 'xxh64', seed: 0, partitioning: 'uniform: partition i = [floor(i*2^64/n), floor((i+1)*2^64/n))', vectors }, null, 1)}\n`,
);
console.log(`wrote ${vectors.length} vectors to ${out}`);
