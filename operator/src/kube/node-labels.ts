/**
 * Labels of the Kubernetes nodes member pods run on (for their failure zone), read with a plain
 * GET per node name and cached. Reading nodes needs a cluster-wide `get nodes` grant (the chart's
 * ClusterRole has it; a namespaced install does not): without it the lookup answers "unknown"
 * and placement runs without zones, which is logged once, never an error.
 */
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from './kube-client.ts';
import { RESOURCES } from './resources.ts';

export interface NodeLabelsOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly now: () => number;
  /** Reuse an answer (or a failure) this long. */
  readonly ttlMs?: number;
}

export class NodeLabels {
  private readonly o: NodeLabelsOptions;
  private readonly cache = new Map<string, { at: number; labels: Readonly<Record<string, string>> | undefined }>();
  private warned = false;

  constructor(o: NodeLabelsOptions) {
    this.o = o;
  }

  /** The node's labels; undefined when it does not exist or cannot be read. */
  async of(nodeName: string): Promise<Readonly<Record<string, string>> | undefined> {
    const hit = this.cache.get(nodeName);
    if (hit && this.o.now() - hit.at < (this.o.ttlMs ?? 60_000)) return hit.labels;
    let labels: Readonly<Record<string, string>> | undefined;
    try {
      const n = await this.o.client.getOrUndefined<KubeObject>(RESOURCES.Node, undefined, nodeName);
      labels = n?.metadata?.labels ?? (n ? {} : undefined);
    } catch (e) {
      if (!this.warned) {
        this.warned = true;
        this.o.log.warn({ node: nodeName, err: (e as Error).message }, 'cannot read Kubernetes nodes: member zones unknown, placement runs without zones');
      }
      labels = undefined;
    }
    this.cache.set(nodeName, { at: this.o.now(), labels });
    if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value as string);
    return labels;
  }
}
