/**
 * Desired children of a KeyVaCluster, as plain manifests for server-side apply. Pure: the same
 * cluster gives byte-identical manifests, each carrying a content hash (keyva.io/spec-hash) so
 * the core can tell "missing or different" from the caches without a diff.
 */
import {
  ANNOTATIONS,
  API_VERSION,
  APP_NAME,
  CLUSTER_KIND,
  LABELS,
  MANAGED_BY,
  NODE_COMPONENT,
  NODE_CONFIG_DIR,
  NODE_CONFIG_FILE,
  NODE_DATA_DIR,
  NODE_GRPC_PORT,
  NODE_HTTP_PORT,
  NODE_SNAPSHOT_PORT,
} from '../api/constants.ts';
import type { KeyVaClusterSpec } from '../api/keyva-cluster.ts';
import { contentHash } from './hash.ts';
import { names } from './names.ts';
import type { KubeManifest, OwnerReference } from './types.ts';

export interface ClusterRef {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

export function ownerReference(c: ClusterRef): OwnerReference {
  return { apiVersion: API_VERSION, kind: CLUSTER_KIND, name: c.name, uid: c.uid, controller: true, blockOwnerDeletion: true };
}

export function clusterLabels(c: ClusterRef, component: string): Record<string, string> {
  return {
    [LABELS.name]: APP_NAME,
    [LABELS.instance]: c.name,
    [LABELS.component]: component,
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.cluster]: c.name,
  };
}

/** Selects the member pods of one cluster. */
export function memberSelector(c: ClusterRef): Record<string, string> {
  return { [LABELS.cluster]: c.name, [LABELS.component]: NODE_COMPONENT };
}

function withHash(m: KubeManifest): KubeManifest {
  const hash = contentHash(m);
  return { ...m, metadata: { ...m.metadata, annotations: { ...(m.metadata.annotations ?? {}), [ANNOTATIONS.specHash]: hash } } };
}

export function hashOf(m: KubeManifest): string {
  return m.metadata.annotations?.[ANNOTATIONS.specHash] ?? '';
}

/** Cluster-wide node settings, mounted at /etc/keyva/node.json (keys: docs/configuration.md). */
export function nodeConfig(spec: KeyVaClusterSpec): Record<string, unknown> {
  return {
    partitions: spec.partitions,
    engine: 'rocksdb',
    grpcPort: NODE_GRPC_PORT,
    httpPort: NODE_HTTP_PORT,
    snapshotPort: NODE_SNAPSHOT_PORT,
    logLevel: spec.observability.logLevel,
    tracing: spec.observability.tracing.otlpEndpoint !== undefined,
  };
}

export function configMap(c: ClusterRef, spec: KeyVaClusterSpec): KubeManifest {
  return withHash({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: names.configMap(c.name), namespace: c.namespace, labels: clusterLabels(c, 'config'), ownerReferences: [ownerReference(c)] },
    data: { [NODE_CONFIG_FILE]: `${JSON.stringify(nodeConfig(spec), null, 2)}\n` },
  });
}

const servicePorts = [
  { name: 'grpc', port: NODE_GRPC_PORT, targetPort: 'grpc', protocol: 'TCP' },
  { name: 'http', port: NODE_HTTP_PORT, targetPort: 'http', protocol: 'TCP' },
];

/** Headless: stable DNS names <member>.<cluster>-peers for node-to-node traffic, ready or not. */
export function peersService(c: ClusterRef): KubeManifest {
  return withHash({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: names.peersService(c.name), namespace: c.namespace, labels: clusterLabels(c, 'peers'), ownerReferences: [ownerReference(c)] },
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: memberSelector(c),
      ports: [...servicePorts, { name: 'snapshot', port: NODE_SNAPSHOT_PORT, targetPort: 'snapshot', protocol: 'TCP' }],
    },
  });
}

/** What clients dial (the SDK then routes by the partition map). */
export function clientService(c: ClusterRef): KubeManifest {
  return withHash({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: names.clientService(c.name), namespace: c.namespace, labels: clusterLabels(c, 'client'), ownerReferences: [ownerReference(c)] },
    spec: { type: 'ClusterIP', selector: memberSelector(c), ports: servicePorts },
  });
}

export function podDisruptionBudget(c: ClusterRef): KubeManifest {
  return withHash({
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: names.pdb(c.name), namespace: c.namespace, labels: clusterLabels(c, 'node'), ownerReferences: [ownerReference(c)] },
    spec: { maxUnavailable: 1, selector: { matchLabels: memberSelector(c) } },
  });
}

function memberLabels(c: ClusterRef, memberId: string): Record<string, string> {
  return { ...clusterLabels(c, NODE_COMPONENT), [LABELS.member]: memberId };
}

/**
 * The member's volume. It carries an owner reference only under deletionPolicy Delete: under
 * Retain nothing (not even a foreground cascading delete) can garbage-collect it.
 */
export function memberPvc(c: ClusterRef, spec: KeyVaClusterSpec, memberId: string): KubeManifest {
  const pvcSpec: Record<string, unknown> = {
    accessModes: ['ReadWriteOnce'],
    volumeMode: 'Filesystem',
    resources: { requests: { storage: String(spec.storage.size) } },
  };
  if (spec.storage.storageClassName !== undefined) pvcSpec.storageClassName = spec.storage.storageClassName;
  const metadata: KubeManifest['metadata'] = { name: names.pvc(memberId), namespace: c.namespace, labels: memberLabels(c, memberId) };
  if (spec.deletionPolicy === 'Delete') metadata.ownerReferences = [{ ...ownerReference(c), controller: false, blockOwnerDeletion: false }];
  return withHash({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata, spec: pvcSpec });
}

/**
 * The volume of a member that was drained and removed (the data plane confirmed it held no
 * replica): the same claim, the member label swapped for `keyva.io/removed-member` (so it is never
 * adopted as a member again, and the cluster still sees it), noting whose it was and since when it
 * is kept. Under deletionPolicy Delete it keeps its owner reference and is deleted after
 * `spec.storage.retainRemovedVolumesFor`; under Retain it has none and stays.
 */
export function removedMemberPvc(c: ClusterRef, spec: KeyVaClusterSpec, memberId: string, removedAtIso: string): KubeManifest {
  const pvc = memberPvc(c, spec, memberId);
  const labels: Record<string, string> = { ...pvc.metadata.labels, [LABELS.removedMember]: memberId };
  delete labels[LABELS.member];
  return {
    ...pvc,
    metadata: {
      ...pvc.metadata,
      labels,
      annotations: { ...pvc.metadata.annotations, [ANNOTATIONS.removedMember]: `${c.name}/${memberId}`, [ANNOTATIONS.removedAt]: removedAtIso },
    },
  };
}

function topologySpread(c: ClusterRef, spec: KeyVaClusterSpec): unknown[] {
  const whenUnsatisfiable = spec.topology.spread === 'Required' ? 'DoNotSchedule' : 'ScheduleAnyway';
  const labelSelector = { matchLabels: memberSelector(c) };
  return [
    { maxSkew: 1, topologyKey: spec.topology.zoneKey, whenUnsatisfiable, labelSelector },
    { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable, labelSelector },
  ];
}

/** A member's stable peer address: its DNS name under the headless peers Service. */
export function peerAddress(c: ClusterRef, memberId: string): string {
  return `${memberId}.${names.peersService(c.name)}.${c.namespace}.svc:${NODE_GRPC_PORT}`;
}

/**
 * Replication flags: the founders (fixed at creation) are every member's --peers; a member
 * added later lists them plus itself and starts with --join (it founds nothing; the placement
 * loop moves replicas onto it once it registered).
 */
export function dataPlaneArgs(c: ClusterRef, spec: KeyVaClusterSpec, memberId: string, founders: readonly string[]): string[] {
  if (founders.length === 0) return [];
  const founder = founders.includes(memberId);
  const peers = [...founders, ...(founder ? [] : [memberId])].map((id) => `${id}=${peerAddress(c, id)}`).join(',');
  return ['--peers', peers, '--replication-factor', String(spec.replicationFactor), ...(founder ? [] : ['--join'])];
}

/**
 * A member pod: name = member id = --node-id; its PVC; listens on all pod interfaces and
 * advertises the pod IP. Everything that shapes it is in its spec hash, so a change rolls it.
 */
export function memberPod(c: ClusterRef, spec: KeyVaClusterSpec, memberId: string, founders: readonly string[]): KubeManifest {
  const env: Record<string, unknown>[] = [
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'KEYVA_CLUSTER', value: c.name },
  ];
  const tracing = spec.observability.tracing;
  if (tracing.otlpEndpoint !== undefined) {
    env.push({ name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: tracing.otlpEndpoint });
    env.push({ name: 'OTEL_SERVICE_NAME', value: tracing.serviceName });
    env.push({ name: 'OTEL_RESOURCE_ATTRIBUTES', value: `k8s.pod.name=$(POD_NAME),k8s.namespace.name=${c.namespace},keyva.cluster=${c.name}` });
  }
  const container: Record<string, unknown> = {
    name: 'keyva',
    image: spec.image,
    imagePullPolicy: spec.imagePullPolicy,
    args: [
      '--config',
      `${NODE_CONFIG_DIR}/${NODE_CONFIG_FILE}`,
      '--node-id',
      memberId,
      '--data-dir',
      NODE_DATA_DIR,
      '--grpc-host',
      '0.0.0.0',
      '--http-host',
      '0.0.0.0',
      '--advertise-host',
      '$(POD_IP)',
      ...dataPlaneArgs(c, spec, memberId, founders),
    ],
    env,
    ports: [
      { name: 'grpc', containerPort: NODE_GRPC_PORT, protocol: 'TCP' },
      { name: 'http', containerPort: NODE_HTTP_PORT, protocol: 'TCP' },
      { name: 'snapshot', containerPort: NODE_SNAPSHOT_PORT, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, failureThreshold: 6, timeoutSeconds: 2 },
    volumeMounts: [
      { name: 'data', mountPath: NODE_DATA_DIR },
      { name: 'config', mountPath: NODE_CONFIG_DIR, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ],
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
  };
  if (spec.resources) container.resources = spec.resources;
  const podSpec: Record<string, unknown> = {
    hostname: memberId,
    subdomain: names.peersService(c.name),
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    enableServiceLinks: false,
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [container],
    volumes: [
      { name: 'data', persistentVolumeClaim: { claimName: names.pvc(memberId) } },
      { name: 'config', configMap: { name: names.configMap(c.name) } },
      { name: 'tmp', emptyDir: {} },
    ],
    topologySpreadConstraints: topologySpread(c, spec),
  };
  if (spec.topology.zones?.length) {
    podSpec.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: spec.topology.zoneKey, operator: 'In', values: [...spec.topology.zones] }] }],
        },
      },
    };
  }
  if (spec.topology.nodeSelector) podSpec.nodeSelector = spec.topology.nodeSelector;
  if (spec.topology.tolerations) podSpec.tolerations = spec.topology.tolerations;
  const annotations: Record<string, string> = {
    // The node config is mounted, not hashed by Kubernetes: its content is part of the pod hash.
    'keyva.io/config-hash': contentHash(nodeConfig(spec)),
  };
  if (spec.observability.metrics.enabled) {
    annotations['prometheus.io/scrape'] = 'true';
    annotations['prometheus.io/port'] = String(NODE_HTTP_PORT);
    annotations['prometheus.io/path'] = '/metrics';
  }
  return withHash({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: memberId, namespace: c.namespace, labels: memberLabels(c, memberId), annotations, ownerReferences: [ownerReference(c)] },
    spec: podSpec,
  });
}
