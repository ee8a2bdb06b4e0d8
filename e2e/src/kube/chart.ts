/** The chart, rendered and linted by the real helm binary (scripts/go-tools.sh helm). */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { type KubeClient, type KubeObject, RESOURCES } from '@keyva/operator/kube';
import { parseAllDocuments } from 'yaml';
import { goTool } from './control-plane.ts';

const run = promisify(execFile);
export const CHART_DIR = resolve(import.meta.dirname, '..', '..', '..', 'charts', 'keyva');

export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const bin = await goTool('helm');
  return run(bin, args, {
    maxBuffer: 16 << 20,
    env: { ...process.env, HELM_CACHE_HOME: '/tmp/keyva-helm/cache', HELM_CONFIG_HOME: '/tmp/keyva-helm/config', HELM_DATA_HOME: '/tmp/keyva-helm/data' },
  });
}

export async function renderChart(release: string, namespace: string, sets: Record<string, string | number | boolean> = {}): Promise<KubeObject[]> {
  const setArgs = Object.entries(sets).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
  const { stdout } = await helm(['template', release, CHART_DIR, '--namespace', namespace, '--include-crds', ...setArgs]);
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object' && typeof o.kind === 'string');
}

const ORDER = [
  'CustomResourceDefinition',
  'Namespace',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'ConfigMap',
  'Deployment',
];

/** Applies rendered manifests (server-side apply, as `helm`), CRDs first and waits for them to be Established. */
export async function applyManifests(client: KubeClient, objects: KubeObject[]): Promise<void> {
  const rank = (o: KubeObject) => {
    const i = ORDER.indexOf(o.kind ?? '');
    return i < 0 ? ORDER.length : i;
  };
  for (const o of [...objects].sort((a, b) => rank(a) - rank(b))) {
    await client.apply(o, { fieldManager: 'helm' });
    if (o.kind === 'CustomResourceDefinition') await waitEstablished(client, o.metadata?.name ?? '');
  }
}

async function waitEstablished(client: KubeClient, name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const crd = await client.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(
      RESOURCES.CustomResourceDefinition,
      undefined,
      name,
    );
    if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`CRD ${name} not Established`);
}
