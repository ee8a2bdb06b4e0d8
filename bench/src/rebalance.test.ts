/** The rebalancing benchmark's pure parts: metrics parsing, the streaming window, values, targets, options. */
import { describe, expect, it } from 'vitest';
import { encodeHistogram, newHistogram, summarizeFull } from './histogram.ts';
import { REBALANCE_DEFAULTS, type RebalanceReport, streamWindow } from './rebalance.ts';
import { parseRebalanceArgs } from './rebalance-cli.ts';
import { addCounters, parseSnapshotCounters } from './rebalance-cluster.ts';
import { noiseBlock, type PhaseStats, parseValue, recordValue } from './rebalance-load.ts';
import { evaluateTargets, renderRebalanceMarkdown } from './rebalance-report.ts';

const METRICS = `# HELP keyva_snapshot_sent_bytes Row bytes of Raft snapshots streamed to peers since start
# TYPE keyva_snapshot_sent_bytes gauge
keyva_snapshot_sent_bytes 1048576
keyva_snapshot_received_bytes 2097152
keyva_snapshots_sent 3
keyva_snapshots_sent_as_files 2
keyva_snapshots_sent_over_socket 1
keyva_snapshots_received 2
keyva_snapshots_sending 1
keyva_snapshots_send_failed 0
keyva_snapshot_sending_bytes 4096
keyva_snapshot_receiving_seconds 1.5
`;

function phase(name: 'steady' | 'move' | 'after', p99Us: number, errors = 0): PhaseStats {
  const h = newHistogram();
  for (let i = 0; i < 99; i++) h.recordValue(1000);
  h.recordValue(p99Us);
  h.recordValue(p99Us);
  return {
    phase: name,
    seconds: 10,
    ops: h.totalCount,
    opsPerSec: h.totalCount / 10,
    reads: 50,
    updates: 51,
    errors,
    errorSamples: [],
    ...summarizeFull(h),
    histogram: encodeHistogram(h),
  };
}

function report(o: {
  steadyP99: number;
  moveP99: number;
  streamRate: number | null;
  endToEnd: number;
  ceiling: number;
  lost?: string[];
  afterP99?: number;
  afterErrors?: number;
}): Omit<RebalanceReport, 'targets'> {
  const rate = o.streamRate ?? o.endToEnd;
  return {
    benchmark: 'rebalance',
    schema: 1,
    date: '2026-01-01T00:00:00.000Z',
    machine: { nproc: 2, memoryGiB: 24, cpuModel: 'test', node: 'v24', kernel: 'test', loadAvgAtStart: [0, 0, 0] },
    options: REBALANCE_DEFAULTS,
    cluster: { founders: 3, replicationFactor: 3, partitions: 16, engine: 'rocksdb', durability: 'fsync', snapshotBytesPerSecLimit: 64 * 2 ** 20 },
    load: { records: 1000, bytes: 2 ** 20, seconds: 1, recordsPerSec: 1000 },
    steady: phase('steady', o.steadyP99),
    move: phase('move', o.moveP99),
    after: o.afterP99 === undefined ? null : phase('after', o.afterP99, o.afterErrors),
    moveData: {
      addedNode: 'node-4',
      seconds: 10,
      movesDone: 12,
      newNodePartitions: 12,
      partitions: 16,
      snapshotBytes: o.streamRate === null ? 0 : 100 * 2 ** 20,
      snapshotsReceived: o.streamRate === null ? 0 : 12,
      snapshotsAsFiles: o.streamRate === null ? 0 : 12,
      snapshotsOverSocket: o.streamRate === null ? 0 : 12,
      snapshotsFailed: 0,
      streamSeconds: o.streamRate === null ? 0 : 4,
      receivingSeconds: o.streamRate === null ? 0 : 2,
      windowBytesPerSec: o.streamRate === null ? null : o.streamRate / 2,
      logicalBytes: 96 * 2 ** 20,
      streamBytesPerSec: o.streamRate,
      endToEndBytesPerSec: o.endToEnd,
      samples: [],
    },
    ceiling: { loopbackDisk: { bytes: 2 ** 27, seconds: 1, bytesPerSec: o.ceiling }, loopback: { bytes: 2 ** 27, seconds: 0.5, bytesPerSec: o.ceiling * 2 } },
    moveVsCeiling: rate / o.ceiling,
    verify: { writtenChecked: 100, loadedChecked: 50, lost: o.lost ?? [], unknownOutcomes: 0 },
    badReads: 0,
    seconds: [],
  };
}

describe('rebalance benchmark, pure parts', () => {
  it('reads the snapshot counters of a node from its /metrics text', () => {
    const c = parseSnapshotCounters(METRICS);
    expect(c).toEqual({
      sentBytes: 1048576,
      receivedBytes: 2097152,
      sent: 3,
      sentAsFiles: 2,
      sentOverSocket: 1,
      received: 2,
      sending: 1,
      sendFailed: 0,
      receiveFailed: 0,
      receivingSeconds: 1.5,
    });
    expect(addCounters(c, c).receivedBytes).toBe(4194304);
    // A node that exports none (not replicated): zeros, not NaN.
    expect(parseSnapshotCounters('keyva_storage_bytes 5\n').receivedBytes).toBe(0);
  });

  it('times the streaming window from the sample before the first byte to the sample of the last', () => {
    const s = (t: number, receivedBytes: number, sending = 0) => ({ t, receivedBytes, sending, movesDone: 0, movesTotal: 0 });
    expect(streamWindow([s(0, 0), s(0.25, 0), s(0.5, 10), s(0.75, 20), s(1, 30), s(1.25, 30), s(1.5, 30)])).toBeCloseTo(0.75, 9);
    expect(streamWindow([s(0, 0), s(0.25, 0), s(0.5, 0)])).toBe(0);
    expect(streamWindow([s(0, 0), s(0.25, 5), s(0.5, 5), s(0.75, 9)])).toBeCloseTo(0.75, 9);
    // A transfer in flight before its first bytes arrive counts (the sender scans, the receiver stages).
    expect(streamWindow([s(0, 0), s(0.25, 0), s(0.5, 0, 1), s(0.75, 0, 1), s(1, 10, 1), s(1.25, 10)])).toBeCloseTo(0.75, 9);
    // In flight but nothing ever received: nothing streamed.
    expect(streamWindow([s(0, 0), s(0.25, 0, 1), s(0.5, 0, 1)])).toBe(0);
  });

  it('values name their key and write, and fill the size with incompressible bytes', () => {
    const noise = noiseBlock(1, 1 << 16);
    const v = recordValue(1234, 56, 1024, noise);
    expect(v.length).toBe(1024);
    expect(parseValue(v)).toEqual({ index: 1234, seq: 56 });
    expect(recordValue(1234, 57, 1024, noise).equals(v)).toBe(false);
    expect(parseValue(Buffer.from('garbage'))).toBeUndefined();
  });

  it('passes and fails the targets at their bounds: p99 <= 2x steady, rate >= 0.5x the ceiling, nothing lost', () => {
    const ok = evaluateTargets(report({ steadyP99: 10_000, moveP99: 19_000, streamRate: 60e6, endToEnd: 1e6, ceiling: 100e6 }));
    expect(ok.map((t) => t.pass)).toEqual([true, true, true, true]);
    expect(ok[1]?.name).toBe('snapshot stream rate');
    const slow = evaluateTargets(report({ steadyP99: 10_000, moveP99: 25_000, streamRate: 40e6, endToEnd: 1e6, ceiling: 100e6, lost: ['rb-1'] }));
    expect(slow.map((t) => t.pass)).toEqual([false, false, false, true]);
    expect(slow[0]?.measured).toContain('= 2.50x');
    // Nothing streamed (learners caught up from the log): the end-to-end rate is what is compared.
    const log = evaluateTargets(report({ steadyP99: 10_000, moveP99: 10_000, streamRate: null, endToEnd: 60e6, ceiling: 100e6 }));
    expect(log[1]).toMatchObject({ name: 'move rate (end to end; no snapshot was streamed)', pass: true });
  });

  it('renders the checks, both latency rows and the data moved', () => {
    const r = report({ steadyP99: 10_000, moveP99: 25_000, streamRate: 40 * 2 ** 20, endToEnd: 2 ** 20, ceiling: 100 * 2 ** 20 });
    const md = renderRebalanceMarkdown({ ...r, targets: evaluateTargets(r) });
    expect(md).toContain('| client p99 during the move | <= 2x steady state |');
    expect(md).toContain('| **FAIL** |');
    expect(md).toContain('| snapshot stream rate (bytes / receiving time) | 40.0 MiB/s |');
    expect(md).toContain('| streaming window (first to last byte, gaps included) | 4.0 s, 20.0 MiB/s |');
    expect(md).toContain('| move rate / ceiling | 0.40x |');
    expect(md).toContain('| node snapshot send limit (--snapshot-bytes-per-sec, per node) | 64.0 MiB/s |');
    expect(md).not.toContain('after the move');
  });

  it('reports the settled 4-node cluster beside the move, without a target of its own; its errors count', () => {
    const r = report({ steadyP99: 10_000, moveP99: 25_000, streamRate: 40 * 2 ** 20, endToEnd: 2 ** 20, ceiling: 100 * 2 ** 20, afterP99: 20_000 });
    const targets = evaluateTargets(r);
    expect(targets.map((t) => t.name)).toEqual(evaluateTargets({ ...r, after: null }).map((t) => t.name));
    expect(targets[0]?.measured).toContain('= 2.50x'); // still against the steady state before the move
    const md = renderRebalanceMarkdown({ ...r, targets });
    expect(md).toMatch(/\| after the move \(4 nodes settled; no target\) \| 10\.0 \|/);
    expect(md).toContain('The p99 during the move is 1.25x the settled 4-node cluster');
    const failing = evaluateTargets(
      report({ steadyP99: 10_000, moveP99: 10_000, streamRate: 60e6, endToEnd: 1e6, ceiling: 100e6, afterP99: 10_000, afterErrors: 2 }),
    );
    expect(failing[3]).toMatchObject({ name: 'client errors', pass: false });
    expect(failing[3]?.measured).toContain('2 after');
  });

  it('parses its options and refuses bad ones', () => {
    expect(parseRebalanceArgs([]).options).toEqual(REBALANCE_DEFAULTS);
    const a = parseRebalanceArgs(['--data-mib', '1.5', '--partitions', '8', '--read-fraction', '0.9', '--json', 'x.json']);
    expect(a.options).toMatchObject({ dataMiB: 1.5, partitions: 8, readFraction: 0.9 });
    expect(parseRebalanceArgs(['--snapshot-mib-per-sec', '256']).options.snapshotMiBPerSec).toBe(256);
    expect(parseRebalanceArgs(['--after-ms', '0']).options.afterMs).toBe(0);
    expect(a.json).toBe('x.json');
    expect(() => parseRebalanceArgs(['--read-fraction', '2'])).toThrow(/between 0 and 1/);
    expect(() => parseRebalanceArgs(['--partitions', '0'])).toThrow(/--partitions must be an integer >= 1/);
    expect(() => parseRebalanceArgs(['--nodes', '3'])).toThrow(/Unknown option '--nodes'/);
  });
});
