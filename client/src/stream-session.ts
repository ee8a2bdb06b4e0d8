/**
 * The pipelined fast path: one bidirectional `KV.Stream` per node carrying many requests at
 * once. Each request gets an id; responses come back with the same id in any order. At most
 * `inFlightMax` requests are on the wire; more wait in a queue of at most `queueMax`.
 *
 * Failure handling. A request that was never written (still queued, or the stream could not be
 * opened) fails with UNAVAILABLE marked not-applied: resending is always safe. A request written
 * to a stream that then breaks fails with UNAVAILABLE of unknown outcome: the retry policy
 * resends it only if it is a read or a write carrying a request id (exactly-once, retry.ts). A node that does not implement
 * `Stream` (UNIMPLEMENTED) marks the session `unsupported`; the client then uses unary calls.
 * After a break the session reopens lazily on the next request.
 */
import type * as grpc from '@grpc/grpc-js';
import type { BatchGetRequest, BatchWriteRequest, DeleteRequest, GetRequest, PutRequest, StreamRequest, StreamResponseOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { cancelledError } from './clock.ts';
import { decodeGrpcError, decodeWireError, markNotApplied } from './errors.ts';

export interface StreamOps {
  get: GetRequest;
  put: PutRequest;
  delete: DeleteRequest;
  batchGet: BatchGetRequest;
  batchWrite: BatchWriteRequest;
}
export type StreamOp = keyof StreamOps;

export type StreamCall = grpc.ClientDuplexStream<StreamRequest, StreamResponseOut>;

export interface StreamSessionOptions {
  readonly address: string;
  /** Requests written and not yet answered, at most. */
  readonly inFlightMax: number;
  /** Requests waiting for an in-flight slot or for the stream to open, at most. */
  readonly queueMax: number;
  /** Opens the bidi call, waiting until `deadlineMs` (epoch ms) for the channel to connect. */
  readonly open: (deadlineMs: number) => Promise<StreamCall>;
}

export const SessionState = {
  idle: 'idle',
  opening: 'opening',
  open: 'open',
  unsupported: 'unsupported',
  closed: 'closed',
} as const;
export type SessionState = (typeof SessionState)[keyof typeof SessionState];

interface Pending {
  readonly id: string;
  readonly request: StreamRequest;
  readonly deadlineMs: number;
  written: boolean;
  settle(result: StreamResponseOut | KeyVaError): void;
}

export class StreamSession {
  private readonly options: StreamSessionOptions;
  private state: SessionState = SessionState.idle;
  private call: StreamCall | undefined;
  private readonly inFlight = new Map<string, Pending>();
  private readonly queue: Pending[] = [];
  private nextId = 1;
  /**
   * ONE timer for every pending request's deadline (not a timer per request): armed for the
   * earliest deadline, it fails what expired and re-arms for the next; cleared when nothing waits.
   */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private deadlineTimerAt = Number.POSITIVE_INFINITY;

  constructor(options: StreamSessionOptions) {
    if (!Number.isInteger(options.inFlightMax) || options.inFlightMax < 1)
      throw new KeyVaError('INVALID_ARGUMENT', 'inFlightMax must be an integer >= 1', { field: 'inFlightMax' });
    this.options = options;
  }

  get status(): SessionState {
    return this.state;
  }

  /** false once the node proved it has no Stream method, or the session is closed. */
  get usable(): boolean {
    return this.state !== SessionState.unsupported && this.state !== SessionState.closed;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /**
   * Sends one operation and resolves with its response, or rejects with a KeyVaError: the node's
   * error for this request, DEADLINE_EXCEEDED at `deadlineMs` (epoch ms), CANCELLED on abort,
   * UNAVAILABLE when the stream breaks.
   */
  request<K extends StreamOp>(op: K, body: StreamOps[K], deadlineMs: number, signal?: AbortSignal): Promise<StreamResponseOut> {
    if (this.state === SessionState.closed) return Promise.reject(new KeyVaError('CANCELLED', 'the client is closed'));
    if (this.state === SessionState.unsupported) return Promise.reject(this.notApplied('the node does not serve KV.Stream'));
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    if (this.queue.length >= this.options.queueMax) {
      return Promise.reject(
        markNotApplied(
          new KeyVaError('UNAVAILABLE', `stream queue to ${this.options.address} is full`, {
            limit: String(this.options.queueMax),
            address: this.options.address,
          }),
        ),
      );
    }
    return new Promise<StreamResponseOut>((resolve, reject) => {
      // Sent as a number (serialised without parsing a decimal string); answers name it as a string.
      const n = this.nextId++;
      const id = String(n);
      const onAbort = signal === undefined ? undefined : (): void => this.fail(p, cancelledError(signal));
      const p: Pending = {
        id,
        request: { id: n, [op]: body },
        deadlineMs,
        written: false,
        settle: (result) => {
          if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
          if (result instanceof KeyVaError) reject(result);
          else resolve(result);
        },
      };
      if (onAbort !== undefined) signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(p);
      this.armDeadline(deadlineMs);
      this.pump();
    });
  }

  /** Makes sure the deadline timer fires no later than `deadlineMs`. */
  private armDeadline(deadlineMs: number): void {
    if (deadlineMs >= this.deadlineTimerAt) return;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = deadlineMs;
    this.deadlineTimer = setTimeout(() => this.expire(), Math.max(0, deadlineMs - Date.now()));
  }

  private disarmDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlineTimerAt = Number.POSITIVE_INFINITY;
  }

  /** Fails every request whose deadline passed, then re-arms for the earliest one left. */
  private expire(): void {
    this.deadlineTimer = undefined;
    this.deadlineTimerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    const expired: Pending[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const list of [this.inFlight.values(), this.queue.values()])
      for (const p of list) {
        if (p.deadlineMs <= now) expired.push(p);
        else if (p.deadlineMs < next) next = p.deadlineMs;
      }
    for (const p of expired) this.fail(p, new KeyVaError('DEADLINE_EXCEEDED', 'the deadline passed before the node answered'));
    if (next !== Number.POSITIVE_INFINITY && this.inFlight.size + this.queue.length > 0) this.armDeadline(next);
  }

  /** Fails every pending request with CANCELLED and ends the stream. */
  close(): void {
    if (this.state === SessionState.closed) return;
    this.state = SessionState.closed;
    const call = this.call;
    this.call = undefined;
    this.failAll(() => new KeyVaError('CANCELLED', 'the client is closed'));
    this.disarmDeadline();
    call?.cancel();
  }

  private notApplied(message: string, cause?: unknown): KeyVaError {
    return markNotApplied(new KeyVaError('UNAVAILABLE', message, { address: this.options.address }, { cause }));
  }

  /** Removes a pending request wherever it waits and settles it with `err`. */
  private fail(p: Pending, err: KeyVaError): void {
    if (this.inFlight.get(p.id) === p) {
      this.inFlight.delete(p.id);
    } else {
      const i = this.queue.indexOf(p);
      if (i < 0) return; // already settled
      this.queue.splice(i, 1);
      // Never written: nothing reached the node.
      markNotApplied(err);
    }
    p.settle(err);
    this.pump();
  }

  private failAll(errFor: (p: Pending) => KeyVaError): void {
    const all = [...this.inFlight.values(), ...this.queue];
    this.inFlight.clear();
    this.queue.length = 0;
    this.disarmDeadline();
    for (const p of all) p.settle(errFor(p));
  }

  private pump(): void {
    if (this.queue.length === 0) {
      // Nothing waits: no timer may keep the process alive.
      if (this.inFlight.size === 0 && this.deadlineTimer !== undefined) this.disarmDeadline();
      return;
    }
    if (this.state === SessionState.idle) {
      this.startOpen();
      return;
    }
    const call = this.call;
    if (this.state !== SessionState.open || call === undefined) return;
    while (this.queue.length > 0 && this.inFlight.size < this.options.inFlightMax) {
      const p = this.queue.shift() as Pending;
      this.inFlight.set(p.id, p);
      p.written = true;
      call.write(p.request);
    }
  }

  private startOpen(): void {
    this.state = SessionState.opening;
    const deadlineMs = Math.max(...this.queue.map((p) => p.deadlineMs));
    this.options.open(deadlineMs).then(
      (call) => {
        if (this.state !== SessionState.opening) {
          call.cancel();
          return;
        }
        this.call = call;
        this.state = SessionState.open;
        this.attach(call);
        this.pump();
      },
      (e: unknown) => {
        if (this.state !== SessionState.opening) return;
        this.state = SessionState.idle;
        const cause = decodeGrpcError(e);
        this.failAll(() => this.notApplied(`cannot open a stream to ${this.options.address}`, cause));
      },
    );
  }

  private attach(call: StreamCall): void {
    call.on('data', (resp: StreamResponseOut) => {
      const p = this.inFlight.get(resp.id);
      if (p === undefined) return; // timed out or cancelled meanwhile
      this.inFlight.delete(resp.id);
      p.settle(resp.result === 'error' && resp.error ? decodeWireError(resp.error) : resp);
      this.pump();
    });
    let ended = false;
    const broken = (cause: KeyVaError): void => {
      if (ended) return;
      ended = true;
      if (this.call !== call) return;
      this.call = undefined;
      const unsupported = cause.code === 'ROUTE_NOT_FOUND';
      this.state = unsupported ? SessionState.unsupported : SessionState.idle;
      this.failAll((p) => {
        if (!p.written || unsupported) return this.notApplied(`the stream to ${this.options.address} closed before sending`, cause);
        // Written: the node may or may not have applied it.
        return new KeyVaError('UNAVAILABLE', `the stream to ${this.options.address} broke`, { address: this.options.address }, { cause });
      });
      call.cancel();
    };
    call.on('error', (e: unknown) => broken(decodeGrpcError(e)));
    call.on('end', () => broken(new KeyVaError('UNAVAILABLE', 'the node ended the stream')));
  }
}
