/** Builds the CustomResourceDefinition objects from the schema source (keyva-cluster.ts). */
import { CLUSTER_KIND, CLUSTER_PLURAL, CLUSTER_SHORT_NAMES, CLUSTER_SINGULAR, GROUP, VERSION } from './constants.ts';
import { clusterRootRules, clusterSpecSchema, clusterStatusSchema } from './keyva-cluster.ts';
import { applyDefaults, type JsonSchemaProps } from './schema-builder.ts';

export interface PrinterColumn {
  name: string;
  type: 'integer' | 'string' | 'date' | 'boolean' | 'number';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    scope: 'Namespaced';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: JsonSchemaProps };
    }[];
  };
}

const clusterColumns: PrinterColumn[] = [
  { name: 'Nodes', type: 'integer', jsonPath: '.spec.nodes', description: 'Desired members' },
  { name: 'Ready', type: 'integer', jsonPath: '.status.readyNodes', description: 'Members ready' },
  { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
  { name: 'Operation', type: 'string', jsonPath: '.status.currentOperation.type' },
  { name: 'Placement', type: 'string', jsonPath: '.status.placement.state', description: 'Placement loop: Idle, Moving, Blocked, ...' },
  { name: 'Blocked', type: 'string', jsonPath: '.status.currentOperation.blockedBy', priority: 1 },
  { name: 'Under-Replicated', type: 'integer', jsonPath: '.status.underReplicatedPartitions', priority: 1 },
  { name: 'Placement-Detail', type: 'string', jsonPath: '.status.placement.message', priority: 1 },
  { name: 'Image', type: 'string', jsonPath: '.spec.image', priority: 1 },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

export function keyvaClusterCrd(): CustomResourceDefinition {
  const openAPIV3Schema: JsonSchemaProps = {
    type: 'object',
    description: 'A KeyVa cluster: sharded, replicated key-value storage nodes managed by the KeyVa operator.',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: { ...clusterSpecSchema.json, default: applyDefaults(clusterSpecSchema.json, {}) },
      status: clusterStatusSchema.json,
    },
    'x-kubernetes-validations': clusterRootRules,
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${CLUSTER_PLURAL}.${GROUP}`, labels: { 'app.kubernetes.io/name': 'keyva', 'app.kubernetes.io/part-of': 'keyva' } },
    spec: {
      group: GROUP,
      names: {
        kind: CLUSTER_KIND,
        listKind: `${CLUSTER_KIND}List`,
        plural: CLUSTER_PLURAL,
        singular: CLUSTER_SINGULAR,
        shortNames: [...CLUSTER_SHORT_NAMES],
        categories: ['keyva'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: clusterColumns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

/** Every CRD the project ships, with the file name it is written to. */
export function allCrds(): { file: string; crd: CustomResourceDefinition }[] {
  return [{ file: `${GROUP}_${CLUSTER_PLURAL}.yaml`, crd: keyvaClusterCrd() }];
}
