export * from './constants.ts';
export * from './crd.ts';
export * from './keyva-cluster.ts';
export { applyDefaults, type JsonSchemaProps } from './schema-builder.ts';
