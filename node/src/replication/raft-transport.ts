/**
 * Node-to-node Raft transport: one outbound gRPC stream per peer carrying the messages of every
 * group, batched per event-loop turn: one `RaftBatch` whose `packed` buffer holds every message
 * (`raft-codec.ts` `encodePacked`), the heartbeats and heartbeat responses of all groups
 * coalesced into compact records — one wire message per peer per tick however many groups the
 * two nodes share (KeyVa issue #3). No per-message protobuf work on either side.
 * Raft tolerates loss: when a stream breaks, what it carried is dropped and the next send
 * reconnects after a backoff. Every queue is bounded.
 *
 * Snapshots of data groups do not ride on that stream: once the runtime attached itself
 * (`attachSnapshots`), a snapshot message whose data is a streamed descriptor goes to the
 * `SnapshotSender` (its own `SendSnapshot` call per transfer, or `SendSnapshotFiles` for SST
 * files, on a separate channel, rate-limited node-wide), and those calls from peers go to the
 * `SnapshotReceiver`, which steps the message into its group only once all of it is staged
 * (`snapshot-*.ts`, ADR 0008 §9).
 *
 * Incarnations (docs/adr/0008 "Wiped data directories"): a stream carries the sender's data
 * directory incarnation in its metadata, and the receiver asks `refuses` whether the registry
 * knows that node under another one. A node that came back on a wiped disk is refused here, so
 * its votes and acknowledgements reach no healthy peer even when it started while they were down.
 */
import * as grpc from '@grpc/grpc-js';
import { RECONNECT_OPTIONS } from '@keyva/client';
import { keyvaV1, type RaftBatch, type RaftBatchOut, type RaftClient, type SnapshotAck, type SnapshotEndpointReply, type SnapshotFrameOut } from '@keyva/proto';
import type { Logger } from '../observability/logger.ts';
import type { SnapshotStreamTotals } from '../observability/metrics.ts';
import type { Message } from '../raft/messages.ts';
import { decodeMessage, decodePacked, encodePacked, type GroupMessage, isCoalescedHeartbeat } from './raft-codec.ts';
import type { GroupId } from './raft-keys.ts';
import { widenReceiveWindow } from './snapshot-flow-window.ts';
import { RateLimiter, SNAPSHOT_BYTES_PER_SECOND_DEFAULT } from './snapshot-rate-limiter.ts';
import { SnapshotReceiver, type SnapshotReceiveStats } from './snapshot-receiver.ts';
import { isStreamedSnapshotMessage, type SnapshotHost, SnapshotSender, type SnapshotSendStats, type SnapshotTransfer } from './snapshot-sender.ts';
import { SnapshotSocketThread } from './snapshot-socket-thread.ts';

/** Messages waiting for one peer, at most; older ones are dropped first. */
export const PEER_QUEUE_MAX = 10_000;
/** Messages in one RaftBatch, at most. */
export const BATCH_MESSAGES_MAX = 512;

export interface RaftTransportOptions {
  readonly self: string;
  /** The gRPC address of a peer node, or undefined when unknown (its messages are dropped). */
  readonly addressOf: (nodeId: string) => string | undefined;
  readonly onReceive: (from: string, group: GroupId, message: Message) => void;
  readonly reconnectBackoffMs?: number;
  readonly credentials?: grpc.ChannelCredentials;
  readonly now?: () => number;
  /** Node-wide bandwidth of outgoing snapshot streams (default 64 MiB/s). */
  readonly snapshotBytesPerSecond?: number;
  /** Send snapshots as rows even when both ends could use SST files (ADR 0013). */
  readonly snapshotRowsOnly?: boolean;
  /** Row bytes per snapshot chunk, at most (default 1 MiB; keep it below the peers' gRPC message limit). */
  readonly snapshotChunkBytes?: number;
  /** Where failed snapshot transfers are reported. */
  readonly log?: Logger;
  /**
   * Take SST-file snapshots over a plain TCP socket on this host and port (0: any free one) and
   * send them to peers' sockets (ADR 0014); `startSnapshotSocket` listens. Without it, and to a
   * peer without one, they go over gRPC.
   */
  readonly snapshotSocket?: { readonly host: string; readonly port: number };
  /** With `snapshotSocket`: the host of peer `id`'s snapshot socket, or undefined to send it SST files over gRPC (default: that of its address). */
  readonly snapshotSocketHostOf?: (id: string) => string | undefined;
  /** This node's data directory incarnation, sent with every Raft stream (none: not sent). */
  readonly incarnation?: string;
  /**
   * Why Raft traffic from node `from` (with `incarnation`, if it sent one) must be refused, or
   * undefined to take it (default: take everything).
   */
  readonly refuses?: (from: string, incarnation: string | undefined) => string | undefined;
}

/** The metadata key of a Raft stream's sender incarnation. */
export const INCARNATION_METADATA_KEY = 'keyva-incarnation';

/** A gRPC UNAVAILABLE error answer. */
function unavailable(details: string): grpc.ServerErrorResponse {
  return { code: grpc.status.UNAVAILABLE, details, name: 'SnapshotError', message: details, metadata: new grpc.Metadata() };
}

/** The host part of a `host:port` address (`[v6]:port` too); undefined for undefined. */
export function hostOf(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    return end < 0 ? undefined : address.slice(1, end);
  }
  const colon = address.lastIndexOf(':');
  return colon < 0 ? address : address.slice(0, colon);
}

export interface TransportStats {
  sent: number;
  /** RaftBatch messages written to the peers' streams. */
  batches: number;
  /** Of `sent`: heartbeats and heartbeat responses, coalesced into their batch's packed records. */
  heartbeatsSent: number;
  /** Batches that carried at least one coalesced heartbeat (or response). */
  heartbeatBatches: number;
  dropped: number;
  received: number;
  /** RaftBatch messages read from the peers' streams. */
  batchesReceived: number;
  /** Of `received`: coalesced heartbeats and heartbeat responses. */
  heartbeatsReceived: number;
  malformed: number;
  connects: number;
  /** Snapshot messages dropped because no runtime attached the snapshot streams. */
  snapshotsUnattached: number;
  /** Raft streams refused because their sender came back under its id with another data directory. */
  refusedStreams: number;
}

interface Peer {
  readonly id: string;
  address: string;
  client: RaftClient | undefined;
  stream: grpc.ClientWritableStream<RaftBatch> | undefined;
  queue: GroupMessage[];
  flushing: boolean;
  downUntil: number;
}

export class RaftTransport {
  readonly stats: TransportStats = {
    sent: 0,
    batches: 0,
    heartbeatsSent: 0,
    heartbeatBatches: 0,
    dropped: 0,
    received: 0,
    batchesReceived: 0,
    heartbeatsReceived: 0,
    malformed: 0,
    connects: 0,
    snapshotsUnattached: 0,
    refusedStreams: 0,
  };
  private readonly peers = new Map<string, Peer>();
  /** Clients of the peers' Raft services for snapshot streams, on channels of their own. */
  private readonly snapshotClients = new Map<string, { address: string; client: RaftClient }>();
  private snapshotSender: SnapshotSender | undefined;
  private snapshotReceiver: SnapshotReceiver | undefined;
  private snapshotSocketServer: SnapshotSocketThread | undefined;
  private readonly o: RaftTransportOptions;
  private readonly now: () => number;
  private closed = false;

  constructor(o: RaftTransportOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  /**
   * Enables streamed snapshots (the runtime calls it once, with what the streams read and
   * report to). Without it a streamed snapshot message is dropped and counted.
   */
  attachSnapshots(host: SnapshotHost): void {
    const limiter = new RateLimiter({ bytesPerSecond: this.o.snapshotBytesPerSecond ?? SNAPSHOT_BYTES_PER_SECOND_DEFAULT });
    this.snapshotSender = new SnapshotSender({
      self: this.o.self,
      host,
      clientOf: (id) => this.snapshotClientOf(id),
      limiter,
      chunkBytes: this.o.snapshotChunkBytes,
      rowsOnly: this.o.snapshotRowsOnly,
      ...(this.o.log === undefined ? {} : { log: this.o.log }),
      ...(this.o.snapshotSocket === undefined ? {} : { socketHostOf: this.o.snapshotSocketHostOf ?? ((id: string) => hostOf(this.o.addressOf(id))) }),
    });
    this.snapshotReceiver = new SnapshotReceiver({ self: this.o.self, host, deliver: (from, group, m) => this.o.onReceive(from, group, m) });
  }

  /**
   * Listens on the snapshot socket (option `snapshotSocket`); resolves to its port, or undefined
   * without the option. Transfers arriving before `attachSnapshots` are refused (UNAVAILABLE).
   */
  async startSnapshotSocket(): Promise<number | undefined> {
    const where = this.o.snapshotSocket;
    if (where === undefined || this.closed) return undefined;
    const server = new SnapshotSocketThread({ ...where, receiver: () => this.snapshotReceiver });
    this.snapshotSocketServer = server;
    return await server.listen();
  }

  /** Streamed snapshot metrics: sent and received counts and bytes, and the transfers in progress. */
  snapshotStats(): { send: SnapshotSendStats | undefined; receive: SnapshotReceiveStats | undefined; transfers: SnapshotTransfer[] } {
    return { send: this.snapshotSender?.stats, receive: this.snapshotReceiver?.stats, transfers: this.snapshotSender?.transfers() ?? [] };
  }

  /** The same, flat, for the node's metrics (`NodeMetrics.watchSnapshotStreams`). */
  snapshotTotals(): SnapshotStreamTotals {
    const s = this.snapshotSender?.stats;
    const r = this.snapshotReceiver?.stats;
    const transfers = this.snapshotSender?.transfers() ?? [];
    return {
      sentBytes: s?.bytesSent ?? 0,
      receivedBytes: r?.bytesReceived ?? 0,
      sent: s?.succeeded ?? 0,
      sentAsFiles: s?.filesSent ?? 0,
      sentOverSocket: s?.overSocket ?? 0,
      sendFailed: s?.failed ?? 0,
      sendDeferred: s?.deferred ?? 0,
      received: r?.received ?? 0,
      receiveFailed: r?.failed ?? 0,
      receivingSeconds: (r?.receivingMs ?? 0) / 1000,
      sending: transfers.length,
      sendingBytes: transfers.reduce((n, t) => n + t.bytes, 0),
    };
  }

  /** Whether `message` leaves through a snapshot stream (which reports its outcome to the runtime). */
  streamsSnapshot(message: Message): boolean {
    return this.snapshotSender !== undefined && isStreamedSnapshotMessage(message);
  }

  /** Queues a message for a peer; it leaves with the next batch (this event-loop turn). */
  send(to: string, group: GroupId, message: Message): void {
    if (this.closed) return;
    if (isStreamedSnapshotMessage(message)) {
      if (this.snapshotSender === undefined) this.stats.snapshotsUnattached++;
      else this.snapshotSender.send(to, group, message);
      return;
    }
    const peer = this.peer(to);
    if (!peer) {
      this.stats.dropped++;
      return;
    }
    if (peer.queue.length >= PEER_QUEUE_MAX) {
      peer.queue.shift();
      this.stats.dropped++;
    }
    peer.queue.push({ group, message });
    if (!peer.flushing) {
      peer.flushing = true;
      setImmediate(() => this.flush(peer));
    }
  }

  private peer(id: string): Peer | undefined {
    const address = this.o.addressOf(id);
    if (address === undefined) return undefined;
    let p = this.peers.get(id);
    if (!p) {
      p = { id, address, client: undefined, stream: undefined, queue: [], flushing: false, downUntil: 0 };
      this.peers.set(id, p);
    } else if (p.address !== address) {
      this.disconnect(p);
      p.address = address;
    }
    return p;
  }

  private snapshotClientOf(id: string): RaftClient | undefined {
    const address = this.o.addressOf(id);
    if (address === undefined || this.closed) return undefined;
    const cur = this.snapshotClients.get(id);
    if (cur !== undefined && cur.address === address) return cur.client;
    cur?.client.close();
    const client = new keyvaV1.Raft(address, this.o.credentials ?? grpc.credentials.createInsecure(), {
      // A connection of its own: a large transfer never holds up the Raft stream's heartbeats.
      'grpc.use_local_subchannel_pool': 1,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      ...RECONNECT_OPTIONS,
    }) as unknown as RaftClient;
    this.snapshotClients.set(id, { address, client });
    return client;
  }

  private connect(p: Peer): grpc.ClientWritableStream<RaftBatch> | undefined {
    if (p.stream) return p.stream;
    if (this.now() < p.downUntil) return undefined;
    p.client ??= new keyvaV1.Raft(p.address, this.o.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      ...RECONNECT_OPTIONS,
    }) as unknown as RaftClient;
    const metadata = new grpc.Metadata();
    if (this.o.incarnation !== undefined) metadata.set(INCARNATION_METADATA_KEY, this.o.incarnation);
    const stream = p.client.send(metadata, (_err: grpc.ServiceError | null) => {
      // The stream ended (peer gone, restarted or shutting down): drop it, back off, reconnect on demand.
      if (p.stream === stream) this.markDown(p);
    });
    stream.on('error', () => {
      if (p.stream === stream) this.markDown(p);
    });
    p.stream = stream;
    this.stats.connects++;
    return stream;
  }

  private markDown(p: Peer): void {
    p.stream = undefined;
    // A flush waiting for this stream's 'drain' would wait forever (a dead stream never drains)
    // and, with `flushing` set, no later send would schedule another: the link would stay dead.
    p.flushing = false;
    p.downUntil = this.now() + (this.o.reconnectBackoffMs ?? 200);
    this.stats.dropped += p.queue.length;
    p.queue = [];
  }

  private disconnect(p: Peer): void {
    p.stream?.end();
    p.stream = undefined;
    p.flushing = false;
    p.client?.close();
    p.client = undefined;
  }

  private flush(p: Peer): void {
    p.flushing = false;
    if (this.closed || p.queue.length === 0) return;
    const stream = this.connect(p);
    if (!stream) {
      this.stats.dropped += p.queue.length;
      p.queue = [];
      return;
    }
    while (p.queue.length > 0) {
      const chunk = this.takeChunk(p);
      const packed = encodePacked(chunk);
      let heartbeats = 0;
      for (const c of chunk) if (isCoalescedHeartbeat(c.message)) heartbeats++;
      this.stats.sent += chunk.length;
      this.stats.batches++;
      this.stats.heartbeatsSent += heartbeats;
      if (heartbeats > 0) this.stats.heartbeatBatches++;
      const ok = stream.write({ fromNode: this.o.self, toNode: p.id, packed });
      if (!ok) {
        // Back-pressure: continue when the stream drains (if it is still the peer's stream then;
        // a stream that breaks instead resets `flushing` in `markDown`).
        p.flushing = true;
        stream.once('drain', () => {
          if (p.stream === stream) this.flush(p);
        });
        return;
      }
    }
  }

  /**
   * The next batch of the peer's queue: up to `BATCH_MESSAGES_MAX` messages other than
   * heartbeats, and every heartbeat (compact records) queued before the chunk ends.
   */
  private takeChunk(p: Peer): GroupMessage[] {
    let full = 0;
    let n = 0;
    for (; n < p.queue.length; n++) {
      if (isCoalescedHeartbeat((p.queue[n] as GroupMessage).message)) continue;
      if (full === BATCH_MESSAGES_MAX) break;
      full++;
    }
    return p.queue.splice(0, n);
  }

  /** The Raft gRPC service handlers (receiving side). */
  handlers(): grpc.UntypedServiceImplementation {
    const Send: grpc.handleClientStreamingCall<RaftBatchOut, { batches: string }> = (call, callback) => {
      // The same wider HTTP/2 window as snapshot streams: a learner caught up from the log gets
      // large appends on this stream, which the 64 KiB default paces at one window per turn.
      widenReceiveWindow(call);
      const sent = call.metadata.get(INCARNATION_METADATA_KEY)[0];
      const incarnation = typeof sent === 'string' && sent !== '' ? sent : undefined;
      let batches = 0;
      let refused = false;
      call.on('data', (b: RaftBatchOut) => {
        batches++;
        this.stats.batchesReceived++;
        if (refused) return;
        if (b.toNode !== '' && b.toNode !== this.o.self) return; // meant for a node that used to live at this address
        const refusal = this.o.refuses?.(b.fromNode, incarnation);
        if (refusal !== undefined) {
          // Nothing it sent is stepped; the sender sees the stream fail and retries after its backoff.
          refused = true;
          this.stats.refusedStreams++;
          callback({ code: grpc.status.FAILED_PRECONDITION, details: refusal, name: 'RaftStreamRefused', message: refusal, metadata: new grpc.Metadata() });
          return;
        }
        if (b.packed.length > 0) {
          let items: GroupMessage[];
          try {
            const d = decodePacked(b.packed);
            items = d.messages;
            this.stats.heartbeatsReceived += d.heartbeats;
          } catch {
            this.stats.malformed++;
            return;
          }
          for (const { group, message } of items) {
            this.stats.received++;
            this.o.onReceive(b.fromNode, group, message);
          }
          return;
        }
        // The unpacked form (one envelope per message), as first built.
        for (const env of b.messages) {
          let m: Message;
          try {
            m = decodeMessage(env.message);
          } catch {
            this.stats.malformed++;
            continue;
          }
          this.stats.received++;
          this.o.onReceive(b.fromNode, env.group, m);
        }
      });
      call.on('end', () => {
        if (!refused) callback(null, { batches: String(batches) });
      });
      call.on('error', () => undefined);
    };
    const snapshots =
      (files: boolean): grpc.handleClientStreamingCall<SnapshotFrameOut, SnapshotAck> =>
      (call, callback) => {
        const receiver = this.snapshotReceiver;
        if (receiver === undefined || this.closed) {
          callback(unavailable('this node takes no snapshots now'));
          return;
        }
        if (files) receiver.handleFiles(call, callback);
        else receiver.handle(call, callback);
      };
    const SnapshotEndpoint: grpc.handleUnaryCall<unknown, SnapshotEndpointReply> = (_call, callback) => {
      // Port 0 (send over gRPC) until the socket listens, and on a node that cannot ingest SST files.
      const ingests = this.snapshotReceiver?.takesFiles() === true;
      callback(null, { port: ingests ? (this.snapshotSocketServer?.port ?? 0) : 0 });
    };
    return { Send, SendSnapshot: snapshots(false), SendSnapshotFiles: snapshots(true), SnapshotEndpoint } as grpc.UntypedServiceImplementation;
  }

  close(): void {
    this.closed = true;
    this.snapshotSender?.close();
    this.snapshotSocketServer?.close();
    for (const c of this.snapshotClients.values()) c.client.close();
    this.snapshotClients.clear();
    for (const p of this.peers.values()) this.disconnect(p);
    this.peers.clear();
  }
}
