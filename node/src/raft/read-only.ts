/**
 * ReadIndex bookkeeping on the leader (Raft dissertation §6.4). A read request records the
 * leader's commit index at arrival; the leader then sends a heartbeat carrying the request's
 * context. Once a quorum has echoed that context the leader knows it was still leader when the
 * request arrived, so the recorded index is a linearizable read point. Requests are answered in
 * arrival order: an ack for a later request confirms every earlier one too.
 */
import { bytesKey } from './messages.ts';
import type { Index, ReplicaId } from './types.ts';

export interface ReadIndexRequest {
  readonly index: Index;
  readonly context: Uint8Array;
  /** The replica that asked (the leader itself, or a follower that forwarded it). */
  readonly from: ReplicaId;
  readonly acks: Set<ReplicaId>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexRequest>();
  private queue: string[] = [];

  get size(): number {
    return this.queue.length;
  }

  /** Records a request; false if one with the same context is already pending. */
  add(index: Index, context: Uint8Array, from: ReplicaId): boolean {
    const key = bytesKey(context);
    if (this.pending.has(key)) return false;
    this.pending.set(key, { index, context, from, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records `from`'s heartbeat ack for `context`; returns who has acked it, if still pending. */
  recvAck(from: ReplicaId, context: Uint8Array): ReadonlySet<ReplicaId> | undefined {
    const req = this.pending.get(bytesKey(context));
    if (req === undefined) return undefined;
    req.acks.add(from);
    return req.acks;
  }

  /** Removes and returns every request up to and including `context`, oldest first. */
  advance(context: Uint8Array): ReadIndexRequest[] {
    const key = bytesKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexRequest[] = [];
    for (const k of done) {
      const req = this.pending.get(k);
      this.pending.delete(k);
      if (req !== undefined) out.push(req);
    }
    return out;
  }

  /** The newest pending context: heartbeats carry it so a lost round is retried. */
  lastPendingContext(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1];
    return k === undefined ? undefined : this.pending.get(k)?.context;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
