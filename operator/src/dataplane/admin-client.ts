/**
 * Calls nodes' Admin API over gRPC for the placement controller: one channel per address (kept
 * until `close`), a deadline on every call, failures as KeyVaErrors decoded from the wire.
 * `callLeader` follows one NOT_LEADER redirect (details `leaderAddress`, else `leaderHint`
 * resolved through `addressOf`), so a caller that aimed at a stale leader still lands.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeGrpcError, RECONNECT_OPTIONS } from '@keyva/client';
import { type AdminClient, keyvaV1 } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';

export const ADMIN_CALL_DEADLINE_MS = 3000;
/** Membership changes answer once applied (a learner's snapshot, a leader transfer): give them time. */
export const ADMIN_CHANGE_DEADLINE_MS = 15_000;

export type AdminMethod =
  | 'Health'
  | 'NodeInfo'
  | 'GetPartitionMap'
  | 'UpdatePartitionMap'
  | 'AddLearner'
  | 'PromoteLearner'
  | 'RemoveReplica'
  | 'TransferLeader'
  | 'GetPartitionReplicas'
  | 'ListPartitionReplicas'
  | 'LocalReplica'
  | 'SplitPartition'
  | 'MergePartitions'
  | 'UnsafeRecoverPartition'
  | 'PartitionDigest';

export interface AdminCaller {
  call<Res>(address: string, method: AdminMethod, req: object, deadlineMs?: number): Promise<Res>;
  /** As `call`, following one NOT_LEADER redirect. */
  callLeader<Res>(address: string, method: AdminMethod, req: object, addressOf: (nodeId: string) => string | undefined, deadlineMs?: number): Promise<Res>;
  close(): void;
}

export class GrpcAdminCaller implements AdminCaller {
  private readonly clients = new Map<string, AdminClient>();
  private closed = false;

  async call<Res>(address: string, method: AdminMethod, req: object, deadlineMs = ADMIN_CALL_DEADLINE_MS): Promise<Res> {
    const client = this.client(address);
    const lower = `${method[0]?.toLowerCase()}${method.slice(1)}`;
    const fn = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[lower];
    if (fn === undefined) throw new KeyVaError('INTERNAL', `no Admin method ${method}`);
    try {
      return await new Promise<Res>((resolve, reject) => {
        fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (e: grpc.ServiceError | null, r: Res) => (e ? reject(e) : resolve(r)));
      });
    } catch (e) {
      throw e instanceof KeyVaError ? e : decodeGrpcError(e);
    }
  }

  async callLeader<Res>(
    address: string,
    method: AdminMethod,
    req: object,
    addressOf: (nodeId: string) => string | undefined,
    deadlineMs = ADMIN_CALL_DEADLINE_MS,
  ): Promise<Res> {
    try {
      return await this.call<Res>(address, method, req, deadlineMs);
    } catch (e) {
      const to = redirectOf(e, addressOf);
      if (to === undefined || to === address) throw e;
      return this.call<Res>(to, method, req, deadlineMs);
    }
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private client(address: string): AdminClient {
    if (this.closed) throw new KeyVaError('UNAVAILABLE', 'the admin caller is closed');
    let c = this.clients.get(address);
    if (c === undefined) {
      c = new keyvaV1.Admin(address, grpc.credentials.createInsecure(), RECONNECT_OPTIONS) as unknown as AdminClient;
      this.clients.set(address, c);
    }
    return c;
  }
}

/** Where a NOT_LEADER answer points (address, else the hinted node's address), if anywhere. */
export function redirectOf(e: unknown, addressOf: (nodeId: string) => string | undefined): string | undefined {
  if (!(e instanceof KeyVaError) || e.code !== 'NOT_LEADER') return undefined;
  const a = e.details.leaderAddress;
  if (a !== undefined && a !== '') return a;
  const hint = e.details.leaderHint;
  return hint !== undefined && hint !== '' ? addressOf(hint) : undefined;
}
