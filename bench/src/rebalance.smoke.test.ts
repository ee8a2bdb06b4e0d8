/**
 * The rebalancing benchmark end to end with tiny sizes: a real 3-node cluster (keyva dev, RocksDB),
 * a few hundred records, a 4th node added under load. Checks the report's shape, that the moves
 * finished (the new node holds replicas, the loop settled) and that no acknowledged write was lost.
 */
import { describe, expect, it } from 'vitest';
import { decodeHistogram } from './histogram.ts';
import { REBALANCE_DEFAULTS, runRebalance } from './rebalance.ts';
import { renderRebalanceMarkdown } from './rebalance-report.ts';

describe('rebalance benchmark against a real local cluster', () => {
  it('adds a 4th node under load, reports p99 steady vs move, bytes and rate vs the ceiling, and loses nothing acknowledged', {
    timeout: 420_000,
  }, async () => {
    const lines: string[] = [];
    const report = await runRebalance(
      {
        ...REBALANCE_DEFAULTS,
        dataMiB: 0.4,
        valueSize: 512,
        partitions: 4,
        concurrency: 4,
        loadConcurrency: 16,
        warmupMs: 300,
        steadyMs: 1500,
        afterMs: 1000,
        moveTimeoutMs: 300_000,
        verifyWrittenMax: 5000,
        verifyLoadedSample: 200,
        ceilingMinMiB: 4,
      },
      (l) => lines.push(l),
    );
    const json = JSON.parse(JSON.stringify(report)) as typeof report;
    expect(json.benchmark).toBe('rebalance');
    expect(json.cluster).toMatchObject({ founders: 3, replicationFactor: 3, partitions: 4, engine: 'rocksdb', snapshotBytesPerSecLimit: 64 * 2 ** 20 });
    expect(json.load.records).toBeGreaterThan(500);
    expect(json.load.bytes).toBeGreaterThan(0.35 * 2 ** 20);
    expect(json.after?.phase).toBe('after');
    for (const p of [json.steady, json.move, json.after as NonNullable<typeof json.after>]) {
      expect(p.ops).toBeGreaterThan(0);
      expect(p.reads + p.updates).toBe(p.ops);
      expect(decodeHistogram(p.histogram).totalCount).toBe(p.ops);
      expect(p.p50Us).toBeGreaterThan(0);
      expect(p.p50Us).toBeLessThanOrEqual(p.p99Us);
    }
    expect(json.steady.phase).toBe('steady');
    expect(json.move.phase).toBe('move');
    // The moves finished: the new node holds voters, the loop is settled (runRebalance waits for it).
    const m = json.moveData;
    expect(m.addedNode).toBe('node-4');
    expect(m.movesDone).toBeGreaterThanOrEqual(1);
    expect(m.newNodePartitions).toBeGreaterThanOrEqual(1);
    expect(m.newNodePartitions).toBeLessThanOrEqual(4);
    expect(m.logicalBytes).toBeGreaterThan(0);
    expect(m.logicalBytes).toBeLessThanOrEqual(json.load.bytes);
    expect(m.endToEndBytesPerSec).toBeCloseTo(m.logicalBytes / m.seconds, 3);
    expect(m.samples.length).toBeGreaterThan(1);
    // Tiny logs are never compacted: the learners catch up from the log, no snapshot is streamed.
    if (m.snapshotBytes === 0) expect(m.streamBytesPerSec).toBeNull();
    else expect(m.streamBytesPerSec).toBeGreaterThan(0);
    expect(json.ceiling.loopbackDisk.bytes).toBeGreaterThanOrEqual(4 * 2 ** 20);
    expect(json.ceiling.loopbackDisk.bytesPerSec).toBeGreaterThan(0);
    expect(json.ceiling.loopback.bytesPerSec).toBeGreaterThan(0);
    expect(json.moveVsCeiling).toBeCloseTo((m.streamBytesPerSec ?? m.endToEndBytesPerSec) / json.ceiling.loopbackDisk.bytesPerSec, 6);
    // No acknowledged write lost: every key the load wrote, and a sample of the others, read back.
    expect(json.verify.writtenChecked).toBeGreaterThan(0);
    expect(json.verify.loadedChecked).toBeGreaterThan(0);
    expect(json.verify.lost).toEqual([]);
    expect(json.badReads).toBe(0);
    expect(json.targets.map((t) => t.name)).toEqual([
      'client p99 during the move',
      m.streamBytesPerSec === null ? 'move rate (end to end; no snapshot was streamed)' : 'snapshot stream rate',
      'acknowledged writes read back',
      'client errors',
    ]);
    expect(json.targets[2]?.pass).toBe(true);
    expect(json.seconds.some((s) => s.phase === 'move')).toBe(true);
    const md = renderRebalanceMarkdown(json);
    expect(md).toContain('| check | target | measured | result |');
    expect(md).toContain('| during the move |');
    expect(md).toMatch(/\| move rate \/ ceiling \| \d+\.\d\dx \|/);
    expect(lines.some((l) => l.includes('node-4 added'))).toBe(true);
  });
});
