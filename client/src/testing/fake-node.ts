/**
 * A fake KeyVa node for the SDK's unit tests: a grpc-js server on 127.0.0.1 serving the real
 * KV and Admin service definitions over an in-memory map, with hooks that inject faults
 * (errors with KeyVa trailers, delays, hangs, broken streams, scans failing midway). It tests
 * SDK logic — retries, deadlines, abort, pipelining, error decoding, routing — not the node;
 * tests against a real node use `startNode` from @keyva/node.
 */
import * as grpc from '@grpc/grpc-js';
import {
  type BatchGetRequestOut,
  type BatchWriteRequestOut,
  type ConditionOut,
  type DeleteRequestOut,
  type GetPartitionMapResponse,
  type GetRequestOut,
  type GetResponse,
  type KeyValue,
  keyvaV1,
  type PutRequestOut,
  type ScanRequestOut,
  type ScanResponse,
  type StreamRequestOut,
  type StreamResponse,
} from '@keyva/proto';
import { ERROR_METADATA, type ErrorCode, ErrorCodes, type ErrorDetails } from '@keyva/proto/errors';
import { HASH_SPACE_END, hashTag, keyHash, tagHash } from '../keyspace/index.ts';

export type FakeFault =
  /** Answer with this KeyVa error (trailers included). */
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly details?: ErrorDetails }
  /** Answer with a bare gRPC status, no KeyVa trailers (like grpc-js or a proxy would). */
  | { readonly kind: 'status'; readonly grpcCode: number }
  /** Wait, then serve normally. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Apply the write, then answer with this error (an ambiguous failure: it did apply). */
  | { readonly kind: 'apply-then-error'; readonly code: ErrorCode }
  /** Never answer. */
  | { readonly kind: 'hang' }
  /** Stream only: break the whole stream (UNAVAILABLE status) instead of answering. */
  | { readonly kind: 'break-stream' }
  /** Scan only: fail with UNAVAILABLE after sending this many items. */
  | { readonly kind: 'fail-after'; readonly items: number };

export interface FakeOp {
  readonly method: 'Get' | 'Put' | 'Delete' | 'BatchGet' | 'BatchWrite' | 'Scan' | 'GetPartitionMap' | 'Health' | 'NodeInfo';
  readonly via: 'unary' | 'stream';
  /** First key of the request (tag for scans). */
  readonly key: Buffer | undefined;
  /** Every key of the request (batches). */
  readonly keys: readonly Buffer[];
  readonly request: unknown;
  readonly metadata: grpc.Metadata;
}

export type FakeHook = (op: FakeOp) => FakeFault | undefined | Promise<FakeFault | undefined>;

interface Stored {
  value: Buffer;
  version: bigint;
  expiresAtMs: number;
}

type WriteOp =
  | { type: 'put'; key: Buffer; value: Buffer; ttlMs: number; condition: ConditionOut | null }
  | { type: 'delete'; key: Buffer; condition: ConditionOut | null };

/** The data shared by the fake nodes of one fake cluster. */
export class FakeStore {
  readonly data = new Map<string, Stored>();
  /** Answers of applied request ids (hex), shared by the nodes sharing this store. */
  readonly applied = new Map<string, unknown>();
  /** Writes answered from `applied` instead of applying again. */
  duplicates = 0;
  private version = 1000n;

  get(key: Buffer): Stored | undefined {
    const v = this.data.get(key.toString('hex'));
    if (v !== undefined && v.expiresAtMs !== 0 && v.expiresAtMs <= Date.now()) return undefined;
    return v;
  }

  /** Atomic: every condition holds and all apply, or nothing does. */
  write(ops: readonly WriteOp[]): { ok: true; versions: bigint[]; existed: boolean[] } | { ok: false; currentVersion: bigint } {
    for (const op of ops) {
      const cur = this.get(op.key);
      if (!holds(op.condition, cur)) return { ok: false, currentVersion: cur?.version ?? 0n };
    }
    const commit = ++this.version;
    const existed = ops.map((op) => {
      const had = this.get(op.key) !== undefined;
      if (op.type === 'put') {
        this.data.set(op.key.toString('hex'), { value: Buffer.from(op.value), version: commit, expiresAtMs: op.ttlMs > 0 ? Date.now() + op.ttlMs : 0 });
      } else {
        this.data.delete(op.key.toString('hex'));
      }
      return had;
    });
    return { ok: true, versions: ops.map(() => commit), existed };
  }

  /** Live entries in storage order: hash, then key bytes. */
  sorted(): { hash: bigint; key: Buffer; stored: Stored }[] {
    const out: { hash: bigint; key: Buffer; stored: Stored }[] = [];
    for (const [hex, stored] of this.data) {
      const key = Buffer.from(hex, 'hex');
      if (this.get(key) !== undefined) out.push({ hash: keyHash(key), key, stored });
    }
    return out.sort((a, b) => (a.hash !== b.hash ? (a.hash < b.hash ? -1 : 1) : Buffer.compare(a.key, b.key)));
  }
}

function holds(c: ConditionOut | null, cur: Stored | undefined): boolean {
  if (c === null || c.kind === undefined) return true;
  switch (c.kind) {
    case 'absent':
      return cur === undefined;
    case 'exists':
      return cur !== undefined;
    case 'versionEquals':
      return cur !== undefined && cur.version === BigInt(c.versionEquals ?? '0');
    case 'valueEquals':
      return cur !== undefined && Buffer.compare(cur.value, c.valueEquals ?? Buffer.alloc(0)) === 0;
  }
}

/** Partition layout and leaders of a fake cluster; `wire()` is what GetPartitionMap answers. */
export class FakeCluster {
  epoch = 1n;
  /** Partition ranges with their leader node id. */
  partitions: { id: number; start: bigint; end: bigint; leader: string }[];
  readonly nodes = new Map<string, string>();

  constructor(partitionCount: number, leader: string) {
    const n = BigInt(partitionCount);
    this.partitions = Array.from({ length: partitionCount }, (_, i) => ({
      id: i,
      start: (BigInt(i) * HASH_SPACE_END) / n,
      end: (BigInt(i + 1) * HASH_SPACE_END) / n,
      leader,
    }));
  }

  partitionOf(hash: bigint): { id: number; start: bigint; end: bigint; leader: string } {
    const p = this.partitions.find((q) => hash >= q.start && hash < q.end);
    if (p === undefined) throw new Error('hash outside the partitions');
    return p;
  }

  wire(): GetPartitionMapResponse {
    return {
      map: {
        epoch: this.epoch.toString(),
        partitions: this.partitions.map((p) => ({
          id: p.id,
          start: p.start.toString(),
          end: p.end === HASH_SPACE_END ? '0' : p.end.toString(),
          generation: '1',
          replicas: [...this.nodes.keys()],
          leaderHint: p.leader,
        })),
        nodes: [...this.nodes].map(([id, grpcAddress]) => ({ id, grpcAddress, httpAddress: '' })),
      },
    };
  }
}

export interface FakeNodeOptions {
  readonly nodeId?: string;
  readonly store?: FakeStore;
  /** The cluster this node belongs to; a one-partition cluster led by this node when unset. */
  readonly cluster?: FakeCluster;
  /** Answer NOT_LEADER for keys of partitions this node does not lead. Default false. */
  readonly enforceLeadership?: boolean;
  /** Serve KV.Stream. Default true. */
  readonly streamSupported?: boolean;
  /** Serve Admin.GetPartitionMap. Default true. */
  readonly mapSupported?: boolean;
  /** Items per ScanResponse message. Default 2. */
  readonly scanChunk?: number;
  /** Set next_cursor on every scan message as a resume point (the last one only when more remain). Default false. */
  readonly cursorEveryMessage?: boolean;
  /** Largest page a scan returns before answering with a cursor (0 = unlimited). Default 0. */
  readonly scanPageMax?: number;
  readonly hook?: FakeHook;
}

type Status = { code: number; details: string; metadata?: grpc.Metadata };

function errorStatus(code: ErrorCode, details: ErrorDetails = {}): Status {
  const md = new grpc.Metadata();
  md.set(ERROR_METADATA.code, code);
  md.set(ERROR_METADATA.retryable, String(ErrorCodes[code].retryable));
  md.set(ERROR_METADATA.details, JSON.stringify(details));
  return { code: ErrorCodes[code].grpc, details: `fake ${code}`, metadata: md };
}

class Reject {
  readonly status: Status;
  readonly code: ErrorCode | undefined;
  readonly details: ErrorDetails;
  constructor(status: Status, code?: ErrorCode, details: ErrorDetails = {}) {
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Answered later, after the operation was applied. */
class AfterApply {
  readonly code: ErrorCode;
  constructor(code: ErrorCode) {
    this.code = code;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const never = () => new Promise<never>(() => {});

export class FakeNode {
  readonly nodeId: string;
  readonly store: FakeStore;
  readonly cluster: FakeCluster;
  readonly server: grpc.Server;
  address = '';
  hook: FakeHook | undefined;
  /** Requests served, by `${via}:${method}`. */
  readonly calls = new Map<string, number>();
  /** Metadata of every request received, most recent last. */
  readonly metadata: grpc.Metadata[] = [];
  /** Every request received (unary and stream), oldest first. */
  readonly requests: FakeOp[] = [];
  readonly streams = new Set<grpc.ServerDuplexStream<StreamRequestOut, StreamResponse>>();
  private readonly o: FakeNodeOptions;

  constructor(o: FakeNodeOptions) {
    this.o = o;
    this.nodeId = o.nodeId ?? 'n1';
    this.store = o.store ?? new FakeStore();
    this.cluster = o.cluster ?? new FakeCluster(1, this.nodeId);
    this.hook = o.hook;
    this.server = new grpc.Server();
    this.server.addService(keyvaV1.KV.service, this.kvHandlers());
    this.server.addService(keyvaV1.Admin.service, this.adminHandlers());
  }

  count(method: string, via: 'unary' | 'stream' = 'unary'): number {
    return this.calls.get(`${via}:${method}`) ?? 0;
  }

  /** Breaks every open Stream with UNAVAILABLE (no KeyVa code: like a dropped connection). */
  breakStreams(): void {
    for (const s of this.streams) s.emit('error', { code: grpc.status.UNAVAILABLE, details: 'fake stream broken' });
    this.streams.clear();
  }

  async close(): Promise<void> {
    this.server.forceShutdown();
  }

  /** Counts the request and asks the hook for a fault. */
  private async faultFor(op: FakeOp): Promise<FakeFault | undefined> {
    this.calls.set(`${op.via}:${op.method}`, (this.calls.get(`${op.via}:${op.method}`) ?? 0) + 1);
    this.metadata.push(op.metadata);
    this.requests.push(op);
    return this.hook === undefined ? undefined : await this.hook(op);
  }

  /** Applies the fault and the leadership check before serving; throws Reject to answer an error. */
  private async admit(op: FakeOp, write: boolean, fault: FakeFault | undefined): Promise<void> {
    if (fault?.kind === 'error') throw new Reject(errorStatus(fault.code, fault.details), fault.code, fault.details ?? {});
    if (fault?.kind === 'status') throw new Reject({ code: fault.grpcCode, details: 'fake bare status' });
    if (fault?.kind === 'delay') await sleep(fault.ms);
    if (fault?.kind === 'hang') await never();
    if (fault?.kind === 'apply-then-error' && !write) throw new Reject(errorStatus(fault.code), fault.code);
    if (this.o.enforceLeadership && op.method !== 'Scan') {
      for (const key of op.keys) {
        const p = this.cluster.partitionOf(keyHash(key));
        if (p.leader !== this.nodeId) {
          const details = { epoch: this.cluster.epoch.toString(), leaderHint: p.leader };
          throw new Reject(errorStatus('NOT_LEADER', details), 'NOT_LEADER', details);
        }
      }
    }
  }

  private get(req: GetRequestOut): GetResponse {
    const v = this.store.get(req.key);
    if (v === undefined) return { found: false, readTs: '1' };
    return { found: true, value: v.value, version: v.version.toString(), expiresAtMs: String(v.expiresAtMs), readTs: '1' };
  }

  private writeOrThrow(ops: WriteOp[]): { versions: bigint[]; existed: boolean[] } {
    const r = this.store.write(ops);
    if (!r.ok) {
      const details = { currentVersion: r.currentVersion.toString() };
      throw new Reject(errorStatus('CONDITION_FAILED', details), 'CONDITION_FAILED', details);
    }
    return r;
  }

  /**
   * Exactly-once writes, as a node does them (docs/adr/0011-exactly-once-writes.md): a request id
   * that applied is not applied again; its resends get the first answer. A failed condition
   * records nothing.
   */
  private once<T>(requestId: Buffer, apply: () => T): T {
    if (requestId.length === 0) return apply();
    const id = requestId.toString('hex');
    if (this.store.applied.has(id)) {
      this.store.duplicates++;
      return this.store.applied.get(id) as T;
    }
    const out = apply();
    this.store.applied.set(id, out);
    return out;
  }

  private put(req: PutRequestOut) {
    return this.once(req.requestId, () => {
      const r = this.writeOrThrow([{ type: 'put', key: req.key, value: req.value, ttlMs: Number(req.ttlMs), condition: req.condition }]);
      return { version: (r.versions[0] as bigint).toString() };
    });
  }

  private del(req: DeleteRequestOut) {
    return this.once(req.requestId, () => {
      const r = this.writeOrThrow([{ type: 'delete', key: req.key, condition: req.condition }]);
      return { deleted: r.existed[0] as boolean, version: (r.versions[0] as bigint).toString() };
    });
  }

  private batchWrite(req: BatchWriteRequestOut) {
    const ops: WriteOp[] = req.mutations.map((m) =>
      m.put
        ? { type: 'put', key: m.put.key, value: m.put.value, ttlMs: Number(m.put.ttlMs), condition: m.put.condition }
        : { type: 'delete', key: (m.delete as DeleteRequestOut).key, condition: (m.delete as DeleteRequestOut).condition },
    );
    return this.once(req.requestId, () => ({ versions: this.writeOrThrow(ops).versions.map(String) }));
  }

  private batchGet(req: BatchGetRequestOut) {
    return { results: req.keys.map((key) => this.get({ key, read: req.read })) };
  }

  /** Serves one operation: fault, admit, apply, and for apply-then-error answer the error after applying. */
  private async serve<T>(op: FakeOp, write: boolean, apply: () => T): Promise<T> {
    const fault = await this.faultFor(op);
    await this.admit(op, write, fault);
    const out = apply();
    if (fault?.kind === 'apply-then-error') throw new AfterApply(fault.code);
    return out;
  }

  private unary<Req, Res>(method: FakeOp['method'], write: boolean, keysOf: (r: Req) => Buffer[], apply: (r: Req) => Res): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const keys = keysOf(call.request);
      const op: FakeOp = { method, via: 'unary', key: keys[0], keys, request: call.request, metadata: call.metadata };
      this.serve(op, write, () => apply(call.request)).then(
        (res) => callback(null, res),
        (e: unknown) => callback(toStatus(e)),
      );
    };
  }

  private kvHandlers(): grpc.UntypedServiceImplementation {
    const handlers: grpc.UntypedServiceImplementation = {
      Get: this.unary<GetRequestOut, GetResponse>(
        'Get',
        false,
        (r) => [r.key],
        (r) => this.get(r),
      ),
      Put: this.unary<PutRequestOut, { version: string }>(
        'Put',
        true,
        (r) => [r.key],
        (r) => this.put(r),
      ),
      Delete: this.unary<DeleteRequestOut, { deleted: boolean; version: string }>(
        'Delete',
        true,
        (r) => [r.key],
        (r) => this.del(r),
      ),
      BatchGet: this.unary<BatchGetRequestOut, { results: GetResponse[] }>(
        'BatchGet',
        false,
        (r) => r.keys,
        (r) => this.batchGet(r),
      ),
      BatchWrite: this.unary<BatchWriteRequestOut, { versions: string[] }>(
        'BatchWrite',
        true,
        (r) => r.mutations.map((m) => (m.put?.key ?? m.delete?.key) as Buffer),
        (r) => this.batchWrite(r),
      ),
      Scan: (call: grpc.ServerWritableStream<ScanRequestOut, ScanResponse>) => {
        void this.scan(call);
      },
    };
    if (this.o.streamSupported !== false) {
      handlers.Stream = (call: grpc.ServerDuplexStream<StreamRequestOut, StreamResponse>) => this.stream(call);
    }
    return handlers;
  }

  private stream(call: grpc.ServerDuplexStream<StreamRequestOut, StreamResponse>): void {
    this.streams.add(call);
    call.on('error', () => {});
    call.on('end', () => {
      this.streams.delete(call);
      call.end();
    });
    call.on('data', (req: StreamRequestOut) => {
      const op = req.op;
      if (op === undefined) return;
      const body = req[op];
      const method = ({ get: 'Get', put: 'Put', delete: 'Delete', batchGet: 'BatchGet', batchWrite: 'BatchWrite' } as const)[op];
      const keys =
        op === 'batchGet'
          ? (body as BatchGetRequestOut).keys
          : op === 'batchWrite'
            ? (body as BatchWriteRequestOut).mutations.map((m) => (m.put?.key ?? m.delete?.key) as Buffer)
            : [(body as { key: Buffer }).key];
      const fakeOp: FakeOp = { method, via: 'stream', key: keys[0], keys, request: req, metadata: call.metadata };
      const write = op === 'put' || op === 'delete' || op === 'batchWrite';
      void (async () => {
        try {
          const fault = await this.faultFor(fakeOp);
          if (fault?.kind === 'break-stream') {
            call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'fake stream broken' });
            this.streams.delete(call);
            return;
          }
          await this.admit(fakeOp, write, fault);
          let res: StreamResponse;
          switch (op) {
            case 'get':
              res = { id: req.id, get: this.get(body as GetRequestOut) };
              break;
            case 'put':
              res = { id: req.id, put: this.put(body as PutRequestOut) };
              break;
            case 'delete':
              res = { id: req.id, delete: this.del(body as DeleteRequestOut) };
              break;
            case 'batchGet':
              res = { id: req.id, batchGet: this.batchGet(body as BatchGetRequestOut) };
              break;
            case 'batchWrite':
              res = { id: req.id, batchWrite: this.batchWrite(body as BatchWriteRequestOut) };
              break;
          }
          if (fault?.kind === 'apply-then-error') throw new AfterApply(fault.code);
          call.write(res);
        } catch (e) {
          const code: ErrorCode = e instanceof Reject ? (e.code ?? 'INTERNAL') : e instanceof AfterApply ? e.code : 'INTERNAL';
          const details = e instanceof Reject ? e.details : {};
          const list = Object.entries(details).map(([key, value]) => ({ key, value }));
          call.write({ id: req.id, error: { code, message: `fake ${code}`, retryable: ErrorCodes[code].retryable, details: list } });
        }
      })();
    });
  }

  private async scan(call: grpc.ServerWritableStream<ScanRequestOut, ScanResponse>): Promise<void> {
    const req = call.request;
    let fault: FakeFault | undefined;
    try {
      const op: FakeOp = { method: 'Scan', via: 'unary', key: req.tag.length > 0 ? req.tag : undefined, keys: [], request: req, metadata: call.metadata };
      fault = await this.faultFor(op);
      await this.admit(op, false, fault);
    } catch (e) {
      call.emit('error', toStatus(e));
      return;
    }
    const tag = req.tag.length > 0 ? req.tag : undefined;
    const th = tag === undefined ? undefined : tagHash(tag);
    let after: { hash: bigint; key: Buffer } | undefined;
    if (req.cursor !== '') {
      try {
        const c = JSON.parse(Buffer.from(req.cursor, 'base64url').toString('utf8')) as { h: string; k: string };
        after = { hash: BigInt(c.h), key: Buffer.from(c.k, 'hex') };
      } catch {
        call.emit('error', errorStatus('INVALID_CURSOR'));
        return;
      }
    }
    const matches = this.store.sorted().filter((e) => {
      if (th !== undefined) {
        const t = hashTag(e.key);
        if (t === undefined || Buffer.compare(Buffer.from(t), tag as Buffer) !== 0 || e.hash !== th) return false;
        if (req.start.length > 0 && Buffer.compare(e.key, req.start) < 0) return false;
        if (req.end.length > 0 && Buffer.compare(e.key, req.end) >= 0) return false;
      }
      if (req.prefix.length > 0 && !e.key.subarray(0, req.prefix.length).equals(req.prefix)) return false;
      if (after !== undefined && (e.hash < after.hash || (e.hash === after.hash && Buffer.compare(e.key, after.key) <= 0))) return false;
      return true;
    });
    const pageMax = this.o.scanPageMax ?? 0;
    const caps = [req.limit, pageMax].filter((x) => x > 0);
    const cap = caps.length > 0 ? Math.min(...caps) : Number.POSITIVE_INFINITY;
    const page = matches.slice(0, cap);
    const more = matches.length > page.length;
    const chunk = this.o.scanChunk ?? 2;
    const cursorOf = (e: { hash: bigint; key: Buffer }) =>
      Buffer.from(JSON.stringify({ h: e.hash.toString(), k: e.key.toString('hex') })).toString('base64url');
    let sent = 0;
    for (let i = 0; i < page.length || i === 0; i += chunk) {
      const part = page.slice(i, i + chunk);
      if (fault?.kind === 'fail-after' && sent + part.length > fault.items) {
        const upto = part.slice(0, Math.max(0, fault.items - sent));
        if (upto.length > 0) call.write({ items: upto.map(toKv(req.keysOnly)), nextCursor: '', readTs: '1' });
        call.emit('error', errorStatus('UNAVAILABLE'));
        return;
      }
      const last = i + chunk >= page.length;
      const lastItem = part[part.length - 1];
      // The last message carries a cursor only when more remain; others (optionally) a resume point.
      const resumePoint = lastItem === undefined ? '' : cursorOf(lastItem);
      const nextCursor = last ? (more ? resumePoint : '') : this.o.cursorEveryMessage ? resumePoint : '';
      call.write({ items: part.map(toKv(req.keysOnly)), nextCursor, readTs: '1' });
      sent += part.length;
      if (page.length === 0) break;
    }
    call.end();
  }

  private adminHandlers(): grpc.UntypedServiceImplementation {
    const handlers: grpc.UntypedServiceImplementation = {
      Health: this.unary<unknown, { status: string; nodeId: string }>(
        'Health',
        false,
        () => [],
        () => ({ status: 'SERVING', nodeId: this.nodeId }),
      ),
      NodeInfo: this.unary<unknown, Record<string, unknown>>(
        'NodeInfo',
        false,
        () => [],
        () => ({
          nodeId: this.nodeId,
          version: '0.0.0-fake',
          grpcAddress: this.address,
          httpAddress: '',
          engine: 'memory',
          dataDir: '',
          partitions: this.cluster.partitions.length,
          uptimeMs: '1234',
          storageBytes: '0',
          keysEstimate: String(this.store.data.size),
        }),
      ),
    };
    if (this.o.mapSupported !== false) {
      handlers.GetPartitionMap = this.unary<unknown, GetPartitionMapResponse>(
        'GetPartitionMap',
        false,
        () => [],
        () => this.cluster.wire(),
      );
    }
    return handlers;
  }
}

function toKv(keysOnly: boolean) {
  return (e: { key: Buffer; stored: Stored }): KeyValue => ({
    key: e.key,
    value: keysOnly ? Buffer.alloc(0) : e.stored.value,
    version: e.stored.version.toString(),
    expiresAtMs: String(e.stored.expiresAtMs),
  });
}

function toStatus(e: unknown): Status {
  if (e instanceof Reject) return e.status;
  if (e instanceof AfterApply) return errorStatus(e.code);
  return { code: grpc.status.INTERNAL, details: e instanceof Error ? e.message : String(e) };
}

/** Starts a fake node on 127.0.0.1 (a free port) and registers it in its cluster. */
export async function startFakeNode(o: FakeNodeOptions = {}): Promise<FakeNode> {
  const node = new FakeNode(o);
  const port = await new Promise<number>((resolve, reject) => {
    node.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  node.address = `127.0.0.1:${port}`;
  node.cluster.nodes.set(node.nodeId, node.address);
  return node;
}
