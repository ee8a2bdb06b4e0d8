/** Small helpers for the Kubernetes e2e suite. */
import { eventually as pollUntil } from '@keyva/node/testing/eventually';
import type { KeyVaCluster } from '@keyva/operator/api';
import { type KubeClient, type KubeObject, RESOURCES } from '@keyva/operator/kube';

/** `eventually` of the node's test helpers, with this suite's argument order and slower defaults (a kube API server is slow). */
export function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, intervalMs = 250): Promise<T> {
  return pollUntil(fn, what, timeoutMs, intervalMs);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Pod extends KubeObject {
  spec?: { containers: { image?: string; args?: string[] }[]; volumes?: { name: string; persistentVolumeClaim?: { claimName: string } }[] };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

export async function getCluster(c: KubeClient, ns: string, name: string): Promise<KeyVaCluster | undefined> {
  return (await c.getOrUndefined<KubeObject>(RESOURCES.KeyVaCluster, ns, name)) as unknown as KeyVaCluster | undefined;
}

export function condition(
  k: KeyVaCluster | undefined,
  type: string,
): { status: string; reason: string; message?: string; lastTransitionTime: string } | undefined {
  return k?.status?.conditions?.find((x) => x.type === type);
}

export async function pods(c: KubeClient, ns: string, cluster: string): Promise<Pod[]> {
  return (await c.list<Pod>(RESOURCES.Pod, ns, `keyva.io/cluster=${cluster}`)).items;
}

export async function pvcs(c: KubeClient, ns: string, cluster: string): Promise<KubeObject[]> {
  return (await c.list<KubeObject>(RESOURCES.PersistentVolumeClaim, ns, `keyva.io/cluster=${cluster}`)).items;
}

export async function events(
  c: KubeClient,
  ns: string,
  name: string,
): Promise<{ reason: string; type: string; message: string; reportingInstance?: string }[]> {
  const list = await c.list<
    KubeObject & { involvedObject: { name: string; kind: string }; reason: string; type: string; message: string; reportingInstance?: string }
  >(RESOURCES.Event, ns);
  return list.items.filter((e) => e.involvedObject.kind === 'KeyVaCluster' && e.involvedObject.name === name);
}

export function isReady(k: KeyVaCluster | undefined, nodes: number): boolean {
  return (
    condition(k, 'Ready')?.status === 'True' &&
    k?.status?.readyNodes === nodes &&
    k.status.nodes === nodes &&
    k.metadata.generation === k.status.observedGeneration
  );
}

export async function waitReady(c: KubeClient, ns: string, name: string, nodes: number, timeoutMs = 90_000): Promise<KeyVaCluster> {
  return eventually(
    `${ns}/${name} Ready with ${nodes} members`,
    async () => {
      const k = await getCluster(c, ns, name);
      return isReady(k, nodes) && (k?.status?.members ?? []).every((m) => m.ready) ? k : undefined;
    },
    timeoutMs,
  );
}

export function keyvaCluster(ns: string, name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'keyva.io/v1alpha1', kind: 'KeyVaCluster', metadata: { name, namespace: ns }, spec };
}
