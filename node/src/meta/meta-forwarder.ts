/**
 * Sends a meta command to another node's Admin service (the meta group's leader), for a node
 * that is not the leader itself (e.g. registering its addresses on start). One gRPC channel per
 * address, kept until `close`; every call has a deadline. A refusal comes back as a `MetaResult`,
 * any other failure (NOT_LEADER, UNAVAILABLE, deadline) as a KeyVaError.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeGrpcError } from '@keyva/client';
import { type AdminClient, keyvaV1 } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import type { MetaCommand, MetaResult } from './meta-state.ts';
import { commandToWire, resultFromError } from './meta-wire.ts';

export const FORWARD_DEADLINE_MS = 3000;
/** Channels kept open, at most (one per meta leader address seen). */
export const FORWARD_CHANNELS_MAX = 16;

interface ChangeResponse {
  readonly epoch: string;
  readonly changed: boolean;
}

export class MetaForwarder {
  private readonly clients = new Map<string, AdminClient>();
  /** Calls in flight, cancelled by `close`. */
  private readonly calls = new Set<grpc.ClientUnaryCall>();
  private closed = false;

  async propose(address: string, c: MetaCommand, deadlineMs = FORWARD_DEADLINE_MS): Promise<MetaResult> {
    const client = this.client(address);
    const { method, req } = commandToWire(c);
    try {
      const res = await new Promise<ChangeResponse>((resolve, reject) => {
        const fn = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[method] as (...a: unknown[]) => grpc.ClientUnaryCall;
        const call = fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e: grpc.ServiceError | null, r: ChangeResponse) => {
          this.calls.delete(call);
          if (e) reject(e);
          else resolve(r);
        });
        this.calls.add(call);
      });
      return { ok: true, epoch: BigInt(res.epoch), changed: res.changed };
    } catch (e) {
      const err = decodeGrpcError(e);
      const refused = resultFromError(err);
      if (refused !== undefined) return refused;
      throw err;
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
    if (this.closed) throw new KeyVaError('UNAVAILABLE', 'this node is stopping: it forwards no more meta changes');
    let c = this.clients.get(address);
    if (c === undefined) {
      if (this.clients.size >= FORWARD_CHANNELS_MAX) {
        const [oldest, client] = this.clients.entries().next().value as [string, AdminClient];
        client.close();
        this.clients.delete(oldest);
      }
      c = new keyvaV1.Admin(address, grpc.credentials.createInsecure()) as unknown as AdminClient;
      this.clients.set(address, c);
    }
    return c;
  }
}
