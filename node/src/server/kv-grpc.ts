/**
 * The KV gRPC service: unary methods, the server-streaming Scan, and the bidirectional Stream
 * (the SDK fast path: many operations pipelined over one stream, answered by id in any order).
 *
 * `KvOps` runs each operation on the local store; in a replicated cluster, when the store says
 * NOT_LEADER (nothing was proposed or read) and the call was not itself forwarded, it forwards
 * the request to the partition's leader and answers with the leader's answer (one hop,
 * `routing/forwarder.ts`). Scans are never forwarded (see `KvStore.scan`). REST goes through
 * `KvOps` too, so every transport routes alike.
 */
import type * as grpc from '@grpc/grpc-js';
import type {
  BatchGetRequestOut,
  BatchGetResponse,
  BatchWriteRequestOut,
  BatchWriteResponse,
  DeleteRequestOut,
  DeleteResponse,
  GetRequestOut,
  GetResponse,
  PutRequestOut,
  PutResponse,
  ScanRequestOut,
  ScanResponse,
  StreamRequestOut,
  StreamResponse,
} from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import type { Context } from '@opentelemetry/api';
import type { KvStore } from '../kv/kv-store.ts';
import type { GetOutput, ReadSpec, WriteSpec } from '../kv/types.ts';
import { CONCERN_ALL_TIMEOUT_MS } from '../replication/group-driver.ts';
import { FORWARDED_BY_METADATA, type Forwarder, type ForwardMethod, MAX_STALENESS_METADATA, ROUTING_DIRECT, ROUTING_METADATA } from '../routing/forwarder.ts';
import { contextFromMetadata } from './grpc-context.ts';
import { asKeyVaError, toServiceError } from './grpc-errors.ts';
import { isMalformed } from './malformed.ts';
import type { RequestRunner, Transport } from './request-runner.ts';
import * as wire from './wire.ts';

/** Pipelined operations one stream may have in flight before the server stops reading it. */
export const STREAM_IN_FLIGHT_MAX = 1024;

function checkDecoded(req: unknown): void {
  if (isMalformed(req)) throw new KeyVaError('INVALID_ENCODING', 'the request is not a valid protobuf message for this method', {});
}

/** How a request reached this node: what routing needs to know about it. */
export interface CallInfo {
  /** Forwarded by another node (`keyva-forwarded-by`): answer here or refuse, never forward again. */
  readonly forwardedBy: string | undefined;
  /** The client asked not to be forwarded (`keyva-routing: direct`, the SDK): NOT_LEADER hints instead. */
  readonly direct?: boolean;
  /** Absolute deadline (epoch ms) of the call, if any. */
  readonly deadlineMs: number | undefined;
  /** `follower` reads: the staleness bound asked for (`keyva-max-staleness-ms`, REST `maxStalenessMs`). */
  readonly maxStalenessMs: number | undefined;
}

/** A call with no routing metadata and no deadline (tests, in-process callers). */
export const PLAIN_CALL: CallInfo = { forwardedBy: undefined, deadlineMs: undefined, maxStalenessMs: undefined };

/** Time kept back from the caller's deadline so a slow `all` concern is answered, not timed out. */
const DEADLINE_MARGIN_MS = 250;

function firstValue(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return v === undefined ? undefined : String(v);
}

export function callInfo(md: grpc.Metadata, deadline: grpc.Deadline | undefined): CallInfo {
  const staleness = firstValue(md, MAX_STALENESS_METADATA);
  let maxStalenessMs: number | undefined;
  if (staleness !== undefined) {
    if (!/^\d{1,10}$/.test(staleness))
      throw new KeyVaError('INVALID_ARGUMENT', `${MAX_STALENESS_METADATA} must be a whole number of milliseconds`, { field: MAX_STALENESS_METADATA });
    maxStalenessMs = Number(staleness);
  }
  const d = deadline instanceof Date ? deadline.getTime() : deadline;
  return {
    forwardedBy: firstValue(md, FORWARDED_BY_METADATA),
    direct: firstValue(md, ROUTING_METADATA) === ROUTING_DIRECT,
    deadlineMs: d === undefined || !Number.isFinite(d) ? undefined : d,
    maxStalenessMs,
  };
}

export class KvOps {
  private readonly kv: KvStore;
  private readonly forwarder: Forwarder | undefined;
  constructor(kv: KvStore, forwarder?: Forwarder) {
    this.kv = kv;
    this.forwarder = forwarder;
  }
  /** The hot path (unary and streamed gets): one promise from the store, no async wrappers. */
  get(r: GetRequestOut, call: CallInfo = PLAIN_CALL): Promise<GetResponse> {
    let answer: Promise<GetOutput>;
    try {
      answer = this.kv.get({ key: r.key, read: this.read(r.read, call) });
    } catch (e) {
      answer = Promise.reject(e);
    }
    return answer.then(wire.getResponse, (e: unknown) => this.forwardOrThrow<GetResponse>('Get', r, call, false, e));
  }
  async put(r: PutRequestOut, call: CallInfo = PLAIN_CALL): Promise<PutResponse> {
    return this.routed('Put', r, call, true, async () => ({
      version: (await this.kv.put(wire.putInput(r), this.write(r.write, call, r.requestId))).toString(),
    }));
  }
  async delete(r: DeleteRequestOut, call: CallInfo = PLAIN_CALL): Promise<DeleteResponse> {
    return this.routed('Delete', r, call, true, async () => {
      const d = await this.kv.delete(wire.deleteInput(r), this.write(r.write, call, r.requestId));
      return { deleted: d.deleted, version: d.version.toString() };
    });
  }
  /** One read barrier per partition; keys of partitions led elsewhere go to their leaders, one sub-batch each. */
  async batchGet(r: BatchGetRequestOut, call: CallInfo = PLAIN_CALL): Promise<BatchGetResponse> {
    const read = this.read(r.read, call);
    const fwd = this.forwarder;
    if (fwd === undefined || call.forwardedBy !== undefined || call.direct === true)
      return { results: (await this.kv.batchGet(r.keys, read)).map(wire.getResponse) };
    const { results, remote } = await this.kv.batchGetParts(r.keys, read);
    const out: (GetResponse | undefined)[] = results.map((o: GetOutput | undefined) => (o === undefined ? undefined : wire.getResponse(o)));
    await Promise.all(
      remote.map(async ({ leader, indexes }) => {
        const sub: BatchGetRequestOut = { keys: indexes.map((i) => r.keys[i] as Buffer), read: r.read };
        const res = await fwd.forward<BatchGetResponse>('BatchGet', sub, leader, {
          deadlineMs: call.deadlineMs,
          write: false,
          maxStalenessMs: call.maxStalenessMs,
        });
        for (const [j, i] of indexes.entries()) out[i] = res.results?.[j] ?? undefined;
      }),
    );
    if (out.some((o) => o === undefined)) throw new KeyVaError('INTERNAL', 'batch get: a forwarded sub-batch answered fewer results than keys');
    return { results: out as GetResponse[] };
  }
  async batchWrite(r: BatchWriteRequestOut, call: CallInfo = PLAIN_CALL): Promise<BatchWriteResponse> {
    return this.routed('BatchWrite', r, call, true, async () => {
      const versions = await this.kv.batchWrite(r.mutations.map(wire.mutationInput), this.write(r.write, call, r.requestId));
      return { versions: versions.map((v) => v.toString()) };
    });
  }

  private read(r: GetRequestOut['read'], call: CallInfo): ReadSpec {
    const spec = wire.readSpec(r);
    return call.maxStalenessMs === undefined ? spec : { ...spec, maxStalenessMs: call.maxStalenessMs };
  }

  /** `requestId`: exactly-once writes (docs/adr/0011-exactly-once-writes.md); empty = none. */
  private write(w: PutRequestOut['write'], call: CallInfo, requestId: Buffer | undefined): WriteSpec {
    const concern = wire.concern(w);
    const rid = requestId === undefined || requestId.length === 0 ? undefined : requestId;
    if (concern !== 'all') return rid === undefined ? { concern } : { concern, requestId: rid };
    const left = call.deadlineMs === undefined ? CONCERN_ALL_TIMEOUT_MS : call.deadlineMs - Date.now() - DEADLINE_MARGIN_MS;
    return { concern, allTimeoutMs: Math.max(0, Math.min(CONCERN_ALL_TIMEOUT_MS, left)), requestId: rid };
  }

  /**
   * Runs `local`; if the store answers NOT_LEADER with a leader hint (nothing was proposed or
   * read here), forwards the request to that leader, unless the call was forwarded already or
   * asked to be answered directly.
   */
  private async routed<Res>(method: ForwardMethod, req: unknown, call: CallInfo, write: boolean, local: () => Promise<Res>): Promise<Res> {
    try {
      return await local();
    } catch (e) {
      return this.forwardOrThrow<Res>(method, req, call, write, e);
    }
  }

  /** `e` from the local store: forwarded to the leader it names if allowed (see `routed`), else thrown. */
  private forwardOrThrow<Res>(method: ForwardMethod, req: unknown, call: CallInfo, write: boolean, e: unknown): Promise<Res> {
    const fwd = this.forwarder;
    const leader = e instanceof KeyVaError && e.code === 'NOT_LEADER' ? e.details.leaderHint : undefined;
    if (fwd === undefined || call.forwardedBy !== undefined || call.direct === true || leader === undefined || leader === '' || leader === fwd.self)
      return Promise.reject(e);
    // A node hosting no replica names all of them (`replicas`): tried in turn if the first is unreachable.
    const alternates = (e as KeyVaError).details.replicas?.split(',');
    return fwd.forward<Res>(method, req, leader, { deadlineMs: call.deadlineMs, write, maxStalenessMs: call.maxStalenessMs, alternates });
  }
}

export function kvGrpcHandlers(ops: KvOps, kv: KvStore, runner: RequestRunner): grpc.UntypedServiceImplementation {
  const unary =
    <Req, Res>(method: string, fn: (req: Req, info: CallInfo) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      runner
        .run(method, 'grpc', contextFromMetadata(call.metadata), async () => {
          checkDecoded(call.request);
          return fn(call.request, callInfo(call.metadata, call.getDeadline()));
        })
        .then(
          (res) => callback(null, res),
          (e) => callback(toServiceError(asKeyVaError(e))),
        );
    };

  const scan: grpc.handleServerStreamingCall<ScanRequestOut, ScanResponse> = (call) => {
    const ctx = contextFromMetadata(call.metadata);
    runner
      .run('Scan', 'grpc', ctx, async () => {
        checkDecoded(call.request);
        const info = callInfo(call.metadata, call.getDeadline());
        const input = wire.scanInput(call.request);
        const read = info.maxStalenessMs === undefined ? input.read : { ...input.read, maxStalenessMs: info.maxStalenessMs };
        for await (const chunk of kv.scan({ ...input, read })) {
          if (call.cancelled) return;
          const ok = call.write({ items: chunk.items.map(wire.keyValue), nextCursor: chunk.nextCursor, readTs: chunk.readTs.toString() });
          if (!ok) await new Promise((r) => call.once('drain', r));
        }
      })
      .then(
        () => call.end(),
        (e) => call.emit('error', toServiceError(asKeyVaError(e))),
      );
  };

  const stream: grpc.handleBidiStreamingCall<StreamRequestOut, StreamResponse> = (call) => {
    const ctx = contextFromMetadata(call.metadata);
    let info: CallInfo;
    try {
      info = callInfo(call.metadata, call.getDeadline());
    } catch (e) {
      call.emit('error', toServiceError(asKeyVaError(e)));
      return;
    }
    let inFlight = 0;
    let ended = false;
    const maybeEnd = () => {
      if (ended && inFlight === 0) call.end();
    };
    const answer = (res: StreamResponse): void => {
      if (!call.cancelled && !call.destroyed) call.write(res);
      inFlight--;
      if (inFlight === STREAM_IN_FLIGHT_MAX - 1) call.resume();
      maybeEnd();
    };
    call.on('data', (req: StreamRequestOut) => {
      inFlight++;
      if (inFlight >= STREAM_IN_FLIGHT_MAX) call.pause();
      handleStreamOp(ops, runner, ctx, info, req, answer);
    });
    call.on('end', () => {
      ended = true;
      maybeEnd();
    });
    call.on('error', () => {
      ended = true;
    });
  };

  return {
    Get: unary('Get', (r: GetRequestOut, i) => ops.get(r, i)),
    Put: unary('Put', (r: PutRequestOut, i) => ops.put(r, i)),
    Delete: unary('Delete', (r: DeleteRequestOut, i) => ops.delete(r, i)),
    BatchGet: unary('BatchGet', (r: BatchGetRequestOut, i) => ops.batchGet(r, i)),
    BatchWrite: unary('BatchWrite', (r: BatchWriteRequestOut, i) => ops.batchWrite(r, i)),
    Scan: scan,
    Stream: stream,
  } as grpc.UntypedServiceImplementation;
}

/**
 * One pipelined operation, answered through `answer` exactly once (errors in-band, with the
 * request id). No async wrapper per operation: the runner's promise is the only one.
 */
function handleStreamOp(ops: KvOps, runner: RequestRunner, ctx: Context, info: CallInfo, req: StreamRequestOut, answer: (res: StreamResponse) => void): void {
  const id = wireId(req.id);
  const transport: Transport = 'stream';
  const fail = (e: unknown): void => answer(errorResponse(id, e));
  try {
    if (isMalformed(req)) throw new KeyVaError('INVALID_ENCODING', 'the stream message is not a valid protobuf StreamRequest', {});
    switch (req.op) {
      case 'get':
        runner.run('Get', transport, ctx, () => ops.get(req.get as GetRequestOut, info)).then((get) => answer({ id, get }), fail);
        return;
      case 'put':
        runner.run('Put', transport, ctx, () => ops.put(req.put as PutRequestOut, info)).then((put) => answer({ id, put }), fail);
        return;
      case 'delete':
        runner.run('Delete', transport, ctx, () => ops.delete(req.delete as DeleteRequestOut, info)).then((del) => answer({ id, delete: del }), fail);
        return;
      case 'batchGet':
        runner.run('BatchGet', transport, ctx, () => ops.batchGet(req.batchGet as BatchGetRequestOut, info)).then((batchGet) => answer({ id, batchGet }), fail);
        return;
      case 'batchWrite':
        runner
          .run('BatchWrite', transport, ctx, () => ops.batchWrite(req.batchWrite as BatchWriteRequestOut, info))
          .then((batchWrite) => answer({ id, batchWrite }), fail);
        return;
      default:
        throw new KeyVaError('INVALID_ARGUMENT', 'stream request has no operation', { field: 'op' });
    }
  } catch (e) {
    fail(e);
  }
}

/**
 * The request id to answer with: as a number when it is one exactly (the SDK counts from 1), so
 * the serialiser makes its 64-bit value without parsing the decimal string again.
 */
function wireId(id: string): string | number {
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : id;
}

function errorResponse(id: string | number, e: unknown): StreamResponse {
  const err = asKeyVaError(e);
  return {
    id,
    error: { code: err.code, message: err.message, retryable: err.retryable, details: Object.entries(err.details).map(([key, value]) => ({ key, value })) },
  };
}
