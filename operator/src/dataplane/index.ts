export * from './admin-client.ts';
export * from './control-loop.ts';
export * from './node-probe.ts';
export * from './observer.ts';
export * from './replica-digests.ts';
export * from './step-executor.ts';
