/**
 * A supervised client-node informer. client-node's ListWatch keeps its cache and re-lists on
 * 410 Gone, but on any other error it calls the error callbacks and STOPS: this wrapper restarts
 * it with exponential backoff, tracks whether the cache has synced, and only forwards objects to
 * a synchronous `onEvent` (which must only enqueue a key: client-node drops returned promises).
 */
import { type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeClient, KubeObject } from './kube-client.ts';
import { type ResourceType, resourcePath } from './resources.ts';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerOptions {
  readonly client: KubeClient;
  readonly resource: ResourceType;
  /** '' or undefined: all namespaces. */
  readonly namespace?: string | undefined;
  readonly labelSelector?: string | undefined;
  readonly log: Logger;
  readonly onEvent: (event: InformerEvent, obj: KubeObject) => void;
  /** First restart delay after an error. Default 500 ms; doubles up to `restartDelayMaxMs`. */
  readonly restartDelayMs?: number;
  readonly restartDelayMaxMs?: number;
}

export class SupervisedInformer<T extends KubeObject = KubeObject> {
  private readonly lw: ListWatch<KubernetesObject>;
  private readonly o: InformerOptions;
  private stopped = true;
  private synced = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Restarts after errors, for tests and metrics. */
  restarts = 0;

  constructor(o: InformerOptions) {
    this.o = o;
    const path = resourcePath(o.resource, o.namespace || undefined);
    const listFn = async () => {
      const list = await o.client.list<KubeObject>(o.resource, o.namespace || undefined, o.labelSelector);
      // client-node's ListWatch needs apiVersion/kind-less items; list items from the API lack them too.
      return { ...list, apiVersion: o.resource.apiVersion, kind: `${o.resource.kind}List`, items: list.items } as unknown as { items: KubernetesObject[] };
    };
    this.lw = new ListWatch<KubernetesObject>(path, new Watch(o.client.kubeConfig), listFn, false, o.labelSelector);
    const forward = (event: InformerEvent) => (obj: KubernetesObject) => {
      try {
        o.onEvent(event, obj as KubeObject);
      } catch (e) {
        o.log.error({ err: e, resource: o.resource.plural }, 'informer handler threw');
      }
    };
    this.lw.on('add', forward('add'));
    this.lw.on('update', forward('update'));
    this.lw.on('delete', forward('delete'));
    this.lw.on('error', (err: unknown) => this.onError(err));
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.startOnce();
  }

  private async startOnce(): Promise<void> {
    const before = this.failures;
    let failedDuringStart = false;
    const mark = () => {
      failedDuringStart = true;
    };
    this.lw.on('error', mark);
    try {
      await this.lw.start();
    } catch (e) {
      failedDuringStart = true;
      this.onError(e);
    } finally {
      this.lw.off('error', mark);
    }
    if (!failedDuringStart && this.failures === before) {
      this.synced = true;
      this.failures = 0;
    }
  }

  private onError(err: unknown): void {
    this.synced = false;
    if (this.stopped) return;
    this.failures++;
    const base = this.o.restartDelayMs ?? 500;
    const delay = Math.min(base * 2 ** Math.min(this.failures - 1, 10), this.o.restartDelayMaxMs ?? 30_000);
    this.o.log.warn({ err: errText(err), resource: this.o.resource.plural, delayMs: delay }, 'informer stopped on an error; restarting');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      this.restarts++;
      void this.startOnce();
    }, delay);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace) as readonly T[];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace) as T | undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.synced = false;
    clearTimeout(this.restartTimer);
    await this.lw.stop();
  }
}

function errText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
