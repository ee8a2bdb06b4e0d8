/**
 * The KV gRPC service: unary methods, the server-streaming Scan, and the bidirectional Stream
 * (the SDK fast path: many operations pipelined over one stream, answered by id in any order).
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

export class KvOps {
  private readonly kv: KvStore;
  constructor(kv: KvStore) {
    this.kv = kv;
  }
  async get(r: GetRequestOut): Promise<GetResponse> {
    return wire.getResponse(await this.kv.get(wire.getInput(r)));
  }
  async put(r: PutRequestOut): Promise<PutResponse> {
    return { version: (await this.kv.put(wire.putInput(r))).toString() };
  }
  async delete(r: DeleteRequestOut): Promise<DeleteResponse> {
    const d = await this.kv.delete(wire.deleteInput(r));
    return { deleted: d.deleted, version: d.version.toString() };
  }
  async batchGet(r: BatchGetRequestOut): Promise<BatchGetResponse> {
    const out = await this.kv.batchGet(r.keys, wire.readSpec(r.read));
    return { results: out.map(wire.getResponse) };
  }
  async batchWrite(r: BatchWriteRequestOut): Promise<BatchWriteResponse> {
    const versions = await this.kv.batchWrite(r.mutations.map(wire.mutationInput));
    return { versions: versions.map((v) => v.toString()) };
  }
}

export function kvGrpcHandlers(ops: KvOps, kv: KvStore, runner: RequestRunner): grpc.UntypedServiceImplementation {
  const unary =
    <Req, Res>(method: string, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      runner
        .run(method, 'grpc', contextFromMetadata(call.metadata), async () => {
          checkDecoded(call.request);
          return fn(call.request);
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
        for await (const chunk of kv.scan(wire.scanInput(call.request))) {
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
    let inFlight = 0;
    let ended = false;
    const maybeEnd = () => {
      if (ended && inFlight === 0) call.end();
    };
    call.on('data', (req: StreamRequestOut) => {
      inFlight++;
      if (inFlight >= STREAM_IN_FLIGHT_MAX) call.pause();
      handleStreamOp(ops, runner, ctx, req).then((res) => {
        if (!call.cancelled && !call.destroyed) call.write(res);
        inFlight--;
        if (inFlight === STREAM_IN_FLIGHT_MAX - 1) call.resume();
        maybeEnd();
      });
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
    Get: unary('Get', (r: GetRequestOut) => ops.get(r)),
    Put: unary('Put', (r: PutRequestOut) => ops.put(r)),
    Delete: unary('Delete', (r: DeleteRequestOut) => ops.delete(r)),
    BatchGet: unary('BatchGet', (r: BatchGetRequestOut) => ops.batchGet(r)),
    BatchWrite: unary('BatchWrite', (r: BatchWriteRequestOut) => ops.batchWrite(r)),
    Scan: scan,
    Stream: stream,
  } as grpc.UntypedServiceImplementation;
}

/** One pipelined operation; never rejects: errors are answered in-band with the request id. */
async function handleStreamOp(ops: KvOps, runner: RequestRunner, ctx: Context, req: StreamRequestOut): Promise<StreamResponse> {
  const id = req.id;
  const transport: Transport = 'stream';
  try {
    if (isMalformed(req)) throw new KeyVaError('INVALID_ENCODING', 'the stream message is not a valid protobuf StreamRequest', {});
    switch (req.op) {
      case 'get':
        return { id, get: await runner.run('Get', transport, ctx, () => ops.get(req.get as GetRequestOut)) };
      case 'put':
        return { id, put: await runner.run('Put', transport, ctx, () => ops.put(req.put as PutRequestOut)) };
      case 'delete':
        return { id, delete: await runner.run('Delete', transport, ctx, () => ops.delete(req.delete as DeleteRequestOut)) };
      case 'batchGet':
        return { id, batchGet: await runner.run('BatchGet', transport, ctx, () => ops.batchGet(req.batchGet as BatchGetRequestOut)) };
      case 'batchWrite':
        return { id, batchWrite: await runner.run('BatchWrite', transport, ctx, () => ops.batchWrite(req.batchWrite as BatchWriteRequestOut)) };
      default:
        throw new KeyVaError('INVALID_ARGUMENT', 'stream request has no operation', { field: 'op' });
    }
  } catch (e) {
    const err = asKeyVaError(e);
    return {
      id,
      error: { code: err.code, message: err.message, retryable: err.retryable, details: Object.entries(err.details).map(([key, value]) => ({ key, value })) },
    };
  }
}
