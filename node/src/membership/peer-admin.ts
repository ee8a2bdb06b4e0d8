/**
 * Calls the internal membership RPCs of another node's Admin service (HostReplica, DropReplica,
 * LocalReplica). One gRPC channel per address, kept until `close`; every call has a deadline;
 * failures come back as KeyVaErrors (decoded from the wire).
 *
 * A call that ends CANCELLED was not cancelled by its caller: the peer reset the stream (a node
 * that stops force-closes its connections after its grace period, and grpc-js may report that as
 * CANCELLED rather than UNAVAILABLE), or this pool was closed because this node is stopping. It
 * fails UNAVAILABLE (retryable; details `outcome: unknown`, `address`), never CANCELLED, which
 * every caller up the chain (a forwarded Admin call's client, the SDK, the CLI, the operator)
 * would take for its own cancellation and not retry.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeGrpcError, OUTCOME_DETAIL, RECONNECT_OPTIONS } from '@keyva/client';
import { type AdminClient, keyvaV1 } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';

export const PEER_CALL_DEADLINE_MS = 3000;
/** Channels kept open, at most. */
export const PEER_CHANNELS_MAX = 64;

export class PeerAdmin {
  private readonly clients = new Map<string, AdminClient>();
  private readonly calls = new Set<grpc.ClientUnaryCall>();
  private closed = false;

  async call<Req, Res>(address: string, method: string, req: Req, deadlineMs = PEER_CALL_DEADLINE_MS): Promise<Res> {
    const client = this.client(address);
    try {
      return await new Promise<Res>((resolve, reject) => {
        const fn = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[method];
        if (fn === undefined) throw new KeyVaError('INTERNAL', `no Admin method ${method}`);
        const call = fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e: grpc.ServiceError | null, r: Res) => {
          this.calls.delete(call);
          if (e) reject(e);
          else resolve(r);
        });
        this.calls.add(call);
      });
    } catch (e) {
      const err = e instanceof KeyVaError ? e : decodeGrpcError(e);
      if (err.code !== 'CANCELLED') throw err;
      const why = this.closed ? 'this node is stopping' : `node at ${address} ended the call without an answer (it is stopping or restarting)`;
      throw new KeyVaError(
        'UNAVAILABLE',
        `${why}; ${method} may or may not have taken effect there; retry`,
        { address, [OUTCOME_DETAIL]: 'unknown' },
        { cause: err },
      );
    }
  }

  /** Cancels the calls in flight and closes every channel. */
  close(): void {
    this.closed = true;
    for (const call of this.calls) call.cancel();
    this.calls.clear();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private client(address: string): AdminClient {
    if (this.closed) throw new KeyVaError('UNAVAILABLE', 'this node is stopping');
    let c = this.clients.get(address);
    if (c === undefined) {
      if (this.clients.size >= PEER_CHANNELS_MAX) {
        const [oldest, client] = this.clients.entries().next().value as [string, AdminClient];
        client.close();
        this.clients.delete(oldest);
      }
      c = new keyvaV1.Admin(address, grpc.credentials.createInsecure(), RECONNECT_OPTIONS) as unknown as AdminClient;
      this.clients.set(address, c);
    }
    return c;
  }
}
