/**
 * The rebalancing benchmark (`npm run bench -- rebalance`, issue #4 item 9): a KeyVa cluster of 3
 * nodes (RF 3, `keyva dev --nodes 3`: real node processes and the placement control loop) is
 * loaded with `dataMiB` of records; a steady client load (streamed SDK, fixed concurrency, reads
 * and updates) runs, its latency measured over a steady-state window; then a 4th node is added
 * and the control loop moves its ring share onto it (learner first, snapshot streamed) while the
 * load continues, its latency measured from the add until the loop is settled. Then, in the same
 * run, the loopback/disk ceiling with as many bytes as were moved, and a read-back of what the
 * load was acknowledged. Targets (printed pass/fail): p99 during the move at most 2x steady
 * state; the move streams at least 0.5x the ceiling.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyVa } from '@keyva/client';
import { type Ceiling, measureCeiling } from './loopback-ceiling.ts';
import { progressBar } from './progress.ts';
import { addCounters, DevClusterProcess, type SnapshotCounters, settled, ZERO_COUNTERS } from './rebalance-cluster.ts';
import { loadRecords, noiseBlock, type PhaseStats, type SecondSample, SteadyLoad } from './rebalance-load.ts';
import { evaluateTargets, type TargetCheck } from './rebalance-report.ts';
import { machineInfo, type YcsbReport } from './ycsb.ts';

export interface RebalanceOptions {
  /** Logical bytes loaded (keys + values), MiB. */
  readonly dataMiB: number;
  readonly valueSize: number;
  /** Partitions of the cluster (one Raft group each). */
  readonly partitions: number;
  /** Operations in flight of the steady load. */
  readonly concurrency: number;
  readonly readFraction: number;
  /** Records per load write (1: one Raft entry each, as live traffic writes; logs then grow past compaction). */
  readonly loadBatch: number;
  readonly loadConcurrency: number;
  readonly warmupMs: number;
  readonly steadyMs: number;
  /**
   * The same load measured again on the 4-node cluster once the move settled (0 = not run). Not
   * a target: it tells the move's own cost from the capacity of four node processes sharing the
   * machine's cores where three did.
   */
  readonly afterMs: number;
  readonly moveTimeoutMs: number;
  /** Read-back: keys the load wrote (at most) and other loaded records. */
  readonly verifyWrittenMax: number;
  readonly verifyLoadedSample: number;
  readonly seed: number;
  readonly memory: boolean;
  /** Status and metrics sampling period (the same in every phase, so it weighs on each alike). */
  readonly sampleMs: number;
  /** The ceiling streams the bytes moved, at least this many MiB (a few MiB time mostly start-up noise). */
  readonly ceilingMinMiB: number;
  /** Each node's snapshot send limit, MiB/s (the node's --snapshot-bytes-per-sec; 64 is its default). */
  readonly snapshotMiBPerSec: number;
  /** How the nodes send snapshots (their --snapshot-format): 'auto' (SST files when they can) or 'rows'. */
  readonly snapshotFormat: 'auto' | 'rows';
  /** How SST files travel (their --snapshot-transport): 'socket' (ADR 0014) or 'grpc'. */
  readonly snapshotTransport: 'socket' | 'grpc';
}

export const REBALANCE_DEFAULTS: RebalanceOptions = {
  dataMiB: 256,
  valueSize: 1024,
  partitions: 16,
  concurrency: 16,
  readFraction: 0.5,
  loadBatch: 1,
  loadConcurrency: 64,
  warmupMs: 3000,
  steadyMs: 15_000,
  afterMs: 15_000,
  moveTimeoutMs: 600_000,
  verifyWrittenMax: 20_000,
  verifyLoadedSample: 2000,
  seed: 1,
  memory: false,
  sampleMs: 250,
  ceilingMinMiB: 64,
  snapshotMiBPerSec: 64,
  snapshotFormat: 'auto',
  snapshotTransport: 'socket',
};

/** A sample of the move: seconds since the node was added, snapshot bytes received by then (all nodes), transfers in flight. */
export interface MoveSample {
  readonly t: number;
  readonly receivedBytes: number;
  readonly sending: number;
  readonly movesDone: number;
  readonly movesTotal: number;
}

export interface MoveReport {
  readonly addedNode: string;
  /** From the add request until the loop was settled with the new node holding replicas. */
  readonly seconds: number;
  readonly movesDone: number;
  /** Replicas (voters) the new node holds at the end, of `partitions`. */
  readonly newNodePartitions: number;
  readonly partitions: number;
  /** Streamed snapshot bytes received by all nodes during the move (keyva_snapshot_received_bytes). */
  readonly snapshotBytes: number;
  readonly snapshotsReceived: number;
  /** Of the snapshots sent, those sent as SST files (ADR 0013); the rest went as rows. */
  readonly snapshotsAsFiles: number;
  /** Transfers begun over the receivers' snapshot sockets (ADR 0014). */
  readonly snapshotsOverSocket: number;
  readonly snapshotsFailed: number;
  /** From the sample before the first transfer in flight to the sample of the last byte (0: no snapshot streamed); gaps between transfers included. */
  readonly streamSeconds: number;
  /**
   * Seconds during which a node was receiving a transfer (header to staged and synced), summed
   * over the nodes (keyva_snapshot_receiving_seconds): the time the snapshot bytes took.
   */
  readonly receivingSeconds: number;
  /** Snapshot bytes over `streamSeconds` (the sampled window, idle gaps between transfers included). */
  readonly windowBytesPerSec: number | null;
  /** The stored (key + value) bytes of the partitions the new node received, from the load. */
  readonly logicalBytes: number;
  /**
   * What a move streams at: snapshot bytes over `receivingSeconds` (over `streamSeconds` if the
   * nodes report no receiving time); null: nothing was streamed.
   */
  readonly streamBytesPerSec: number | null;
  /** Logical bytes over the whole move (control loop, learner catch-up, promotion, all included). */
  readonly endToEndBytesPerSec: number;
  readonly samples: readonly MoveSample[];
}

export interface RebalanceReport {
  readonly benchmark: 'rebalance';
  readonly schema: 1;
  readonly date: string;
  readonly machine: YcsbReport['machine'];
  readonly options: RebalanceOptions;
  readonly cluster: {
    readonly founders: number;
    readonly replicationFactor: number;
    readonly partitions: number;
    readonly engine: 'rocksdb' | 'memory';
    readonly durability: string;
    /** Each node's streamed-snapshot send limit (--snapshot-bytes-per-sec). */
    readonly snapshotBytesPerSecLimit: number;
  };
  readonly load: { readonly records: number; readonly bytes: number; readonly seconds: number; readonly recordsPerSec: number };
  readonly steady: PhaseStats;
  readonly move: PhaseStats;
  /** The load on the settled 4-node cluster after the move (`afterMs`); null when not run. */
  readonly after: PhaseStats | null;
  readonly moveData: MoveReport;
  readonly ceiling: Ceiling;
  /** Move rate over the ceiling (stream rate if a snapshot was streamed, else end to end). */
  readonly moveVsCeiling: number;
  readonly verify: { readonly writtenChecked: number; readonly loadedChecked: number; readonly lost: readonly string[]; readonly unknownOutcomes: number };
  readonly badReads: number;
  readonly seconds: readonly SecondSample[];
  readonly targets: readonly TargetCheck[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
/** One phase's throughput and latency, for the progress log. */
const phaseSummary = (p: PhaseStats) => `${Math.round(p.opsPerSec)} ops/s, p50 ${(p.p50Us / 1000).toFixed(2)} ms, p99 ${(p.p99Us / 1000).toFixed(2)} ms`;

function sum(m: Map<string, SnapshotCounters>): SnapshotCounters {
  let s = ZERO_COUNTERS;
  for (const c of m.values()) s = addCounters(s, c);
  return s;
}

/**
 * Snapshot streaming time from samples: from the sample before the first one showing a transfer
 * (one in flight, or bytes received) to the sample of the last byte received; 0 if none arrived.
 */
export function streamWindow(samples: readonly MoveSample[]): number {
  const grew = (i: number) => i > 0 && (samples[i]?.receivedBytes ?? 0) > (samples[i - 1]?.receivedBytes ?? 0);
  const first = samples.findIndex((s, i) => i > 0 && (s.sending > 0 || grew(i)));
  let last = -1;
  for (let i = 1; i < samples.length; i++) if (grew(i)) last = i;
  if (first < 0 || last < 0) return 0;
  return (samples[last]?.t ?? 0) - (samples[first - 1]?.t ?? 0);
}

export async function runRebalance(o: RebalanceOptions, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<RebalanceReport> {
  const date = new Date().toISOString();
  const machine = machineInfo();
  const dir = mkdtempSync(join(tmpdir(), 'keyva-rebalance-'));
  const keyBytes = 12;
  const records = Math.max(16, Math.round((o.dataMiB * 2 ** 20) / (keyBytes + o.valueSize)));
  log(
    `rebalance: 3 nodes RF 3, ${o.partitions} partitions, ${records.toLocaleString('en-US')} records of ${o.valueSize} B (${o.dataMiB} MiB); ` +
      `steady load ${o.concurrency} in flight (${Math.round(o.readFraction * 100)}% reads), then a 4th node joins`,
  );
  let cluster: DevClusterProcess | undefined;
  let kv: KeyVa | undefined;
  /** The steady load while it runs (stopped in `finally` if the run fails). */
  let running: SteadyLoad | undefined;
  let finished = false;
  try {
    cluster = await DevClusterProcess.start({
      founders: 3,
      partitions: o.partitions,
      dataDir: join(dir, 'cluster'),
      memory: o.memory,
      env: {
        KEYVA_SNAPSHOT_BYTES_PER_SEC: String(Math.round(o.snapshotMiBPerSec * 2 ** 20)),
        KEYVA_SNAPSHOT_FORMAT: o.snapshotFormat,
        KEYVA_SNAPSHOT_TRANSPORT: o.snapshotTransport,
      },
    });
    const c = cluster;
    for (const end = Date.now() + 120_000; ; ) {
      const s = await c.status().catch(() => undefined);
      if (s && settled(s) && s.partitions === o.partitions && s.nodes.filter((n) => n.partitions === o.partitions).length === 3) break;
      if (Date.now() > end) throw new Error('the 3-node cluster did not settle within 120 s');
      await sleep(300);
    }
    kv = await KeyVa.connect({ endpoints: c.founders.map((n) => n.grpc), deadlineMs: 10_000, retry: { attemptsMax: 10 } });
    const noise = noiseBlock(o.seed);

    // Load.
    const bar = progressBar('  load');
    const t0 = performance.now();
    const bytesByPartition = await loadRecords(kv, { records, valueSize: o.valueSize, batch: o.loadBatch, concurrency: o.loadConcurrency, noise }, (done) =>
      bar.update(done / records, `${done.toLocaleString('en-US')} / ${records.toLocaleString('en-US')} records`),
    ).finally(() => bar.done());
    const loadSec = (performance.now() - t0) / 1000;
    const loadBytes = [...bytesByPartition.values()].reduce((a, b) => a + b, 0);
    log(`  loaded ${records.toLocaleString('en-US')} records (${mib(loadBytes)}) in ${loadSec.toFixed(1)} s`);

    // Steady state. Status and metrics are sampled at the same rate in every phase.
    const load = new SteadyLoad(kv, { records, valueSize: o.valueSize, concurrency: o.concurrency, readFraction: o.readFraction, seed: o.seed }, noise);
    // (During the move, the move loop samples instead, at the same period.)
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sleep(o.sampleMs);
        await Promise.all([c.snapshotCounters(), c.status().catch(() => undefined)]);
      }
    })();
    load.start();
    running = load;
    await sleep(o.warmupMs);
    load.enter('steady');
    await sleep(o.steadyMs);
    const steady = load.stats('steady');
    log(`  steady: ${phaseSummary(steady)}`);

    // The move.
    sampling = false;
    await sampler;
    const before = sum(await c.snapshotCounters());
    load.enter('move');
    const tAdd = performance.now();
    const added = await c.addNode();
    log(`  ${added.id} added; the control loop moves its share onto it`);
    const samples: MoveSample[] = [{ t: 0, receivedBytes: 0, sending: 0, movesDone: 0, movesTotal: 0 }];
    const moveBar = progressBar('  move');
    let finalStatus: Awaited<ReturnType<DevClusterProcess['status']>> | undefined;
    let lastStatus: Awaited<ReturnType<DevClusterProcess['status']>> | undefined;
    let after = before;
    try {
      for (;;) {
        await sleep(o.sampleMs);
        const [counters, s] = await Promise.all([c.snapshotCounters(), c.status().catch(() => undefined)]);
        const now = sum(counters);
        after = now;
        lastStatus = s ?? lastStatus;
        const t = (performance.now() - tAdd) / 1000;
        samples.push({
          t,
          receivedBytes: now.receivedBytes - before.receivedBytes,
          sending: now.sending,
          movesDone: s?.loop.movesDone ?? 0,
          movesTotal: s?.loop.movesTotal ?? 0,
        });
        const held = s?.nodes.find((n) => n.id === added.id)?.partitions ?? 0;
        moveBar.update(
          s && s.loop.movesTotal > 0 ? s.loop.movesDone / s.loop.movesTotal : 0,
          `${s?.loop.movesDone ?? 0}/${s?.loop.movesTotal ?? '?'} moves, ${mib(now.receivedBytes - before.receivedBytes)} streamed, ${t.toFixed(1)} s`,
        );
        if (s && held > 0 && settled(s) && s.nodes.reduce((n, x) => n + x.partitions, 0) === o.partitions * 3) {
          finalStatus = s;
          break;
        }
        if (performance.now() - tAdd > o.moveTimeoutMs)
          throw new Error(
            `the move did not finish within ${o.moveTimeoutMs} ms; last status${s === undefined ? ' read (the latest read failed)' : ''}: ${JSON.stringify(lastStatus)}`,
          );
      }
    } finally {
      moveBar.done();
    }
    const moveSec = (performance.now() - tAdd) / 1000;
    const move = load.stats('move');
    let afterMove: PhaseStats | null = null;
    if (o.afterMs > 0) {
      load.enter('after');
      await sleep(o.afterMs);
      afterMove = load.stats('after');
    }
    await load.stop();
    running = undefined;
    const map = await kv.partitionMap({ refresh: true });
    const onNew = map.partitions.filter((p) => (p.replicas as readonly string[]).includes(added.id));
    const logicalBytes = onNew.reduce((n, p) => n + (bytesByPartition.get(p.id) ?? 0), 0);
    const snapshotBytes = after.receivedBytes - before.receivedBytes;
    const streamSeconds = streamWindow(samples);
    const receivingSeconds = after.receivingSeconds - before.receivingSeconds;
    const windowBytesPerSec = snapshotBytes > 0 && streamSeconds > 0 ? snapshotBytes / streamSeconds : null;
    const moveData: MoveReport = {
      addedNode: added.id,
      seconds: moveSec,
      movesDone: finalStatus?.loop.movesDone ?? 0,
      newNodePartitions: finalStatus?.nodes.find((n) => n.id === added.id)?.partitions ?? onNew.length,
      partitions: o.partitions,
      snapshotBytes,
      snapshotsReceived: after.received - before.received,
      snapshotsAsFiles: after.sentAsFiles - before.sentAsFiles,
      snapshotsOverSocket: after.sentOverSocket - before.sentOverSocket,
      snapshotsFailed: after.sendFailed - before.sendFailed + (after.receiveFailed - before.receiveFailed),
      streamSeconds,
      receivingSeconds,
      windowBytesPerSec,
      logicalBytes,
      streamBytesPerSec: snapshotBytes > 0 && receivingSeconds > 0 ? snapshotBytes / receivingSeconds : windowBytesPerSec,
      endToEndBytesPerSec: logicalBytes / moveSec,
      samples,
    };
    log(
      `  move: ${moveData.movesDone} moves in ${moveSec.toFixed(1)} s; ${mib(snapshotBytes)} streamed as ${moveData.snapshotsReceived} snapshots` +
        `${moveData.streamBytesPerSec === null ? '' : ` at ${mib(moveData.streamBytesPerSec)}/s (${receivingSeconds.toFixed(1)} s receiving; ${mib(windowBytesPerSec ?? 0)}/s over the ${streamSeconds.toFixed(1)} s window)`}; ${mib(logicalBytes)} of data now on ${added.id} (${mib(moveData.endToEndBytesPerSec)}/s end to end)`,
    );
    log(`  during the move: ${phaseSummary(move)}`);
    if (afterMove !== null) log(`  after the move (4 nodes): ${phaseSummary(afterMove)}`);

    // Nothing acknowledged is lost.
    const verify = await load.verify(o.verifyLoadedSample, o.verifyWrittenMax, o.seed + 7);
    log(
      `  read-back: ${verify.writtenChecked} written + ${verify.loadedChecked} loaded keys checked, ${verify.lost.length} not as acknowledged` +
        `${verify.lost.length > 0 ? `: ${verify.lost.slice(0, 3).join('; ')}` : ''}`,
    );
    await kv.close();
    kv = undefined;
    await c.stop();
    cluster = undefined;

    // The ceiling, same bytes, same file system, nothing else of ours running.
    const ceilingBytes = Math.max(snapshotBytes, logicalBytes, o.ceilingMinMiB * 2 ** 20);
    const ceiling = await measureCeiling(ceilingBytes, dir);
    log(
      `  ceiling (${mib(ceiling.loopbackDisk.bytes)}): loopback TCP + file + fsync ${mib(ceiling.loopbackDisk.bytesPerSec)}/s; loopback alone ${mib(ceiling.loopback.bytesPerSec)}/s`,
    );
    const rate = moveData.streamBytesPerSec ?? moveData.endToEndBytesPerSec;
    const report: RebalanceReport = {
      benchmark: 'rebalance',
      schema: 1,
      date,
      machine,
      options: o,
      cluster: {
        founders: 3,
        replicationFactor: 3,
        partitions: o.partitions,
        engine: o.memory ? 'memory' : 'rocksdb',
        durability: o.memory
          ? 'none (memory engine)'
          : 'Raft log fsync (RocksDB WAL, group commit) on a majority of the 3 replicas before a write is acknowledged; a streamed snapshot is staged and synced (one fsync at its end) before Raft takes it',
        snapshotBytesPerSecLimit: Math.round(o.snapshotMiBPerSec * 2 ** 20),
      },
      load: { records, bytes: loadBytes, seconds: loadSec, recordsPerSec: records / loadSec },
      steady,
      move,
      after: afterMove,
      moveData,
      ceiling,
      moveVsCeiling: rate / ceiling.loopbackDisk.bytesPerSec,
      verify,
      badReads: load.badReads,
      seconds: load.seconds,
      targets: [],
    };
    finished = true;
    return { ...report, targets: evaluateTargets(report) };
  } finally {
    // On a failure (e.g. the move timed out) the steady load still runs: stop it first, or its
    // loops keep retrying against the stopped cluster and the run never ends.
    await running?.stop().catch(() => undefined);
    await kv?.close().catch(() => undefined);
    await cluster?.stop();
    // A failed run keeps its nodes' data and logs to be looked at.
    if (finished) rmSync(dir, { recursive: true, force: true });
    else log(`  the run failed: its cluster's data and node logs are kept in ${join(dir, 'cluster')} (node-N/node.log); remove it when done`);
  }
}
