export * from './conditions.ts';
export * from './hash.ts';
export * from './manifests.ts';
export * from './names.ts';
export * from './reconcile.ts';
export type * from './types.ts';
