/**
 * Per-node pool of gRPC channels. Each node address gets `size` channels (each its own HTTP/2
 * connection), handed out round-robin; a KV and an Admin client share each channel. Channels
 * are created lazily on first use and closed together.
 *
 * `ready()` waits for a channel to be connected before a request is sent, so a node that
 * cannot be reached fails fast with an UNAVAILABLE that is known not to have applied — which
 * lets the retry policy resend even conditional writes to another node.
 */
import * as grpc from '@grpc/grpc-js';
import { type AdminClient, type KVClient, keyvaV1 } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { cancelledError } from './clock.ts';
import { markNotApplied } from './errors.ts';
import { RECONNECT_OPTIONS } from './reconnect-options.ts';

export const MESSAGE_BYTES_MAX_DEFAULT = 8 * 1024 * 1024;

export interface ChannelPoolOptions {
  /** Channels per node. */
  readonly size: number;
  readonly credentials: grpc.ChannelCredentials;
  /** Largest message sent or received. */
  readonly messageBytesMax: number;
  /** Interval of HTTP/2 keepalive pings while calls are open. */
  readonly keepaliveTimeMs: number;
  /** How long a keepalive ping may go unanswered before the connection is dropped. */
  readonly keepaliveTimeoutMs: number;
  /** Most node addresses the pool holds channels for. */
  readonly nodesMax: number;
}

export interface PooledClients {
  readonly address: string;
  readonly kv: KVClient;
  readonly admin: AdminClient;
}

interface NodeChannels {
  readonly slots: PooledClients[];
  next: number;
}

export function channelOptions(o: ChannelPoolOptions): grpc.ChannelOptions {
  return {
    'grpc.max_send_message_length': o.messageBytesMax,
    'grpc.max_receive_message_length': o.messageBytesMax,
    'grpc.keepalive_time_ms': o.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': o.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 0,
    ...RECONNECT_OPTIONS,
    // Without this, grpc-js shares one subchannel (one connection) among all clients of an address.
    'grpc.use_local_subchannel_pool': 1,
  };
}

export class ChannelPool {
  private readonly options: ChannelPoolOptions;
  private readonly nodes = new Map<string, NodeChannels>();
  private closed = false;

  constructor(options: ChannelPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1)
      throw new KeyVaError('INVALID_ARGUMENT', 'poolSize must be an integer >= 1', { field: 'poolSize' });
    this.options = options;
  }

  /** The next client set for `address`, round-robin over its channels. */
  pick(address: string): PooledClients {
    if (this.closed) throw new KeyVaError('CANCELLED', 'the client is closed');
    let node = this.nodes.get(address);
    if (node === undefined) {
      if (this.nodes.size >= this.options.nodesMax) {
        throw markNotApplied(
          new KeyVaError('UNAVAILABLE', `channel pool holds ${this.options.nodesMax} nodes already`, { limit: String(this.options.nodesMax) }),
        );
      }
      node = { slots: this.open(address), next: 0 };
      this.nodes.set(address, node);
    }
    const slot = node.slots[node.next % node.slots.length] as PooledClients;
    node.next = (node.next + 1) % node.slots.length;
    return slot;
  }

  /** Picks a client for `address` and waits until its channel is connected (or fails fast). */
  async ready(address: string, deadlineMs: number, signal?: AbortSignal): Promise<PooledClients> {
    const slot = this.pick(address);
    await waitReady(slot.kv.getChannel(), address, deadlineMs, signal);
    return slot;
  }

  addresses(): string[] {
    return [...this.nodes.keys()];
  }

  close(): void {
    this.closed = true;
    for (const node of this.nodes.values()) for (const s of node.slots) s.kv.close();
    this.nodes.clear();
  }

  private open(address: string): PooledClients[] {
    const opts = channelOptions(this.options);
    return Array.from({ length: this.options.size }, () => {
      const kv = new keyvaV1.KV(address, this.options.credentials, opts);
      const admin = new keyvaV1.Admin(address, this.options.credentials, { ...opts, channelOverride: kv.getChannel() });
      return { address, kv, admin };
    });
  }
}

/**
 * Resolves once `channel` is READY. Fails at once with UNAVAILABLE (not applied) when the channel
 * is in TRANSIENT_FAILURE or shut down, and with DEADLINE_EXCEEDED (not applied) at `deadlineMs`
 * (epoch ms), and with CANCELLED when `signal` aborts. Nothing has been sent when it fails.
 */
export function waitReady(channel: ReturnType<grpc.Client['getChannel']>, address: string, deadlineMs: number, signal?: AbortSignal): Promise<void> {
  const { READY, TRANSIENT_FAILURE, SHUTDOWN } = grpc.connectivityState;
  if (channel.getConnectivityState(true) === READY) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => finish(cancelledError(signal));
    const finish = (err?: KeyVaError): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(markNotApplied(err));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    const check = (): void => {
      if (settled) return;
      const state = channel.getConnectivityState(true);
      if (state === READY) {
        finish();
        return;
      }
      if (state === TRANSIENT_FAILURE || state === SHUTDOWN) {
        finish(new KeyVaError('UNAVAILABLE', `cannot connect to ${address}`, { address }));
        return;
      }
      if (Date.now() >= deadlineMs) {
        finish(new KeyVaError('DEADLINE_EXCEEDED', `not connected to ${address} before the deadline`, { address }));
        return;
      }
      channel.watchConnectivityState(state, deadlineMs, () => check());
    };
    check();
  });
}
