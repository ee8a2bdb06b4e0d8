export { hashTag, keyHash, tagHash, xxh64 } from './hash.ts';
export * from './partition-map.ts';
