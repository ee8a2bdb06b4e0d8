/**
 * A small, typed Kubernetes REST client: one keep-alive HTTPS agent, credentials from a
 * client-node KubeConfig (in-cluster service account, kubeconfig file, client certificates),
 * server-side apply, JSON patch, deletes with preconditions. Errors carry the API status code
 * and `reason` (Conflict, NotFound, ...) — callers branch on those, never on message text.
 */
import * as https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../api/constants.ts';
import { type ResourceType, resourceFor, resourcePath } from './resources.ts';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  };
  [k: string]: unknown;
}

export interface KubeList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly details: unknown;
  constructor(status: number, reason: string, message: string, details?: unknown) {
    super(message);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409;
/** A failed JSON-patch `test` operation (a precondition) answers 422 Invalid... or 409 on resourceVersion. */
export const isPreconditionFailed = (e: unknown): boolean => e instanceof KubeApiError && (e.status === 409 || e.status === 422);

export interface RequestOptions {
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly timeoutMs?: number;
}

export interface DeleteOptions {
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly gracePeriodSeconds?: number;
  readonly propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
}

export interface KubeClientOptions {
  /** Per-request timeout. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Sockets per host, at most. Default 16. */
  readonly socketsMax?: number;
  /** How long credentials (tokens may rotate) are reused before being re-read. Default 60 s. */
  readonly credentialsTtlMs?: number;
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly server: string;
  private agent: https.Agent | undefined;
  private headers: Record<string, string> = {};
  private credentialsAt = Number.NEGATIVE_INFINITY;
  private readonly requestTimeoutMs: number;
  private readonly socketsMax: number;
  private readonly credentialsTtlMs: number;

  constructor(kc: KubeConfig, o: KubeClientOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.kubeConfig = kc;
    this.server = cluster.server.replace(/\/+$/, '');
    this.requestTimeoutMs = o.requestTimeoutMs ?? 30_000;
    this.socketsMax = o.socketsMax ?? 16;
    this.credentialsTtlMs = o.credentialsTtlMs ?? 60_000;
  }

  static fromKubeConfigString(text: string, o?: KubeClientOptions): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromString(text);
    return new KubeClient(kc, o);
  }

  /** KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
  static fromDefault(o?: KubeClientOptions): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return new KubeClient(kc, o);
  }

  private async credentials(): Promise<{ agent: https.Agent; headers: Record<string, string> }> {
    const now = performance.now();
    if (this.agent && now - this.credentialsAt < this.credentialsTtlMs) return { agent: this.agent, headers: this.headers };
    const opts: https.RequestOptions & { headers?: Record<string, string> } = { headers: {} };
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    const tls = { ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized, servername: opts.servername };
    const same = this.agent && JSON.stringify(tlsFingerprint(this.agent.options)) === JSON.stringify(tlsFingerprint(tls));
    if (!same) {
      this.agent?.destroy();
      this.agent = new https.Agent({ keepAlive: true, maxSockets: this.socketsMax, ...tls });
    }
    this.headers = headers;
    this.credentialsAt = now;
    return { agent: this.agent as https.Agent, headers };
  }

  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const { agent, headers } = await this.credentials();
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const body = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const h: Record<string, string> = { ...headers, Accept: 'application/json' };
    if (body) {
      h['Content-Type'] = o.contentType ?? 'application/json';
      h['Content-Length'] = String(body.length);
    }
    const timeoutMs = o.timeoutMs ?? this.requestTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const req = https.request(url, { method, agent, headers: h, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(parsed as T);
          const st = (parsed ?? {}) as { reason?: string; message?: string; details?: unknown };
          reject(new KubeApiError(status, st.reason ?? `HTTP${status}`, `${method} ${path}: ${status} ${st.message ?? text.slice(0, 300)}`, st.details));
        });
      });
      req.on('timeout', () => req.destroy(new KubeApiError(0, 'Timeout', `${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  get<T extends KubeObject>(r: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>('GET', resourcePath(r, namespace, name));
  }

  /** Returns undefined on 404. */
  async getOrUndefined<T extends KubeObject>(r: ResourceType, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return await this.get<T>(r, namespace, name);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  list<T extends KubeObject>(r: ResourceType, namespace?: string, labelSelector?: string): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath(r, namespace), { query: { labelSelector } });
  }

  create<T extends KubeObject>(obj: T, subresource?: string): Promise<T> {
    const r = resourceFor(obj.apiVersion ?? '', obj.kind ?? '');
    const name = subresource ? obj.metadata?.name : undefined;
    return this.request<T>('POST', resourcePath(r, obj.metadata?.namespace, name, subresource), { body: obj, query: { fieldManager: FIELD_MANAGER } });
  }

  /** PUT (optimistic concurrency through metadata.resourceVersion). */
  replace<T extends KubeObject>(obj: T, subresource?: string): Promise<T> {
    const r = resourceFor(obj.apiVersion ?? '', obj.kind ?? '');
    return this.request<T>('PUT', resourcePath(r, obj.metadata?.namespace, obj.metadata?.name, subresource), {
      body: obj,
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  /** Server-side apply under `fieldManager` (default: the operator's one manager), forcing conflicts. */
  apply<T extends KubeObject>(obj: KubeObject, o: { subresource?: string; fieldManager?: string; force?: boolean } = {}): Promise<T> {
    const r = resourceFor(obj.apiVersion ?? '', obj.kind ?? '');
    return this.request<T>('PATCH', resourcePath(r, obj.metadata?.namespace, obj.metadata?.name, o.subresource), {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: o.fieldManager ?? FIELD_MANAGER, force: o.force ?? true },
    });
  }

  /** RFC 6902 JSON patch; put `test` operations first to make it conditional. */
  jsonPatch<T extends KubeObject>(r: ResourceType, namespace: string | undefined, name: string, ops: JsonPatchOp[], subresource?: string): Promise<T> {
    return this.request<T>('PATCH', resourcePath(r, namespace, name, subresource), {
      body: ops,
      contentType: 'application/json-patch+json',
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  mergePatch<T extends KubeObject>(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    subresource?: string,
    fieldManager?: string,
  ): Promise<T> {
    return this.request<T>('PATCH', resourcePath(r, namespace, name, subresource), {
      body: patch,
      contentType: 'application/merge-patch+json',
      query: { fieldManager: fieldManager ?? FIELD_MANAGER },
    });
  }

  /** DELETE with optional uid/resourceVersion preconditions (the object we decided on, not a newer one with the same name). */
  delete(r: ResourceType, namespace: string | undefined, name: string, o: DeleteOptions = {}): Promise<unknown> {
    const preconditions: Record<string, string> = {};
    if (o.uid) preconditions.uid = o.uid;
    if (o.resourceVersion) preconditions.resourceVersion = o.resourceVersion;
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (Object.keys(preconditions).length) body.preconditions = preconditions;
    if (o.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = o.gracePeriodSeconds;
    if (o.propagationPolicy) body.propagationPolicy = o.propagationPolicy;
    return this.request('DELETE', resourcePath(r, namespace, name), { body });
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }
}

export type JsonPatchOp =
  | { op: 'test' | 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

function tlsFingerprint(o: { ca?: unknown; cert?: unknown; key?: unknown; rejectUnauthorized?: unknown; servername?: unknown }): unknown[] {
  const s = (x: unknown) => (x === undefined ? null : Buffer.isBuffer(x) ? x.toString('base64') : String(x));
  return [s(o.ca), s(o.cert), s(o.key), o.rejectUnauthorized ?? null, o.servername ?? null];
}
