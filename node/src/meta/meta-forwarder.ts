/**
 * Sends a meta command to another node's Admin service (the meta group's leader), for a node
 * that is not the leader itself (e.g. registering its addresses on start), over the node's
 * pooled Admin channels (`PeerAdmin`). A refusal comes back as a `MetaResult`, any other failure
 * (NOT_LEADER, UNAVAILABLE, deadline) as a KeyVaError.
 */
import { PEER_CALL_DEADLINE_MS, PeerAdmin } from '../membership/peer-admin.ts';
import type { MetaCommand, MetaResult } from './meta-state.ts';
import { commandToWire, resultFromError } from './meta-wire.ts';

interface ChangeResponse {
  readonly epoch: string;
  readonly changed: boolean;
}

export class MetaForwarder {
  private readonly peers: PeerAdmin;
  /** Whether this forwarder made its pool (and closes it); a pool passed in is closed by its owner. */
  private readonly ownsPeers: boolean;

  constructor(peers?: PeerAdmin) {
    this.peers = peers ?? new PeerAdmin();
    this.ownsPeers = peers === undefined;
  }

  async propose(address: string, c: MetaCommand, deadlineMs = PEER_CALL_DEADLINE_MS): Promise<MetaResult> {
    const { method, req } = commandToWire(c);
    try {
      const res = await this.peers.call<unknown, ChangeResponse>(address, method, req, deadlineMs);
      return { ok: true, epoch: BigInt(res.epoch), changed: res.changed };
    } catch (e) {
      const refused = resultFromError(e);
      if (refused !== undefined) return refused;
      throw e;
    }
  }

  /** Closes the pool if this forwarder made it (cancelling its calls in flight). */
  close(): void {
    if (this.ownsPeers) this.peers.close();
  }
}
