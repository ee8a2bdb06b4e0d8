/**
 * `KeyVa`: the TypeScript client. It routes each key to its partition's leader (router.ts),
 * sends single-key operations over a pipelined stream per node (stream-session.ts) or unary
 * calls, retries what is safe to retry within one overall deadline (retry.ts), and traces every
 * call (tracing.ts). See docs/sdk.md.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type {
  BatchGetRequest,
  BatchGetResponseOut,
  BatchWriteRequest,
  BatchWriteResponseOut,
  DeleteRequest,
  DeleteResponseOut,
  GetPartitionMapResponseOut,
  GetRequest,
  GetResponseOut,
  HealthResponseOut,
  NodeInfoResponseOut,
  PutRequest,
  PutResponseOut,
  ScanRequest,
  ScanResponseOut,
  Condition as WireCondition,
  Mutation as WireMutation,
} from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { ChannelPool, type PooledClients } from './channel-pool.ts';
import { cancelledError } from './clock.ts';
import {
  casCondition,
  condition,
  entryFromGet,
  entryFromKeyValue,
  fromU64,
  optionalBytes,
  partitionMapFromWire,
  readOptions,
  toBuffer,
  toKey,
  ttl,
  writeOptions,
} from './codec.ts';
import { decodeGrpcError, markNotApplied, withUnknownOutcome, writeOutcome } from './errors.ts';
import { hashTag, type PartitionMap } from './keyspace/index.ts';
import { type ClientOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { asKeyVaError, backoffDelayMs, Idempotency, isRetryAllowed, REQUEST_ID_BYTES, withRetry } from './retry.ts';
import { type Route, Router } from './router.ts';
import { ScanProgress } from './scan-resume.ts';
import { StreamSession } from './stream-session.ts';
import { type CallTrace, endCallSpan, injectContext, SpanAttr, startCallSpan, withCallSpan } from './tracing.ts';
import type {
  BatchWriteOptions,
  BatchWriteResult,
  Bytes,
  CallOptions,
  CasExpected,
  CasOptions,
  CasResult,
  DeleteOptions,
  DeleteResult,
  Entry,
  HealthStatus,
  Mutation,
  NodeCallOptions,
  NodeInfo,
  PutOptions,
  PutResult,
  ReadCallOptions,
  ScanOptions,
  ScanPage,
  WriteConcern,
} from './types.ts';

/** Page size of `scanPage` when the caller sets no limit. */
export const SCAN_PAGE_LIMIT_DEFAULT = 1000;

/** One call in progress: its span, overall deadline (clock scale) and signal. */
interface CallContext {
  readonly trace: CallTrace;
  readonly deadlineAt: number;
  readonly signal: AbortSignal | undefined;
}

/** One attempt of a call. */
interface Attempt {
  readonly n: number;
  readonly route: Route;
  /** gRPC deadline of this attempt (epoch ms): the rest of the call's budget. */
  readonly deadlineMs: number;
  readonly ctx: CallContext;
}

/** Thrown inside an attempt when a batch's keys now belong to different nodes. Not a KeyVaError: never retried as such. */
class Regroup {
  readonly groups: number[][];
  constructor(groups: number[][]) {
    this.groups = groups;
  }
}

type UnaryInvoke<Res> = (c: PooledClients, md: grpc.Metadata, options: grpc.CallOptions, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

/**
 * The SDK routes to partition leaders itself: it asks nodes to answer NOT_LEADER with the leader
 * hint (which it follows and learns from) instead of forwarding its requests (docs/api.md, Routing).
 */
function directRouting(md: grpc.Metadata): grpc.Metadata {
  md.set('keyva-routing', 'direct');
  return md;
}

export class KeyVa {
  private readonly o: ResolvedOptions;
  private readonly pool: ChannelPool;
  private readonly router: Router;
  private readonly sessions = new Map<string, StreamSession>();
  private closed = false;

  private constructor(o: ResolvedOptions) {
    this.o = o;
    this.pool = new ChannelPool({
      size: o.poolSize,
      credentials: o.credentials,
      messageBytesMax: o.messageBytesMax,
      keepaliveTimeMs: o.keepaliveTimeMs,
      keepaliveTimeoutMs: o.keepaliveTimeoutMs,
      nodesMax: o.nodesMax,
    });
    this.router = new Router({
      seeds: o.endpoints,
      refreshTimeoutMs: o.deadlineMs,
      fetchMap: (address, deadlineMs) => this.fetchMap(address, deadlineMs),
    });
  }

  /**
   * Creates a client and loads the partition map from the first endpoint that answers.
   * Rejects when no endpoint answers (unless `requireMap: false`). A node without
   * GetPartitionMap is accepted: calls then go to the seed endpoints.
   */
  static async connect(options: ClientOptions): Promise<KeyVa> {
    const client = new KeyVa(resolveOptions(options));
    try {
      await client.router.refresh(Date.now() + client.o.deadlineMs, true);
    } catch (e) {
      const err = asKeyVaError(e);
      if (err?.code !== 'ROUTE_NOT_FOUND' && client.o.requireMap) {
        await client.close();
        throw err ?? e;
      }
    }
    return client;
  }

  // ---------------------------------------------------------------- single keys

  /** The entry of `key`, or undefined when it does not exist. */
  async get(key: Bytes, opts: ReadCallOptions = {}): Promise<Entry | undefined> {
    const k = toKey(key);
    const req: GetRequest = { key: k, read: readOptions(opts) };
    return this.call(
      'Get',
      opts,
      Idempotency.read,
      () => this.router.route(k),
      async (a) => {
        const s = this.streamFor(a);
        const res = s
          ? (await s.request('get', req, a.deadlineMs, a.ctx.signal)).get
          : await this.unary<GetResponseOut>(a, (c, md, o, cb) => c.kv.Get(req, md, o, cb));
        return entryFromGet(k, res);
      },
    );
  }

  /** The value of `key` decoded as UTF-8, or undefined when it does not exist. */
  async getString(key: Bytes, opts: ReadCallOptions = {}): Promise<string | undefined> {
    return (await this.get(key, opts))?.value.toString('utf8');
  }

  /** Writes `value` under `key`; with a condition, fails with CONDITION_FAILED when it does not hold. */
  async put(key: Bytes, value: Bytes, opts: PutOptions = {}): Promise<PutResult> {
    return this.putWith('Put', toKey(key), toBuffer(value), condition(opts), opts.ttlMs, opts.writeConcern, opts);
  }

  /** Deletes `key`. `deleted` is false when it did not exist. */
  async delete(key: Bytes, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const k = toKey(key);
    const cond = condition(opts);
    const requestId = this.newRequestId();
    const req: DeleteRequest = { key: k, condition: cond ?? null, write: writeOptions(opts.writeConcern), ...(requestId === undefined ? {} : { requestId }) };
    return this.call(
      'Delete',
      opts,
      this.writeIdempotency(requestId),
      () => this.router.route(k),
      async (a) => {
        const s = this.streamFor(a);
        const res = s
          ? (await s.request('delete', req, a.deadlineMs, a.ctx.signal)).delete
          : await this.unary<DeleteResponseOut>(a, (c, md, o, cb) => c.kv.Delete(req, md, o, cb));
        return { deleted: res?.deleted ?? false, version: fromU64(res?.version) };
      },
    );
  }

  /**
   * Compare-and-set: writes `newValue` only if the key's version, value or absence matches
   * `expected`. A mismatch is `{ok: false, currentVersion}` (0n when the key is absent), not an error.
   */
  async cas(key: Bytes, expected: CasExpected, newValue: Bytes, opts: CasOptions = {}): Promise<CasResult> {
    const cond = casCondition(expected);
    try {
      const r = await this.putWith('Put', toKey(key), toBuffer(newValue), cond, opts.ttlMs, opts.writeConcern, opts);
      return { ok: true, version: r.version };
    } catch (e) {
      if (e instanceof KeyVaError && e.code === 'CONDITION_FAILED') {
        const v = e.details.currentVersion;
        return { ok: false, currentVersion: v !== undefined && /^\d+$/.test(v) ? BigInt(v) : 0n };
      }
      throw e;
    }
  }

  // ---------------------------------------------------------------- batches

  /** Entries of `keys`, same order (undefined where absent). Keys are grouped per node. */
  async batchGet(keys: readonly Bytes[], opts: ReadCallOptions = {}): Promise<(Entry | undefined)[]> {
    const ks = keys.map(toKey);
    const read = readOptions(opts);
    const out: (Entry | undefined)[] = new Array(ks.length).fill(undefined);
    if (ks.length === 0) return out;
    await this.traced('BatchGet', opts, (ctx) =>
      this.perNode(ctx, ks, Idempotency.read, async (a, idx) => {
        const req: BatchGetRequest = { keys: idx.map((i) => ks[i] as Buffer), read };
        const res = await this.unary<BatchGetResponseOut>(a, (c, md, o, cb) => c.kv.BatchGet(req, md, o, cb));
        idx.forEach((i, j) => {
          out[i] = entryFromGet(ks[i] as Buffer, res.results[j]);
        });
      }),
    );
    return out;
  }

  /**
   * Applies `mutations`. Mutations of one partition (one hash tag) apply atomically, conditions
   * included; a batch spanning partitions is atomic per partition only.
   */
  async batchWrite(mutations: readonly Mutation[], opts: BatchWriteOptions = {}): Promise<BatchWriteResult> {
    const wire: WireMutation[] = mutations.map(toWireMutation);
    const ks = wire.map((m) => (m.put?.key ?? m.delete?.key) as Buffer);
    const write = writeOptions(opts.writeConcern);
    const versions: bigint[] = new Array(wire.length).fill(0n);
    if (wire.length === 0) return { versions };
    // One request id per sub-batch (a group of keys sent to one node), reused by its resends.
    const ids = new WeakMap<number[], Buffer | undefined>();
    const idOf = (idx: number[]): Buffer | undefined => {
      if (!ids.has(idx)) ids.set(idx, this.newRequestId());
      return ids.get(idx);
    };
    await this.traced('BatchWrite', opts, (ctx) =>
      this.perNode(ctx, ks, this.o.exactlyOnce ? Idempotency.deduplicated : Idempotency.write, async (a, idx) => {
        const requestId = idOf(idx);
        const req: BatchWriteRequest = { mutations: idx.map((i) => wire[i] as WireMutation), write, ...(requestId === undefined ? {} : { requestId }) };
        const res = await this.unary<BatchWriteResponseOut>(a, (c, md, o, cb) => c.kv.BatchWrite(req, md, o, cb));
        idx.forEach((i, j) => {
          versions[i] = fromU64(res.versions[j]);
        });
      }),
    );
    return { versions };
  }

  // ---------------------------------------------------------------- scans

  /**
   * Iterates entries. With `tag`: the keys of that hash tag in key order. Without: the whole
   * keyspace partition by partition, NOT in key order. Follows the node's cursors, and resumes
   * after retryable failures without repeating or skipping entries. `deadlineMs` bounds each
   * underlying Scan RPC; retries count from the last entry delivered.
   */
  scan(opts: ScanOptions = {}): AsyncIterable<Entry> {
    return this.scanEntries(opts);
  }

  /** One page of a scan (default `limit` 1000): its entries and the cursor of the next page. */
  async scanPage(opts: ScanOptions = {}): Promise<ScanPage> {
    const req = scanRequest({ ...opts, limit: opts.limit ?? SCAN_PAGE_LIMIT_DEFAULT });
    return this.call(
      'Scan',
      opts,
      Idempotency.read,
      () => this.scanRoute(req),
      async (a) => {
        const call = await this.openScan(a.route, req, a.deadlineMs, a.ctx.trace, a.ctx.signal);
        const items: Entry[] = [];
        let cursor = '';
        try {
          for await (const msg of call.stream) {
            for (const kv of msg.items) items.push(entryFromKeyValue(kv));
            cursor = msg.nextCursor;
          }
        } catch (e) {
          throw a.ctx.signal?.aborted ? cancelledError(a.ctx.signal) : decodeGrpcError(e);
        } finally {
          call.done();
        }
        return { items, cursor: cursor === '' ? undefined : cursor };
      },
    );
  }

  // ---------------------------------------------------------------- cluster

  /** The cached partition map; `refresh: true` (or no map yet) asks the cluster. */
  async partitionMap(opts: CallOptions & { readonly refresh?: boolean } = {}): Promise<PartitionMap> {
    this.assertOpen();
    const cached = this.router.map;
    if (cached !== undefined && opts.refresh !== true) return cached;
    const map = await this.router.refresh(Date.now() + (opts.deadlineMs ?? this.o.deadlineMs), true);
    if (map === undefined) throw new KeyVaError('UNAVAILABLE', 'no partition map');
    return map;
  }

  /** Health of one node (default: the first endpoint). */
  async health(opts: NodeCallOptions = {}): Promise<HealthStatus> {
    const address = opts.endpoint ?? (this.o.endpoints[0] as string);
    const res = await this.call(
      'Health',
      opts,
      Idempotency.read,
      () => ({ address, partitionId: undefined }),
      (a) => this.unary<HealthResponseOut>(a, (c, md, o, cb) => c.admin.Health({}, md, o, cb)),
    );
    return { status: res.status, nodeId: res.nodeId };
  }

  /** Facts about one node (default: the first endpoint). */
  async nodeInfo(opts: NodeCallOptions = {}): Promise<NodeInfo> {
    const address = opts.endpoint ?? (this.o.endpoints[0] as string);
    const r = await this.call(
      'NodeInfo',
      opts,
      Idempotency.read,
      () => ({ address, partitionId: undefined }),
      (a) => this.unary<NodeInfoResponseOut>(a, (c, md, o, cb) => c.admin.NodeInfo({}, md, o, cb)),
    );
    return {
      nodeId: r.nodeId,
      version: r.version,
      grpcAddress: r.grpcAddress,
      httpAddress: r.httpAddress,
      engine: r.engine,
      dataDir: r.dataDir,
      partitions: r.partitions,
      uptimeMs: Number(r.uptimeMs),
      storageBytes: Number(r.storageBytes),
      keysEstimate: Number(r.keysEstimate),
    };
  }

  /** Fails pending calls with CANCELLED and closes every channel. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
    this.pool.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---------------------------------------------------------------- internals

  /** A fresh request id for one logical write (exactly-once writes, docs/sdk.md), or undefined when they are off. */
  private newRequestId(): Buffer | undefined {
    return this.o.exactlyOnce ? randomBytes(REQUEST_ID_BYTES) : undefined;
  }

  private writeIdempotency(requestId: Buffer | undefined): Idempotency {
    return requestId === undefined ? Idempotency.write : Idempotency.deduplicated;
  }

  private assertOpen(): void {
    if (this.closed) throw new KeyVaError('CANCELLED', 'the client is closed');
  }

  /** Epoch-ms gRPC deadline for what remains of a call's budget. */
  private epochDeadline(deadlineAt: number): number {
    return Date.now() + (deadlineAt - this.o.clock.now());
  }

  private async putWith(
    method: string,
    k: Buffer,
    value: Buffer,
    cond: WireCondition | undefined,
    ttlMs: number | undefined,
    concern: WriteConcern | undefined,
    opts: CallOptions,
  ): Promise<PutResult> {
    const requestId = this.newRequestId();
    const req: PutRequest = {
      key: k,
      value,
      ttlMs: ttl(ttlMs),
      condition: cond ?? null,
      write: writeOptions(concern),
      ...(requestId === undefined ? {} : { requestId }),
    };
    return this.call(
      method,
      opts,
      this.writeIdempotency(requestId),
      () => this.router.route(k),
      async (a) => {
        const s = this.streamFor(a);
        const res = s
          ? (await s.request('put', req, a.deadlineMs, a.ctx.signal)).put
          : await this.unary<PutResponseOut>(a, (c, md, o, cb) => c.kv.Put(req, md, o, cb));
        return { version: fromU64(res?.version) };
      },
    );
  }

  /** Starts a call: validates, opens its span (ended when `fn` settles) and fixes its deadline. */
  private async traced<T>(method: string, opts: CallOptions, fn: (ctx: CallContext) => Promise<T>): Promise<T> {
    this.assertOpen();
    if (opts.signal?.aborted) throw cancelledError(opts.signal);
    const budget = opts.deadlineMs ?? this.o.deadlineMs;
    if (!(budget > 0)) throw new KeyVaError('INVALID_ARGUMENT', 'deadlineMs must be > 0', { field: 'deadlineMs' });
    const deadlineAt = this.o.clock.now() + budget;
    return withCallSpan(method, {}, (trace) => fn({ trace, deadlineAt, signal: opts.signal }));
  }

  /** A traced call of one retried operation. */
  private call<T>(method: string, opts: CallOptions, idempotency: Idempotency, routeOf: () => Route, attempt: (a: Attempt) => Promise<T>): Promise<T> {
    return this.traced(method, opts, (ctx) => this.retrying(ctx, idempotency, routeOf, attempt));
  }

  /** The retry loop of one operation: each attempt is routed afresh. */
  private async retrying<T>(
    ctx: CallContext,
    idempotency: Idempotency,
    routeOf: () => Route,
    attempt: (a: Attempt) => Promise<T>,
    singleKey = true,
  ): Promise<T> {
    let route: Route | undefined;
    let attempts = 0;
    try {
      return await withRetry(
        (n) => {
          attempts = n;
          const r = routeOf();
          route = r;
          if (r.partitionId !== undefined) ctx.trace.span.setAttribute(SpanAttr.partition, r.partitionId);
          ctx.trace.span.setAttribute(SpanAttr.serverAddress, r.address);
          const remaining = ctx.deadlineAt - this.o.clock.now();
          if (remaining <= 0) throw markNotApplied(new KeyVaError('DEADLINE_EXCEEDED', 'the deadline passed before the request was sent'));
          return attempt({ n, route: r, deadlineMs: Date.now() + remaining, ctx });
        },
        {
          policy: this.o.retry,
          idempotency,
          deadlineAt: ctx.deadlineAt,
          signal: ctx.signal,
          clock: this.o.clock,
          random: this.o.random,
          beforeRetry: (err, n, delayMs) => {
            ctx.trace.span.addEvent('keyva.retry', { attempt: n, [SpanAttr.errorType]: err.code, 'keyva.backoff_ms': delayMs });
            return route === undefined ? false : this.router.onError(err, route, this.epochDeadline(ctx.deadlineAt), singleKey, n);
          },
        },
      );
    } finally {
      ctx.trace.span.setAttribute(SpanAttr.attempts, attempts);
    }
  }

  /**
   * Runs `send` once per node holding some of `keys` (by current routing), each with its own
   * retries. When routing changes so that a group's keys now live on several nodes, the group
   * is split and each part retried on its own, all within the call's deadline.
   */
  private async perNode(
    ctx: CallContext,
    keys: readonly Buffer[],
    idempotency: Idempotency,
    send: (a: Attempt, idx: number[]) => Promise<void>,
  ): Promise<void> {
    const run = async (idx: number[]): Promise<void> => {
      // The failure of this group's last attempt, if its outcome is unknown (it may have applied).
      let maybeApplied: KeyVaError | undefined;
      try {
        await this.retrying(
          ctx,
          idempotency,
          () => this.router.route(keys[idx[0] as number] as Buffer),
          async (a) => {
            if (a.n > 1) {
              const groups = this.groupByNode(keys, idx);
              // Split sub-batches get new request ids: never after an attempt that may have applied.
              if (groups.length > 1 && maybeApplied !== undefined) throw withUnknownOutcome(maybeApplied, false);
              if (groups.length > 1) throw new Regroup(groups);
            }
            try {
              await send(a, idx);
            } catch (e) {
              const err = asKeyVaError(e);
              if (maybeApplied === undefined && idempotency !== Idempotency.read && err !== undefined && writeOutcome(err) === 'unknown') maybeApplied = err;
              throw e;
            }
          },
          false,
        );
      } catch (e) {
        if (!(e instanceof Regroup)) throw e;
        await Promise.all(e.groups.map(run));
      }
    };
    await Promise.all(
      this.groupByNode(
        keys,
        keys.map((_, i) => i),
      ).map(run),
    );
  }

  /** Indices of `keys` grouped by the node their partition's leader is on; one group without a map. */
  private groupByNode(keys: readonly Buffer[], idx: readonly number[]): number[][] {
    if (this.router.map === undefined) return [[...idx]];
    const groups = new Map<string, number[]>();
    for (const i of idx) {
      const address = this.router.route(keys[i] as Buffer).address;
      let g = groups.get(address);
      if (g === undefined) {
        g = [];
        groups.set(address, g);
      }
      g.push(i);
    }
    return [...groups.values()];
  }

  /**
   * The stream session to use for an attempt, if any: first attempts only (retries go unary),
   * and not when the call is traced (the stream carries no per-request trace context).
   */
  private streamFor(a: Attempt): StreamSession | undefined {
    if (!this.o.useStream || a.n > 1 || a.ctx.trace.recording) return undefined;
    let s = this.sessions.get(a.route.address);
    if (s === undefined) {
      const address = a.route.address;
      s = new StreamSession({
        address,
        inFlightMax: this.o.inFlightMax,
        queueMax: this.o.streamQueueMax,
        open: async (deadlineMs) => {
          const c = await this.pool.ready(address, deadlineMs);
          const call = c.kv.Stream(directRouting(new grpc.Metadata()), {});
          return call;
        },
      });
      this.sessions.set(address, s);
    }
    return s.usable ? s : undefined;
  }

  /** One unary call of an attempt: waits for a connected channel, propagates the trace, honours abort. */
  private async unary<Res>(a: Attempt, invoke: UnaryInvoke<Res>): Promise<Res> {
    const signal = a.ctx.signal;
    const clients = await this.pool.ready(a.route.address, a.deadlineMs, signal);
    // The signal may have fired after the channel became ready, before this continuation ran.
    if (signal?.aborted) throw cancelledError(signal);
    const md = injectContext(a.ctx.trace, directRouting(new grpc.Metadata()));
    return new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => call.cancel();
      const call = invoke(clients, md, { deadline: a.deadlineMs }, (err, res) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(signal?.aborted ? cancelledError(signal) : decodeGrpcError(err));
        else resolve(res as Res);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * A tag scan goes to the tag's leader; so does a scan whose prefix holds a complete hash tag
   * (the node pins such scans to the tag). Whole-keyspace scans go to any endpoint.
   */
  private scanRoute(req: ScanRequest): Route {
    const tag = req.tag as Buffer;
    if (tag.length > 0) return this.router.routeTag(tag);
    const prefix = req.prefix as Buffer;
    const pinned = prefix.indexOf(0x7d) >= 0 ? hashTag(prefix) : undefined;
    if (pinned !== undefined) return this.router.routeTag(pinned);
    return { address: this.router.anyAddress(), partitionId: undefined };
  }

  /** Opens a Scan RPC; `done()` cancels it (if still running) and detaches the abort listener. */
  private async openScan(
    route: Route,
    req: ScanRequest,
    deadlineMs: number,
    trace: CallTrace,
    signal: AbortSignal | undefined,
  ): Promise<{ stream: AsyncIterable<ScanResponseOut>; done: () => void }> {
    const clients = await this.pool.ready(route.address, deadlineMs, signal);
    if (signal?.aborted) throw cancelledError(signal);
    const call = clients.kv.Scan(req, injectContext(trace, new grpc.Metadata()), { deadline: deadlineMs });
    // grpc-js emits 'error' directly: without a listener a late error (after cancel) would throw.
    call.on('error', () => {});
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    return {
      stream: call as AsyncIterable<ScanResponseOut>,
      done: () => {
        signal?.removeEventListener('abort', onAbort);
        call.cancel();
      },
    };
  }

  private async *scanEntries(opts: ScanOptions): AsyncGenerator<Entry, void, undefined> {
    this.assertOpen();
    const base = scanRequest(opts);
    const signal = opts.signal;
    const budget = opts.deadlineMs ?? this.o.deadlineMs;
    const progress = new ScanProgress(base);
    const trace = startCallSpan('Scan');
    let failure: unknown;
    let failures = 0;
    try {
      for (;;) {
        if (progress.done) return;
        if (this.closed) throw new KeyVaError('CANCELLED', 'the client is closed');
        if (signal?.aborted) throw cancelledError(signal);
        const route = this.scanRoute(base);
        if (route.partitionId !== undefined) trace.span.setAttribute(SpanAttr.partition, route.partitionId);
        let endCursor = '';
        let call: { stream: AsyncIterable<ScanResponseOut>; done: () => void } | undefined;
        try {
          call = await this.openScan(route, progress.request(), Date.now() + budget, trace, signal);
          for await (const msg of call.stream) {
            endCursor = msg.nextCursor;
            progress.observe(msg);
            for (const kv of msg.items) {
              if (!progress.accept(kv.key)) continue;
              failures = 0;
              yield entryFromKeyValue(kv);
              if (progress.done) return;
            }
          }
        } catch (e) {
          if (signal?.aborted) throw cancelledError(signal);
          const err = asKeyVaError(e);
          if (err === undefined) throw e;
          failures++;
          if (!isRetryAllowed(err, Idempotency.read) || failures >= this.o.retry.attemptsMax) throw err;
          trace.span.addEvent('keyva.retry', { attempt: failures, [SpanAttr.errorType]: err.code, 'keyva.delivered': progress.delivered });
          progress.afterFailure();
          const immediate = await this.router.onError(err, route, Date.now() + budget, true, failures);
          if (!immediate) await this.o.clock.sleep(backoffDelayMs(failures, this.o.retry, this.o.random), signal);
          continue;
        } finally {
          call?.done();
        }
        // The node stopped at its page limit: continue from its cursor; else the scan is complete.
        if (endCursor === '') return;
      }
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      trace.span.setAttribute('keyva.delivered', progress.delivered);
      endCallSpan(trace, failure);
    }
  }

  private async fetchMap(address: string, deadlineMs: number): Promise<PartitionMap> {
    const clients = await this.pool.ready(address, deadlineMs);
    const res = await new Promise<GetPartitionMapResponseOut>((resolve, reject) => {
      clients.admin.GetPartitionMap({}, new grpc.Metadata(), { deadline: deadlineMs }, (err, r) => {
        if (err) reject(decodeGrpcError(err));
        else resolve(r as GetPartitionMapResponseOut);
      });
    });
    return partitionMapFromWire(res);
  }
}

function toWireMutation(m: Mutation): WireMutation {
  const cond = condition(m);
  if (m.type === 'put') return { put: { key: toKey(m.key), value: toBuffer(m.value), ttlMs: ttl(m.ttlMs), condition: cond ?? null } };
  if (m.type === 'delete') return { delete: { key: toKey(m.key), condition: cond ?? null } };
  throw new KeyVaError('INVALID_ARGUMENT', `unknown mutation type ${String((m as { type?: unknown }).type)}`, { field: 'type' });
}

function scanRequest(opts: ScanOptions): ScanRequest {
  const limit = opts.limit ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 0 || limit > 0xffffffff)
    throw new KeyVaError('INVALID_ARGUMENT', 'limit must be an integer in 0..2^32-1', { field: 'limit' });
  return {
    tag: optionalBytes(opts.tag),
    start: optionalBytes(opts.start),
    end: optionalBytes(opts.end),
    prefix: optionalBytes(opts.prefix),
    limit,
    cursor: opts.cursor ?? '',
    read: readOptions(opts),
    keysOnly: opts.keysOnly ?? false,
  };
}
