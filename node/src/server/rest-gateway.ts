/**
 * REST gateway over the same KV layer as gRPC:
 *   GET/PUT/DELETE /v1/kv/{key}      key percent-encoded in the path
 *   GET /v1/kv?tag=&prefix=&start=&end=&limit=&cursor=&keysOnly=   scans
 *   GET /v1/node, GET /v1/partitions  node info and partition map
 *   GET /healthz, /readyz, /metrics
 * Bodies: JSON (`{"value": base64}` or `{"text": "utf-8"}`, plus ttlMs/ifAbsent/ifVersion/ifValue)
 * or raw `application/octet-stream` (options then come from the query string).
 * Reads take `?consistency=linearizable|follower|snapshot` (+ `snapshotTs`, `maxStalenessMs`);
 * writes take `?concern=majority|all|leader`. Key operations run through `KvOps`, like gRPC, so
 * in a replicated cluster any node answers them (forwarding to the partition's leader).
 */
import * as http from 'node:http';
import type { ConditionOut, ReadOptionsOut, WriteOptionsOut } from '@keyva/proto';
import { ERROR_METADATA, KeyVaError } from '@keyva/proto/errors';
import { propagation, ROOT_CONTEXT, type TextMapGetter } from '@opentelemetry/api';
import type { Condition } from '../engine/types.ts';
import { FOLLOWER_STALENESS_MS_MAX, type KvStore } from '../kv/kv-store.ts';
import type { KeyValueOut, ReadSpec } from '../kv/types.ts';
import type { NodeMetrics } from '../observability/metrics.ts';
import { type AdminSource, partitionMapToWire } from './admin-grpc.ts';
import { asKeyVaError } from './grpc-errors.ts';
import { type CallInfo, KvOps } from './kv-grpc.ts';
import type { RequestRunner } from './request-runner.ts';
import { u64 } from './wire.ts';

export interface RestOptions {
  readonly messageBytesMax: number;
}

const headerGetter: TextMapGetter<http.IncomingHttpHeaders> = {
  keys: (h) => Object.keys(h),
  get: (h, k) => h[k],
};

/** REST writes carry no request id (no deduplication, docs/adr/0011-exactly-once-writes.md). */
const NO_REQUEST_ID = Buffer.alloc(0);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeBase64(s: unknown, field: string): Buffer {
  if (typeof s !== 'string' || !BASE64.test(s)) throw new KeyVaError('INVALID_ENCODING', `${field} must be a base64 string`, { field });
  return Buffer.from(s, 'base64');
}

function asText(b: Buffer): string | undefined {
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

function bytesJson(name: string, b: Buffer): Record<string, string> {
  const text = asText(b);
  return text === undefined ? { [name]: b.toString('base64') } : { [name]: b.toString('base64'), [`${name}Text`]: text };
}

function entryJson(key: Buffer, v: { value: Buffer; version: bigint; expiresAtMs: number }, keysOnly = false): Record<string, unknown> {
  return {
    ...bytesJson('key', key),
    ...(keysOnly ? {} : bytesJson('value', v.value)),
    version: v.version.toString(),
    expiresAtMs: v.expiresAtMs,
  };
}

function readSpecFrom(q: URLSearchParams): ReadSpec {
  const c = q.get('consistency') ?? 'linearizable';
  if (c === 'linearizable' || c === 'follower') return { consistency: c };
  if (c === 'snapshot') return { consistency: 'snapshot', snapshotTs: u64(q.get('snapshotTs'), 'snapshotTs') };
  throw new KeyVaError('INVALID_ARGUMENT', `consistency must be linearizable, follower or snapshot, not '${c}'`, { field: 'consistency' });
}

const CONSISTENCY_WIRE = { linearizable: 'LINEARIZABLE', follower: 'FOLLOWER', snapshot: 'SNAPSHOT' } as const;

function readOptionsFrom(q: URLSearchParams): ReadOptionsOut {
  const spec = readSpecFrom(q);
  return { consistency: CONSISTENCY_WIRE[spec.consistency], snapshotTs: (spec.snapshotTs ?? 0n).toString() };
}

function writeOptionsFrom(q: URLSearchParams): WriteOptionsOut {
  const c = q.get('concern') ?? 'majority';
  if (c === 'majority') return { concern: 'MAJORITY' };
  if (c === 'all') return { concern: 'ALL' };
  if (c === 'leader') return { concern: 'LEADER' };
  throw new KeyVaError('INVALID_ARGUMENT', `concern must be majority, all or leader, not '${c}'`, { field: 'concern' });
}

function callInfoFrom(q: URLSearchParams): CallInfo {
  const s = q.get('maxStalenessMs');
  if (s === null || s === '') return { forwardedBy: undefined, deadlineMs: undefined, maxStalenessMs: undefined };
  if (!/^\d{1,10}$/.test(s) || Number(s) < 1 || Number(s) > FOLLOWER_STALENESS_MS_MAX)
    throw new KeyVaError('INVALID_ARGUMENT', `maxStalenessMs must be an integer from 1 to ${FOLLOWER_STALENESS_MS_MAX}`, { field: 'maxStalenessMs' });
  return { forwardedBy: undefined, deadlineMs: undefined, maxStalenessMs: Number(s) };
}

function conditionWire(c: Condition | undefined): ConditionOut | null {
  if (c === undefined) return null;
  switch (c.kind) {
    case 'absent':
      return { kind: 'absent', absent: true };
    case 'exists':
      return { kind: 'exists', exists: true };
    case 'versionEquals':
      return { kind: 'versionEquals', versionEquals: c.version.toString() };
    case 'valueEquals':
      return { kind: 'valueEquals', valueEquals: c.value };
  }
}

function intParam(q: URLSearchParams, name: string, code: 'INVALID_ARGUMENT' | 'INVALID_TTL' = 'INVALID_ARGUMENT'): number {
  const s = q.get(name);
  if (s === null || s === '') return 0;
  if (!/^-?\d+$/.test(s)) throw new KeyVaError(code, `${name} must be an integer`, { field: name });
  return Number(s);
}

function conditionFrom(o: { ifAbsent?: unknown; ifExists?: unknown; ifVersion?: unknown; ifValue?: unknown }): Condition | undefined {
  const set = [o.ifAbsent, o.ifExists, o.ifVersion, o.ifValue].filter((x) => x !== undefined && x !== null && x !== false && x !== 'false');
  if (set.length > 1) throw new KeyVaError('INVALID_ARGUMENT', 'give at most one of ifAbsent, ifExists, ifVersion, ifValue', { field: 'condition' });
  if (o.ifAbsent === true || o.ifAbsent === 'true') return { kind: 'absent' };
  if (o.ifExists === true || o.ifExists === 'true') return { kind: 'exists' };
  if (o.ifVersion !== undefined && o.ifVersion !== null) return { kind: 'versionEquals', version: u64(String(o.ifVersion), 'ifVersion') };
  if (o.ifValue !== undefined && o.ifValue !== null) return { kind: 'valueEquals', value: decodeBase64(o.ifValue, 'ifValue') };
  return undefined;
}

function decodeKey(raw: string): Buffer {
  try {
    return Buffer.from(decodeURIComponent(raw), 'utf8');
  } catch {
    // Percent-encoded bytes that are not UTF-8: decode byte by byte.
    const bytes: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i] as string;
      if (c === '%' && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) {
        bytes.push(Number.parseInt(raw.slice(i + 1, i + 3), 16));
        i += 2;
      } else if (c === '%') throw new KeyVaError('INVALID_ENCODING', 'the key in the path has a malformed percent-escape', { field: 'key' });
      else bytes.push(...Buffer.from(c, 'utf8'));
    }
    return Buffer.from(bytes);
  }
}

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > max) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.pause();
        reject(new BodyTooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export interface RestDeps {
  readonly kv: KvStore;
  /** The routed KV operations (forwarding in a replicated cluster); default: local only. */
  readonly ops?: KvOps;
  readonly runner: RequestRunner;
  readonly metrics: NodeMetrics;
  readonly admin: AdminSource;
  readonly ready: () => boolean;
}

export function createRestGateway(opts: RestOptions, deps: RestDeps): http.Server {
  const { kv, runner, metrics, admin } = deps;
  const ops = deps.ops ?? new KvOps(kv);

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const sendError = (res: http.ServerResponse, e: unknown, headers: Record<string, string> = {}) => {
    const err = asKeyVaError(e);
    send(res, err.httpStatus, { error: err.toJSON() }, { [ERROR_METADATA.code]: err.code, ...headers });
  };

  async function kvKey(req: http.IncomingMessage, res: http.ServerResponse, key: Buffer, q: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      const out = await ops.get({ key, read: readOptionsFrom(q) }, callInfoFrom(q));
      if (!out.found) throw new KeyVaError('KEY_NOT_FOUND', 'no such key', { key: key.toString('base64') });
      const value = Buffer.from(out.value ?? Buffer.alloc(0));
      const version = String(out.version ?? '0');
      const readTs = String(out.readTs ?? '0');
      const expiresAtMs = Number(out.expiresAtMs ?? 0);
      const meta = { 'keyva-version': version, 'keyva-read-ts': readTs, 'keyva-expires-at-ms': String(expiresAtMs) };
      if ((req.headers.accept ?? '').includes('application/octet-stream')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': value.length, ...meta });
        res.end(method === 'HEAD' ? undefined : value);
      } else send(res, 200, { ...entryJson(key, { value, version: BigInt(version), expiresAtMs }), readTs }, meta);
      return;
    }
    if (method === 'PUT' || method === 'POST') {
      const type = (req.headers['content-type'] ?? 'application/octet-stream').split(';')[0]?.trim().toLowerCase();
      let body: Buffer;
      try {
        body = await readBody(req, opts.messageBytesMax);
      } catch (e) {
        if (e instanceof BodyTooLarge) {
          res.setHeader('connection', 'close');
          throw new KeyVaError('MESSAGE_TOO_LARGE', `the body exceeds ${opts.messageBytesMax} bytes`, { limit: String(opts.messageBytesMax) });
        }
        throw e;
      }
      let value: Buffer;
      let ttlMs: number;
      let condition: Condition | undefined;
      if (type === 'application/json') {
        let o: Record<string, unknown>;
        try {
          o = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        } catch {
          throw new KeyVaError('INVALID_ENCODING', 'the body is not valid JSON; send {"value": "<base64>"} or {"text": "..."}', {});
        }
        if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new KeyVaError('INVALID_ENCODING', 'the JSON body must be an object', {});
        if (o.value !== undefined) value = decodeBase64(o.value, 'value');
        else if (typeof o.text === 'string') value = Buffer.from(o.text, 'utf8');
        else throw new KeyVaError('INVALID_ARGUMENT', 'the JSON body needs "value" (base64) or "text" (a string)', { field: 'value' });
        if (o.ttlMs !== undefined && (typeof o.ttlMs !== 'number' || !Number.isInteger(o.ttlMs)))
          throw new KeyVaError('INVALID_TTL', 'ttlMs must be an integer number of milliseconds', { field: 'ttlMs' });
        ttlMs = (o.ttlMs as number | undefined) ?? 0;
        condition = conditionFrom(o);
      } else if (type !== 'multipart/form-data') {
        // Anything but JSON is the raw value (curl's default form type included).
        value = body;
        ttlMs = intParam(q, 'ttlMs', 'INVALID_TTL');
        condition = conditionFrom({
          ifAbsent: q.get('ifAbsent') ?? undefined,
          ifExists: q.get('ifExists') ?? undefined,
          ifVersion: q.get('ifVersion') ?? undefined,
          ifValue: q.get('ifValue') ?? undefined,
        });
      } else {
        throw new KeyVaError(
          'UNSUPPORTED_MEDIA_TYPE',
          `Content-Type ${type} is not supported; send application/json or the raw value (application/octet-stream)`,
          { contentType: type ?? '' },
        );
      }
      const write = writeOptionsFrom(q);
      const out = await ops.put({ key, value, ttlMs: String(ttlMs), condition: conditionWire(condition), write, requestId: NO_REQUEST_ID }, callInfoFrom(q));
      send(res, 200, { version: String(out.version ?? '0') });
      return;
    }
    if (method === 'DELETE') {
      const condition = conditionFrom({
        ifExists: q.get('ifExists') ?? undefined,
        ifVersion: q.get('ifVersion') ?? undefined,
        ifValue: q.get('ifValue') ?? undefined,
      });
      const d = await ops.delete({ key, condition: conditionWire(condition), write: writeOptionsFrom(q), requestId: NO_REQUEST_ID }, callInfoFrom(q));
      send(res, 200, { deleted: d.deleted ?? false, version: String(d.version ?? '0') });
      return;
    }
    throw new KeyVaError('METHOD_NOT_ALLOWED', `${method} is not allowed on /v1/kv/{key}`, { allow: 'GET, HEAD, PUT, POST, DELETE' });
  }

  async function scan(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): Promise<void> {
    if (req.method !== 'GET') throw new KeyVaError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on /v1/kv`, { allow: 'GET' });
    const bytes = (name: string) => Buffer.from(q.get(name) ?? '', 'utf8');
    const limit = intParam(q, 'limit') || 100;
    const keysOnly = q.get('keysOnly') === 'true';
    const items: Record<string, unknown>[] = [];
    let nextCursor = '';
    let readTs = 0n;
    for await (const chunk of kv.scan({
      tag: bytes('tag'),
      prefix: bytes('prefix'),
      start: bytes('start'),
      end: bytes('end'),
      limit,
      cursor: q.get('cursor') ?? '',
      read: { ...readSpecFrom(q), maxStalenessMs: callInfoFrom(q).maxStalenessMs },
      keysOnly,
    })) {
      for (const it of chunk.items as KeyValueOut[]) items.push(entryJson(it.key, it, keysOnly));
      nextCursor = chunk.nextCursor;
      readTs = chunk.readTs;
    }
    send(res, 200, { items, nextCursor, readTs: readTs.toString() });
  }

  return http.createServer({ requestTimeout: 60_000 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://keyva.local');
    const path = url.pathname;
    const q = url.searchParams;
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/readyz') return deps.ready() ? send(res, 200, { status: 'ready' }) : send(res, 503, { status: 'not ready' });
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        (e) => sendError(res, e),
      );
      return;
    }
    let route: ((method: string) => Promise<void>) | undefined;
    if (path.startsWith('/v1/kv/') && path.length > '/v1/kv/'.length) {
      route = () => kvKey(req, res, decodeKey(path.slice('/v1/kv/'.length)), q);
    } else if (path === '/v1/kv' || path === '/v1/kv/') {
      route = () => scan(req, res, q);
    } else if (path === '/v1/node') {
      route = async (m) => {
        if (m !== 'GET') throw new KeyVaError('METHOD_NOT_ALLOWED', `${m} is not allowed on ${path}`, { allow: 'GET' });
        send(res, 200, admin.nodeInfo());
      };
    } else if (path === '/v1/partitions') {
      route = async (m) => {
        if (m !== 'GET') throw new KeyVaError('METHOD_NOT_ALLOWED', `${m} is not allowed on ${path}`, { allow: 'GET' });
        send(res, 200, partitionMapToWire(admin.partitionMap()));
      };
    }
    if (!route) {
      req.resume();
      return sendError(res, new KeyVaError('ROUTE_NOT_FOUND', `no route ${path}; see docs/api.md`, { path }));
    }
    const method = req.method ?? 'GET';
    const parent = propagation.extract(ROOT_CONTEXT, req.headers, headerGetter);
    const name = path.startsWith('/v1/kv') ? (path.length > 7 ? `REST.${method}` : 'REST.Scan') : `REST.${path}`;
    runner
      .run(name, 'http', parent, () => route(method))
      .catch((e) => {
        const err = asKeyVaError(e);
        const extra: Record<string, string> = err.code === 'METHOD_NOT_ALLOWED' && err.details.allow ? { allow: err.details.allow } : {};
        if (!res.headersSent) sendError(res, err, extra);
        else res.destroy();
        req.resume();
      });
  });
}
