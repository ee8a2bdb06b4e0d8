/** REST paths of the Kubernetes kinds KeyVa reads and writes (a static table: no discovery calls). */
import { CLUSTER_KIND, CLUSTER_PLURAL, GROUP, VERSION } from '../api/constants.ts';

export interface ResourceType {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

const T = (apiVersion: string, kind: string, plural: string, namespaced = true): ResourceType => ({ apiVersion, kind, plural, namespaced });

export const RESOURCES = {
  KeyVaCluster: T(`${GROUP}/${VERSION}`, CLUSTER_KIND, CLUSTER_PLURAL),
  Pod: T('v1', 'Pod', 'pods'),
  PersistentVolumeClaim: T('v1', 'PersistentVolumeClaim', 'persistentvolumeclaims'),
  Service: T('v1', 'Service', 'services'),
  ConfigMap: T('v1', 'ConfigMap', 'configmaps'),
  Event: T('v1', 'Event', 'events'),
  Namespace: T('v1', 'Namespace', 'namespaces', false),
  Node: T('v1', 'Node', 'nodes', false),
  ServiceAccount: T('v1', 'ServiceAccount', 'serviceaccounts'),
  Secret: T('v1', 'Secret', 'secrets'),
  PodDisruptionBudget: T('policy/v1', 'PodDisruptionBudget', 'poddisruptionbudgets'),
  Lease: T('coordination.k8s.io/v1', 'Lease', 'leases'),
  Deployment: T('apps/v1', 'Deployment', 'deployments'),
  ClusterRole: T('rbac.authorization.k8s.io/v1', 'ClusterRole', 'clusterroles', false),
  ClusterRoleBinding: T('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  Role: T('rbac.authorization.k8s.io/v1', 'Role', 'roles'),
  RoleBinding: T('rbac.authorization.k8s.io/v1', 'RoleBinding', 'rolebindings'),
  CustomResourceDefinition: T('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'customresourcedefinitions', false),
  ServiceMonitor: T('monitoring.coreos.com/v1', 'ServiceMonitor', 'servicemonitors'),
} as const satisfies Record<string, ResourceType>;

export type KindName = keyof typeof RESOURCES;

export function resourceFor(apiVersion: string, kind: string): ResourceType {
  const r = Object.values(RESOURCES).find((x) => x.apiVersion === apiVersion && x.kind === kind);
  if (!r) throw new Error(`unknown resource ${apiVersion} ${kind}: add it to operator/src/kube/resources.ts`);
  return r;
}

/** `/api/v1/namespaces/ns/pods[/name[/sub]]` or `/apis/group/version/...`. */
export function resourcePath(r: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  const base = r.apiVersion.includes('/') ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
  let p = base;
  if (r.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}
