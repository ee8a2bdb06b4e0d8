export * from './informer.ts';
export * from './kube-client.ts';
export * from './resources.ts';
