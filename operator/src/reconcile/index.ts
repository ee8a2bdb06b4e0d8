export * from './conditions.ts';
export * from './hash.ts';
export * from './manifests.ts';
export * from './names.ts';
export * from './reconcile.ts';
export * from './status-diff.ts';
export type * from './types.ts';
