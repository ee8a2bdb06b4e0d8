/**
 * Forwarding of KV requests to a partition's leader (ADR 0008 §8): any node accepts any
 * request; when the partition's leader is another node, the receiving node sends the same
 * request to that leader over a pooled gRPC channel and answers with the leader's answer.
 *
 * Bounded: ONE hop. A forwarded call carries `keyva-forwarded-by: <node id>` in its metadata; a
 * node receiving such a call never forwards it again (it answers NOT_LEADER itself). The first
 * node may then send the request on once more, to the leader that answer names (`redirectsMax`):
 * a node hosting no replica of the partition (more nodes than the replication factor) only knows
 * the replicas from the map, so it forwards to one of them, and a follower names the leader.
 * NOT_LEADER means nothing was proposed or read there, so the resend is safe for writes too.
 * When nothing could be sent to the chosen node (unreachable), the next of `alternates` (the
 * partition's other replicas) is tried: again, nothing was proposed anywhere. The caller's deadline is propagated (a default bounds calls that
 * came without one, e.g. REST), and so are the trace context and the follower-read staleness.
 * What a failure turns into, and why writes never come back as a retryable NOT_LEADER or
 * UNAVAILABLE once sent, is in `forward-outcome.ts`.
 *
 * Channels: one per leader address (HTTP/2 multiplexes every call), opened lazily, at most
 * `channelsMax`; before a call the channel must be READY within `connectTimeoutMs`, so an
 * unreachable leader fails fast with a "nothing was sent" answer.
 */
import * as grpc from '@grpc/grpc-js';
import { RECONNECT_OPTIONS } from '@keyva/client';
import { type KVClient, keyvaV1 } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { context, propagation, type TextMapSetter } from '@opentelemetry/api';
import { type CallFailure, type ForwardContext, forwardedCallError, notForwardedError } from './forward-outcome.ts';
import type { NodeDirectory } from './node-directory.ts';

/** Metadata key marking a forwarded call; its value is the forwarding node's id. */
export const FORWARDED_BY_METADATA = 'keyva-forwarded-by';
/**
 * Metadata a client sends as `keyva-routing: direct` to be answered NOT_LEADER (with the leader
 * hint) instead of being forwarded: the SDK does, since it routes to leaders itself and learns
 * leader changes from those hints.
 */
export const ROUTING_METADATA = 'keyva-routing';
export const ROUTING_DIRECT = 'direct';
/** Metadata key of a follower read's staleness bound in ms (gRPC callers may set it too). */
export const MAX_STALENESS_METADATA = 'keyva-max-staleness-ms';

export const FORWARD_TIMEOUT_MS_DEFAULT = 10_000;
export const FORWARD_CONNECT_TIMEOUT_MS = 1000;
export const FORWARD_CHANNELS_MAX = 256;

export type ForwardMethod = 'Get' | 'Put' | 'Delete' | 'BatchGet' | 'BatchWrite';

export interface ForwarderOptions {
  readonly self: string;
  readonly directory: NodeDirectory;
  readonly messageBytesMax: number;
  readonly timeoutMsDefault?: number;
  readonly connectTimeoutMs?: number;
  readonly channelsMax?: number;
}

export interface ForwardCall {
  /** Absolute deadline (epoch ms) of the original call, if it had one. */
  readonly deadlineMs: number | undefined;
  readonly write: boolean;
  readonly maxStalenessMs?: number | undefined;
  /** Other nodes that can answer (the partition's replicas), tried when nothing could be sent to the first. */
  readonly alternates?: readonly string[] | undefined;
}

/** Resends after a NOT_LEADER answer naming another leader, at most (see the file comment). */
export const FORWARD_REDIRECTS_MAX = 1;

const setter: TextMapSetter<grpc.Metadata> = { set: (md, k, v) => md.set(k, v) };

type Callback = (err: grpc.ServiceError | null, res?: unknown) => void;
type UnaryMethod = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback) => grpc.ClientUnaryCall;

export class Forwarder {
  readonly self: string;
  private readonly o: ForwarderOptions;
  private readonly clients = new Map<string, KVClient>();
  private closed = false;
  readonly stats = { forwarded: 0, failed: 0, notSent: 0 };

  constructor(o: ForwarderOptions) {
    this.o = o;
    this.self = o.self;
  }

  /**
   * Sends `request` to `leader` as `method` and resolves with its answer; follows one NOT_LEADER
   * redirect and tries `call.alternates` when nothing could be sent (see the file comment).
   */
  async forward<Res>(method: ForwardMethod, request: unknown, leader: string, call: ForwardCall): Promise<Res> {
    const tried = new Set<string>();
    let redirects = 0;
    let target = leader;
    for (;;) {
      tried.add(target);
      try {
        return await this.forwardOnce<Res>(method, request, target, call);
      } catch (e) {
        if (!(e instanceof KeyVaError)) throw e;
        let next: string | undefined;
        if (e.code === 'NOT_LEADER' && redirects < FORWARD_REDIRECTS_MAX) {
          const hint = e.details.leaderHint;
          if (hint !== undefined && hint !== '' && hint !== this.self && !tried.has(hint)) {
            next = hint;
            redirects++;
          }
        } else if (e.code === 'UNAVAILABLE' && e.details.forwarded === 'false' && !this.closed)
          next = (call.alternates ?? []).find((a) => a !== '' && a !== this.self && !tried.has(a));
        if (next === undefined) throw e;
        target = next;
      }
    }
  }

  private async forwardOnce<Res>(method: ForwardMethod, request: unknown, leader: string, call: ForwardCall): Promise<Res> {
    const c: ForwardContext = { self: this.self, leader, method, write: call.write };
    if (leader === this.self) throw new KeyVaError('INTERNAL', `${method}: node ${this.self} was asked to forward to itself`);
    const address = this.o.directory.grpcAddressOf(leader);
    if (address === undefined || this.closed) {
      this.stats.notSent++;
      throw notForwardedError(c, this.closed ? 'the node is stopping' : `no address is known for node ${leader}`);
    }
    const deadlineMs = call.deadlineMs ?? Date.now() + (this.o.timeoutMsDefault ?? FORWARD_TIMEOUT_MS_DEFAULT);
    let client: KVClient;
    try {
      client = this.clientFor(address);
      await waitReady(client, Math.min(deadlineMs, Date.now() + (this.o.connectTimeoutMs ?? FORWARD_CONNECT_TIMEOUT_MS)));
    } catch (e) {
      this.stats.notSent++;
      throw notForwardedError(c, e instanceof Error ? e.message : String(e));
    }
    const md = new grpc.Metadata();
    propagation.inject(context.active(), md, setter);
    md.set(FORWARDED_BY_METADATA, this.self);
    if (call.maxStalenessMs !== undefined) md.set(MAX_STALENESS_METADATA, String(call.maxStalenessMs));
    const fn = (client as unknown as Record<ForwardMethod, UnaryMethod>)[method].bind(client);
    this.stats.forwarded++;
    return new Promise<Res>((resolve, reject) => {
      fn(request, md, { deadline: new Date(deadlineMs) }, (err, res) => {
        if (err) {
          this.stats.failed++;
          reject(forwardedCallError(err as CallFailure, c));
        } else resolve(res as Res);
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private clientFor(address: string): KVClient {
    const existing = this.clients.get(address);
    if (existing !== undefined) return existing;
    const max = this.o.channelsMax ?? FORWARD_CHANNELS_MAX;
    if (this.clients.size >= max) throw new Error(`the forwarding pool holds ${max} channels already`);
    const client = new keyvaV1.KV(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': this.o.messageBytesMax,
      'grpc.max_receive_message_length': this.o.messageBytesMax,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      ...RECONNECT_OPTIONS,
    });
    this.clients.set(address, client);
    return client;
  }
}

/** Resolves once the client's channel is READY; rejects at `deadlineMs` or on TRANSIENT_FAILURE. */
function waitReady(client: grpc.Client, deadlineMs: number): Promise<void> {
  const channel = client.getChannel();
  const { READY, TRANSIENT_FAILURE, SHUTDOWN } = grpc.connectivityState;
  if (channel.getConnectivityState(true) === READY) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const check = (): void => {
      const state = channel.getConnectivityState(true);
      if (state === READY) resolve();
      else if (state === SHUTDOWN) reject(new Error('the channel is shut down'));
      else if (state === TRANSIENT_FAILURE) reject(new Error('the leader cannot be reached'));
      else if (Date.now() >= deadlineMs) reject(new Error('no connection to the leader within the connect bound'));
      else channel.watchConnectivityState(state, new Date(deadlineMs), check);
    };
    check();
  });
}
