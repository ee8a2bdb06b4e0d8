import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCrds } from '../../scripts/gen-crds.ts';
import { keyvaClusterCrd } from './crd.ts';
import { clusterSpecSchema, specWithDefaults } from './keyva-cluster.ts';
import { applyDefaults, int, obj, optional, str, withDefault } from './schema-builder.ts';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');

describe('schema builder', () => {
  it('fields with defaults are not required; nested defaults are filled into a parent default', () => {
    const s = obj({ a: int(), b: withDefault(int(), 3), c: optional(str()), d: withDefault(obj({ e: withDefault(str(), 'x') }), {}) });
    expect(s.json.required).toEqual(['a']);
    expect(s.json.properties?.d?.default).toEqual({ e: 'x' }); // the API server does not default inside a default
    expect(applyDefaults(s.json, { a: 1 })).toEqual({ a: 1, b: 3, d: { e: 'x' } });
    expect(applyDefaults(s.json, { a: 1, d: {} })).toEqual({ a: 1, b: 3, d: { e: 'x' } });
  });

  it('specWithDefaults gives a complete spec from an empty one, matching the CRD defaults', () => {
    const spec = specWithDefaults({});
    expect(spec).toMatchObject({ nodes: 3, partitions: 64, replicationFactor: 3, deletionPolicy: 'Retain', pause: false, storage: { size: '10Gi' } });
    expect(keyvaClusterCrd().spec.versions[0]?.schema.openAPIV3Schema.properties?.spec?.default).toEqual(spec);
    expect(applyDefaults(clusterSpecSchema.json, { nodes: 5 })).toMatchObject({ nodes: 5, replicationFactor: 3 });
  });
});

describe('KeyVaCluster CRD', () => {
  const crd = keyvaClusterCrd();
  const v = crd.spec.versions[0];

  it('has the status subresource, printer columns and CEL rules for immutable fields', () => {
    expect(crd.metadata.name).toBe('keyvaclusters.keyva.io');
    expect(v?.subresources).toEqual({ status: {} });
    expect(v?.additionalPrinterColumns.map((c) => c.name)).toEqual([
      'Nodes',
      'Ready',
      'Phase',
      'Operation',
      'Placement',
      'Blocked',
      'Under-Replicated',
      'Placement-Detail',
      'Image',
      'Age',
    ]);
    const spec = v?.schema.openAPIV3Schema.properties?.spec;
    expect(spec?.properties?.partitions?.['x-kubernetes-validations']?.[0]?.rule).toBe('self == oldSelf');
    expect(JSON.stringify(spec?.properties?.storage?.['x-kubernetes-validations'])).toContain('storageClassName');
    expect(spec?.properties?.deletionPolicy?.enum).toEqual(['Retain', 'Delete']);
    const status = v?.schema.openAPIV3Schema.properties?.status;
    expect(status?.properties?.conditions?.['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect(status?.properties?.members?.['x-kubernetes-list-map-keys']).toEqual(['id']);
  });

  it('the checked-in CRDs (crds/ and charts/keyva/crds/) are what the generator writes', () => {
    for (const { path, text } of renderCrds()) expect(readFileSync(join(ROOT, path), 'utf8'), path).toBe(text);
  });
});
