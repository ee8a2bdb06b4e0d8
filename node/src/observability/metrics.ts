/** Prometheus metrics of one node (one registry per node, so several nodes can share a process in tests). */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineStats, StorageEngine } from '../engine/types.ts';

/** Counters of the Multi-Raft runtime since it started (`MultiRaft.stats`). */
export interface RaftRuntimeTotals {
  readonly turns: number;
  readonly syncedWrites: number;
  readonly readiesPersisted: number;
  readonly messagesSent: number;
  readonly messagesReceived: number;
  readonly proposals: number;
  readonly refusals: number;
  readonly proposalsHeld: number;
  readonly compactions: number;
  readonly snapshotsSent: number;
}

/** Streamed Raft snapshots of the node since it started (`RaftTransport.snapshotTotals`). */
export interface SnapshotStreamTotals {
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly sent: number;
  /** Of `sent`, the transfers sent as SST files (ADR 0013). */
  readonly sentAsFiles: number;
  /** Transfers begun over a peer's snapshot socket (ADR 0014). */
  readonly sentOverSocket: number;
  readonly sendFailed: number;
  /** Transfers that waited before starting because the previous one to the same replica failed. */
  readonly sendDeferred: number;
  readonly received: number;
  readonly receiveFailed: number;
  /** Seconds during which at least one incoming transfer was in progress (the time `receivedBytes` took). */
  readonly receivingSeconds: number;
  /** Outgoing transfers in progress, and the bytes they sent so far. */
  readonly sending: number;
  readonly sendingBytes: number;
}

/** A plain counter the request path bumps; read into its Prometheus series at scrape time. */
class Tally {
  n = 0;
  inc(): void {
    this.n++;
  }
  dec(): void {
    this.n--;
  }
}

/** Gauges of the storage engine's stats, read at scrape time: [name, help, field]. */
const ENGINE_GAUGES: readonly (readonly [string, string, keyof EngineStats])[] = [
  ['keyva_storage_bytes', 'Estimated bytes held by the storage engine', 'sizeBytes'],
  ['keyva_storage_keys', 'Estimated number of stored key versions', 'keysEstimate'],
  ['keyva_block_cache_hit_ratio', 'RocksDB block cache hit ratio (NaN when unknown)', 'blockCacheHitRate'],
  ['keyva_block_cache_hits', 'RocksDB block cache hits since start', 'blockCacheHits'],
  ['keyva_block_cache_misses', 'RocksDB block cache misses since start', 'blockCacheMisses'],
  ['keyva_read_cache_hits', 'Point reads answered by the latest-row cache since start (NaN when it is off)', 'readCacheHits'],
  ['keyva_read_cache_misses', 'Point reads the latest-row cache sent to storage since start (NaN when it is off)', 'readCacheMisses'],
  ['keyva_read_cache_bytes', 'Bytes held by the latest-row cache (NaN when it is off)', 'readCacheBytes'],
  ['keyva_rocksdb_compaction_pending_bytes', 'Bytes RocksDB compactions still have to rewrite, estimated (NaN on other engines)', 'compactionPendingBytes'],
  ['keyva_rocksdb_compactions_running', 'RocksDB compactions running now (NaN on other engines)', 'compactionsRunning'],
  ['keyva_rocksdb_flushes_running', 'RocksDB memtable flushes running now (NaN on other engines)', 'flushesRunning'],
  ['keyva_rocksdb_level0_files', 'RocksDB L0 files; writes slow down at 20 and stop at 36 (NaN on other engines)', 'level0Files'],
  [
    'keyva_rocksdb_write_delayed_rate',
    'Bytes per second RocksDB lets writes through while it delays them; 0 when not delaying (NaN on other engines)',
    'writeDelayedRate',
  ],
  [
    'keyva_rocksdb_write_stopped',
    '1 while RocksDB stops writes (L0 files, memtables or pending compaction over their limits; NaN on other engines)',
    'writeStopped',
  ],
  [
    'keyva_rocksdb_range_dropped_file_bytes',
    'Bytes of SST files range deletes removed whole since start, without a compaction (ADR 0017; NaN on other engines)',
    'rangeDroppedFileBytes',
  ],
];

export class NodeMetrics {
  readonly registry = new Registry();
  /**
   * Per-request counts are plain numbers, moved into `requests` / `inflight` when scraped: a
   * prom-client `inc` on a labelled child hashes its labels every time (~1 µs per request each).
   */
  private readonly requestTallies = new Map<string, { readonly labels: { method: string; code: string; transport: string }; readonly tally: Tally }>();
  private readonly inflightTallies = new Map<string, Tally>();
  readonly requests: Counter<'method' | 'code' | 'transport'>;
  readonly latency: Histogram<'method' | 'transport'>;
  readonly inflight: Gauge<'transport'>;
  readonly partitionOps: Counter<'partition' | 'kind'>;

  constructor(engine: StorageEngine, opts: { defaultMetrics: boolean }) {
    const registers = [this.registry];
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'keyva_process_' });
    const requestTallies = this.requestTallies;
    const inflightTallies = this.inflightTallies;
    this.requests = new Counter({
      name: 'keyva_requests_total',
      help: 'Requests by method, result code and transport',
      labelNames: ['method', 'code', 'transport'],
      registers,
      collect() {
        for (const { labels, tally } of requestTallies.values()) {
          if (tally.n === 0) continue;
          this.inc(labels, tally.n);
          tally.n = 0;
        }
      },
    });
    this.latency = new Histogram({
      name: 'keyva_request_duration_seconds',
      help: 'Request latency by method and transport',
      labelNames: ['method', 'transport'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.inflight = new Gauge({
      name: 'keyva_inflight_requests',
      help: 'Requests being served',
      labelNames: ['transport'],
      registers,
      collect() {
        for (const [transport, tally] of inflightTallies) this.set({ transport }, tally.n);
      },
    });
    this.partitionOps = new Counter({
      name: 'keyva_partition_operations_total',
      help: 'Key operations routed to each partition',
      labelNames: ['partition', 'kind'],
      registers,
    });
    // One engine.stats() (a dozen RocksDB property reads) per scrape, not one per gauge: a scrape
    // collects every gauge in the same turn, and the next turn reads afresh.
    let stats: EngineStats | undefined;
    const readStats = (): EngineStats => {
      if (stats === undefined) {
        stats = engine.stats();
        setImmediate(() => {
          stats = undefined;
        });
      }
      return stats;
    };
    this.scrapedGauges(readStats, ENGINE_GAUGES);
  }

  /** Gauges read at scrape time, one per field of what `read` returns: [name, help, field]. */
  private scrapedGauges<T>(read: () => T, defs: readonly (readonly [string, string, keyof T])[]): void {
    const registers = [this.registry];
    for (const [name, help, k] of defs)
      new Gauge({
        name,
        help,
        registers,
        collect() {
          let v: number;
          try {
            v = Number(read()[k]); // an absent field reads NaN
          } catch {
            v = Number.NaN;
          }
          this.set(v);
        },
      });
  }

  /** Exports the streamed-snapshot totals of a replicated node (ADR 0008 §9), read at scrape time. */
  watchSnapshotStreams(read: () => SnapshotStreamTotals): void {
    this.scrapedGauges(read, [
      ['keyva_snapshot_sent_bytes', 'Bytes (rows or SST files) of Raft snapshots streamed to peers since start', 'sentBytes'],
      ['keyva_snapshot_received_bytes', 'Bytes (rows or SST files) of Raft snapshots received from peers since start', 'receivedBytes'],
      ['keyva_snapshots_sent', 'Raft snapshot transfers to peers completed since start', 'sent'],
      ['keyva_snapshots_sent_as_files', 'Of keyva_snapshots_sent, the transfers sent as SST files rather than rows (ADR 0013)', 'sentAsFiles'],
      ['keyva_snapshots_sent_over_socket', "Transfers of SST files begun over the peer's snapshot socket rather than gRPC (ADR 0014)", 'sentOverSocket'],
      ['keyva_snapshots_send_failed', 'Raft snapshot transfers to peers failed since start (retried by Raft)', 'sendFailed'],
      [
        'keyva_snapshots_send_deferred',
        'Raft snapshot transfers that waited before starting because the previous one to the same replica had failed (retries back off from 250 ms to 8 s)',
        'sendDeferred',
      ],
      ['keyva_snapshots_received', 'Raft snapshot transfers from peers staged since start', 'received'],
      ['keyva_snapshots_receive_failed', 'Raft snapshot transfers from peers refused or cut off since start', 'receiveFailed'],
      [
        'keyva_snapshot_receiving_seconds',
        'Seconds since start during which at least one Raft snapshot transfer from a peer was being received (header to staged and synced)',
        'receivingSeconds',
      ],
      ['keyva_snapshots_sending', 'Raft snapshot transfers to peers in progress', 'sending'],
      ['keyva_snapshot_sending_bytes', 'Bytes sent so far by the snapshot transfers in progress', 'sendingBytes'],
    ]);
  }

  /**
   * Exports the Multi-Raft runtime's counters of a replicated node (`MultiRaft.stats`), read at
   * scrape time: how much Raft work each write costs (messages, Readys, fsyncs per proposal).
   */
  watchRaft(read: () => RaftRuntimeTotals): void {
    this.scrapedGauges(read, [
      ['keyva_raft_turns', 'Ready turns of the Multi-Raft loop since start (each persists every group with work in one engine write)', 'turns'],
      ['keyva_raft_synced_writes', 'Synced (fsync) engine writes of the Multi-Raft loop since start', 'syncedWrites'],
      ['keyva_raft_readies', 'Group Readys persisted since start', 'readiesPersisted'],
      ['keyva_raft_messages_sent', 'Raft messages sent to peers since start (coalesced heartbeats count one per group)', 'messagesSent'],
      ['keyva_raft_messages_received', 'Raft messages stepped into local groups since start', 'messagesReceived'],
      ['keyva_raft_proposals', 'Write proposals submitted to local groups since start', 'proposals'],
      ['keyva_raft_proposals_refused', 'Proposals refused up front (not leader, unknown group, queue full) since start', 'refusals'],
      [
        'keyva_raft_proposals_held',
        'Proposals held since start while leadership changed hands (a leader transfer, a new leader warming up), then proposed or redirected',
        'proposalsHeld',
      ],
      ['keyva_raft_compactions', 'Raft log compactions into a snapshot since start', 'compactions'],
      ['keyva_raft_snapshots_sent', 'Raft snapshots handed to the transport since start', 'snapshotsSent'],
    ]);
  }

  /** Exports the Raft transport's refusals and frames sent (`RaftTransport.stats`), read at scrape time. */
  watchRaftTransport(read: () => { readonly refusedStreams: number; readonly batches: number }): void {
    this.scrapedGauges(read, [
      [
        'keyva_raft_batches_sent',
        "Frames of Raft messages written to peers' Raft streams since start (each carries every message queued for that peer in one event-loop turn)",
        'batches',
      ],
      [
        'keyva_raft_streams_refused',
        'Raft streams refused since start because their sender came back under its node id with another data directory (a wiped disk)',
        'refusedStreams',
      ],
    ]);
  }

  /** Requests of `transport` being served (read by `keyva_inflight_requests` at scrape time). */
  inflightOf(transport: 'grpc' | 'stream' | 'http'): { inc(): void; dec(): void } {
    let t = this.inflightTallies.get(transport);
    if (!t) {
      t = new Tally();
      this.inflightTallies.set(transport, t);
    }
    return t;
  }

  private readonly children = new Map<string, { readonly count: Tally; readonly latency: { observe(v: number): void } }>();

  /** Records one finished request (labelled children are cached: no label hashing per request). */
  observe(method: string, transport: 'grpc' | 'stream' | 'http', code: string, seconds: number): void {
    const key = `${method}\u0000${transport}\u0000${code}`;
    let c = this.children.get(key);
    if (!c) {
      const count = new Tally();
      this.requestTallies.set(key, { labels: { method, code, transport }, tally: count });
      c = { count, latency: this.latency.labels({ method, transport }) };
      this.children.set(key, c);
    }
    c.count.inc();
    c.latency.observe(seconds);
  }
}
