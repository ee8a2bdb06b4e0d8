/**
 * Streamed snapshots (ADR 0008 §9) end to end: in-process nodes, each on its own RocksDB in a
 * temp dir, over real gRPC on 127.0.0.1. The leader's log is compacted early, so a new or
 * returning replica can only catch up from a snapshot, whose rows travel over `SendSnapshot` in
 * chunks while the Raft stream keeps carrying heartbeats.
 *
 * 1. A learner added to a partition of > 20 MiB catches up from one streamed snapshot, and holds
 *    every row (key, value, version, expiry) the leader holds; the staging area is empty after.
 * 2. A returning replica whose transfer is cut off mid-way (its node stopped while rows arrive)
 *    keeps exactly its old data (nothing of the partial transfer is visible, in the data or to
 *    reads); restarted, it gets the snapshot again (the leader retries) and ends equal to the
 *    leader; follower reads on it, made throughout with an old freshness confirmation, return
 *    the old value or the new one, never a partially installed range.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyHash, type NodeId, PartitionMap, uniformPartitions } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import { afterAll, describe, expect, it } from 'vitest';
import { HybridClock } from '../clock/hybrid-clock.ts';
import { RocksDbEngine } from '../engine/rocksdb-engine.ts';
import { MAX_TS, type ScanItem, type StorageEngine } from '../engine/types.ts';
import { KvStore, type Replicator } from '../kv/kv-store.ts';
import { PartitionTable } from '../partition/partition-table.ts';
import { ConfChangeType, replicaId } from '../raft/types.ts';
import type { GroupStatus } from './group-driver.ts';
import type { GroupSpec } from './multi-raft.ts';
import { scanPartition } from './partition-snapshot.ts';
import type { GroupId } from './raft-keys.ts';
import type { DataMutation } from './replicated-command.ts';
import type { StagedSnapshotId } from './snapshot-staging.ts';
import { FileSnapshotStaging } from './snapshot-staging-files.ts';
import { type ClusterNode, ReplicationCluster, type TransportOverrides, until } from './testing/replication-cluster.ts';

const VOTERS = ['n1', 'n2', 'n3'] as NodeId[];
const RANGE = { start: 0n, end: 1n << 64n };
const GROUP = 1;
const VOTER_SPEC: GroupSpec = { group: GROUP, range: RANGE, bootstrap: VOTERS };
const EMPTY_SPEC: GroupSpec = { group: GROUP, range: RANGE };
const MiB = 1 << 20;

const dirs: string[] = [];
const engines: StorageEngine[] = [];
afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const stagings = new Map<StorageEngine, FileSnapshotStaging>();

/** A RocksDB engine in a temp dir; snapshots the node receives are staged in files next to it, as on a node. */
async function rocks(name: string): Promise<StorageEngine> {
  const dir = mkdtempSync(join(tmpdir(), `keyva-snap-${name}-`));
  dirs.push(dir);
  const e = new RocksDbEngine({ path: join(dir, 'rocksdb'), compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 8 << 20 });
  await e.open();
  engines.push(e);
  stagings.set(e, new FileSnapshotStaging(join(dir, 'snapshots')));
  return e;
}

function stagingOf(e: StorageEngine): FileSnapshotStaging {
  const s = stagings.get(e);
  if (s === undefined) throw new Error('not an engine of rocks()');
  return s;
}

const keyOf = (i: number) => Buffer.from(`key-${i}`);
const put = (i: number, value: Buffer): DataMutation => ({ type: 'put', hash: keyHash(keyOf(i)), key: keyOf(i), value, expiresAtMs: 0 });

/** Proposes `batches` through whoever leads, `parallel` at a time, retrying refusals. */
async function proposeAll(c: ReplicationCluster, batches: DataMutation[][], parallel = 8): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const b = batches[next++] as DataMutation[];
      for (;;) {
        const { node } = await c.waitForLeader(GROUP, 10_000);
        const r = await node.runtime.propose(GROUP, b).catch(() => undefined);
        if (r?.ok) break;
        await new Promise((res) => setTimeout(res, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/** `engine` with the members in `overrides` replaced (present keys, even undefined ones); the rest its own, bound to it. */
function overriding(engine: StorageEngine, overrides: Partial<Record<keyof StorageEngine, unknown>>): StorageEngine {
  return new Proxy(engine, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof StorageEngine];
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

async function rows(engine: StorageEngine): Promise<ScanItem[]> {
  const out: ScanItem[] = [];
  for await (const page of scanPartition(engine, RANGE, MAX_TS)) out.push(...page);
  return out;
}

function expectSameRows(got: readonly ScanItem[], want: readonly ScanItem[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i] as ScanItem;
    const w = want[i] as ScanItem;
    if (g.hash !== w.hash || !g.key.equals(w.key) || !g.value.equals(w.value) || g.version !== w.version || g.expiresAtMs !== w.expiresAtMs) {
      expect.fail(`row ${i} differs: ${g.key.toString()}@${g.version} vs ${w.key.toString()}@${w.version}`);
    }
  }
}

async function addLearner(c: ReplicationCluster, id: string): Promise<void> {
  for (;;) {
    const { node } = await c.waitForLeader(GROUP, 10_000);
    const r = node.runtime.proposeConfChange(GROUP, { type: ConfChangeType.AddLearner, replica: replicaId(id) });
    if (r?.ok) return;
    await new Promise((res) => setTimeout(res, 25));
  }
}

async function caughtUp(c: ReplicationCluster, id: string, timeoutMs: number): Promise<ClusterNode> {
  const leader = (await c.waitForLeader(GROUP, 10_000)).node;
  const last = leader.runtime.status(GROUP)?.lastIndex ?? 0;
  await until(() => (c.nodes.get(id as NodeId)?.runtime.status(GROUP)?.applied.index ?? 0) >= last, timeoutMs, `${id} to apply ${last}`);
  return leader;
}

const FORMS: readonly [string, TransportOverrides][] = [
  ['as SST files over the snapshot socket', { snapshotRowsOnly: false, snapshotSocket: { host: '127.0.0.1', port: 0 } }],
  ['as SST files over gRPC', { snapshotRowsOnly: false }],
  ['as rows', { snapshotRowsOnly: true }],
];

describe.each(FORMS)('streamed snapshots %s', (_form, form) => {
  const sst = form.snapshotRowsOnly !== true;
  const socket = form.snapshotSocket !== undefined;
  it('a learner catches up from a streamed snapshot of a partition of more than 20 MiB', { timeout: 60_000 }, async () => {
    const c = new ReplicationCluster({ tickMs: 50, logEntriesMax: 20 });
    try {
      for (const id of VOTERS) {
        const e = await rocks(id);
        await c.start(id, e, [VOTER_SPEC], { staging: stagingOf(e) }, form);
      }
      // 23 MiB of values: 368 batches of 4 × 16 KiB; the snapshot trails the log by at most ~logEntriesMax batches.
      const BATCHES = 368;
      const batches = Array.from({ length: BATCHES }, (_, b) =>
        Array.from({ length: 4 }, (_, j) => put(b * 4 + j, Buffer.alloc(16 * 1024, (b * 4 + j) % 251))),
      );
      await proposeAll(c, batches);
      const leader = (await c.waitForLeader(GROUP, 10_000)).node;
      await until(() => (leader.runtime.raftStatus(GROUP)?.firstIndex ?? 0) > BATCHES - 40, 10_000, 'the leader to compact its log');

      const learnerEngine = await rocks('n4');
      await c.start('n4', learnerEngine, [EMPTY_SPEC], { staging: stagingOf(learnerEngine) }, form);
      await addLearner(c, 'n4');
      const now = await caughtUp(c, 'n4', 40_000);
      expect(VOTERS.reduce((n, id) => n + (c.node(id).transport.snapshotStats().send?.filesSent ?? 0), 0) > 0).toBe(sst);
      expect(VOTERS.reduce((n, id) => n + (c.node(id).transport.snapshotStats().send?.overSocket ?? 0), 0) > 0).toBe(socket);

      // Leadership may move under load: count what every voter sent.
      const sent = VOTERS.map((id) => c.node(id).transport.snapshotStats().send);
      expect(sent.reduce((n, st) => n + (st?.succeeded ?? 0), 0)).toBeGreaterThanOrEqual(1);
      expect(Math.max(...sent.map((st) => st?.bytesSent ?? 0))).toBeGreaterThanOrEqual(20 * MiB);
      expect(c.node('n4').transport.snapshotStats().receive?.bytesReceived).toBeGreaterThanOrEqual(20 * MiB);
      expect(c.node('n4').runtime.status(GROUP)?.learners).toEqual(['n4']);
      const want = await rows(now.engine);
      expect(want.length).toBe(BATCHES * 4);
      expectSameRows(await rows(learnerEngine), want);
      expect(await stagingOf(learnerEngine).ids(GROUP)).toEqual([]);
    } finally {
      await c.stopAll();
    }
  });

  it('a transfer cut off mid-way leaves the old data, is retried, and reads never see a partial range', { timeout: 60_000 }, async () => {
    const KEYS = 160;
    const VALUE_BYTES = 32 * 1024; // 5 MiB per generation of values
    const pace = { snapshotBytesPerSecond: 2 * MiB, snapshotChunkBytes: 128 * 1024, ...form };
    const c = new ReplicationCluster({ tickMs: 50, logEntriesMax: 20 });
    try {
      for (const id of VOTERS) {
        const e = await rocks(id);
        await c.start(id, e, [VOTER_SPEC], { staging: stagingOf(e) }, pace);
      }
      const n4Engine = await rocks('n4b');
      await c.start('n4', n4Engine, [EMPTY_SPEC], { staging: stagingOf(n4Engine) }, form);
      await addLearner(c, 'n4');
      const oldValue = (i: number) => Buffer.alloc(VALUE_BYTES, `old-${i}|`);
      const newValue = (i: number) => Buffer.alloc(VALUE_BYTES, `new-${i}|`);
      await proposeAll(
        c,
        Array.from({ length: KEYS / 4 }, (_, b) => Array.from({ length: 4 }, (_, j) => put(b * 4 + j, oldValue(b * 4 + j)))),
      );
      await caughtUp(c, 'n4', 30_000);

      // Follower reads on n4 through a KvStore whose freshness was confirmed now (and is trusted
      // for a minute), across the restarts below.
      let runtime = c.node('n4').runtime;
      const replicator: Replicator = {
        propose: (g, m, o) => runtime.propose(g, m, o),
        read: (g: GroupId) => runtime.read(g),
        status: (g: GroupId): GroupStatus | undefined => runtime.status(g),
      };
      const replicas = [...VOTERS, 'n4' as NodeId];
      const kv = new KvStore(
        n4Engine,
        new PartitionTable(new PartitionMap(1n, uniformPartitions(1, replicas)), 'n4' as NodeId),
        new HybridClock(),
        { keyBytesMax: 1024, valueBytesMax: 1 << 20, ttlMsMax: 1e9, batchOpsMax: 1000, scanLimitMax: 1000, snapshotSkewMsMax: 5000 },
        undefined,
        replicator,
      );
      const read = { consistency: 'follower' as const, maxStalenessMs: 60_000 };
      expect((await kv.get({ key: keyOf(0), read })).value.equals(oldValue(0))).toBe(true);

      // n4 goes away; every key gets a new value and the leader compacts past n4's log.
      const stopped = await c.stop('n4');
      await proposeAll(
        c,
        Array.from({ length: KEYS / 4 }, (_, b) => Array.from({ length: 4 }, (_, j) => put(b * 4 + j, newValue(b * 4 + j)))),
      );
      const leader = (await c.waitForLeader(GROUP, 10_000)).node;
      await until(
        () => (leader.runtime.raftStatus(GROUP)?.firstIndex ?? 0) > (stopped.runtime.status(GROUP)?.applied.index ?? 0) + 1,
        10_000,
        'compaction past n4',
      );

      // Back, it needs a snapshot (~5 MiB at 2 MiB/s): stop it again once rows are arriving.
      const oldRows = await rows(n4Engine);
      expect(oldRows.length).toBe(KEYS);
      let back = await c.start('n4', n4Engine, [EMPTY_SPEC], { staging: stagingOf(n4Engine) }, form);
      runtime = back.runtime;
      await until(() => (back.transport.snapshotStats().receive?.bytesReceived ?? 0) > 0, 20_000, 'snapshot bytes arriving at n4');
      expect(back.transport.snapshotStats().receive?.received).toBe(0);
      await c.stop('n4');
      expect(runtime.status(GROUP)?.applied.index).toBe(stopped.runtime.status(GROUP)?.applied.index);
      expectSameRows(await rows(n4Engine), oldRows); // nothing of the partial transfer is in the data
      const sendStats = () => VOTERS.map((id) => c.node(id).transport.snapshotStats().send);
      await until(() => sendStats().some((st) => (st?.failed ?? 0) >= 1), 10_000, 'the leader to see its transfer fail');

      // Restarted: leftover staging is cleared, the leader sends again, and it completes. Reads go on meanwhile.
      back = await c.start('n4', n4Engine, [EMPTY_SPEC], { staging: stagingOf(n4Engine) }, form);
      runtime = back.runtime;
      let served = 0;
      let refused = 0;
      let sawInstalling = false;
      let done = false;
      const reader = (async () => {
        while (!done) {
          const i = (served + refused) % KEYS;
          if (runtime.status(GROUP)?.installingSnapshot) sawInstalling = true;
          try {
            const r = await kv.get({ key: keyOf(i), read });
            const ok = r.found && (r.value.equals(oldValue(i)) || r.value.equals(newValue(i)));
            if (!ok) expect.fail(`follower read of key-${i} returned ${r.found ? r.value.subarray(0, 12).toString() : 'nothing'}`);
            served++;
          } catch (e) {
            if (!(e instanceof KeyVaError) || e.code !== 'UNAVAILABLE') throw e;
            refused++;
          }
          // A local read may settle without I/O: let the event loop run between reads.
          await new Promise((res) => setImmediate(res));
        }
      })();
      await caughtUp(c, 'n4', 30_000);
      done = true;
      await reader;
      expect(served).toBeGreaterThan(0);
      if (!sst) {
        // Rows take long enough to install that the reader meets the install (an ingestion is over in milliseconds).
        expect(sawInstalling).toBe(true);
        expect(refused).toBeGreaterThan(0);
      }
      expect(sendStats().reduce((n, st) => n + (st?.succeeded ?? 0), 0)).toBeGreaterThanOrEqual(1);
      expectSameRows(await rows(n4Engine), await rows(leader.engine));
      for (let i = 0; i < KEYS; i += 17) expect((await kv.get({ key: keyOf(i), read })).value.equals(newValue(i))).toBe(true);
      expect(await stagingOf(n4Engine).ids(GROUP)).toEqual([]);
    } finally {
      await c.stopAll();
    }
  });

  it('a crash while the snapshot is being written into the range: on restart the install resumes from the staging', { timeout: 60_000 }, async () => {
    const c = new ReplicationCluster({ tickMs: 50, logEntriesMax: 20 });
    try {
      for (const id of VOTERS) {
        const e = await rocks(`${id}c`);
        await c.start(id, e, [VOTER_SPEC], { staging: stagingOf(e) }, form);
      }
      // 2 MiB, one version per batch: the install makes several bulk loads (256 KiB each).
      await proposeAll(
        c,
        Array.from({ length: 64 }, (_, b) => Array.from({ length: 4 }, (_, j) => put(b * 4 + j, Buffer.alloc(8 * 1024, (b + j) % 251)))),
      );
      const leader = (await c.waitForLeader(GROUP, 10_000)).node;
      await until(() => (leader.runtime.raftStatus(GROUP)?.firstIndex ?? 0) > 20, 10_000, 'the leader to compact its log');

      // Rows: n4's engine fails its third bulk load, in the middle of the install (the range is
      // deleted, some rows written). SST files: it fails right after the ingestion, before the
      // applied state is written.
      const disk = await rocks('n4c');
      let loads = 0;
      const real = disk.sst;
      const failing = overriding(disk, {
        load: (load: Parameters<StorageEngine['load']>[0]) => {
          if (++loads === 3) return Promise.reject(new Error('simulated crash'));
          return disk.load(load);
        },
        ...(sst && real !== undefined
          ? {
              sst: {
                export: real.export,
                ingest: async (...a: Parameters<typeof real.ingest>) => {
                  await real.ingest(...a);
                  throw new Error('simulated crash');
                },
              },
            }
          : {}),
      });
      let fatal: Error | undefined;
      await c.start('n4', failing, [EMPTY_SPEC], { staging: stagingOf(disk), onFatal: (e) => (fatal = e) }, form);
      await addLearner(c, 'n4');
      await until(() => fatal !== undefined, 20_000, 'the simulated crash');
      expect(fatal?.message).toMatch(/simulated crash/);
      await c.stop('n4');
      const partial = await rows(disk);
      // On disk: part of the snapshot's rows, and the install pending (applied index below the snapshot's).
      const staged = await stagingOf(disk).ids(GROUP);
      expect(staged).toHaveLength(1);
      const totals = await stagingOf(disk).totals(GROUP, staged[0] as StagedSnapshotId);
      expect(totals?.sst !== undefined).toBe(sst);
      if (sst)
        expect(partial.length).toBe(totals?.rows); // ingested whole, the applied state not written
      else expect(partial.length).toBeLessThan(totals?.rows ?? 0);

      // Restarted on the same disk: the pending snapshot is installed again from the staging before the group serves.
      const back = await c.start('n4', disk, [EMPTY_SPEC], { staging: stagingOf(disk) }, form);
      expect(back.runtime.status(GROUP)?.applied.index).toBeGreaterThanOrEqual(staged[0]?.index ?? Number.POSITIVE_INFINITY);
      const atOpen = await rows(disk);
      const now = await caughtUp(c, 'n4', 30_000);
      expect(atOpen.length).toBe(totals?.rows); // the whole snapshot, before anything else ran
      expectSameRows(await rows(disk), await rows(now.engine));
      expect(await stagingOf(disk).ids(GROUP)).toEqual([]);
    } finally {
      await c.stopAll();
    }
  });
});

describe('streamed snapshots between a node with SST files and one without', () => {
  it('the receiver answers UNIMPLEMENTED, the sender falls back to rows, and the learner catches up', { timeout: 60_000 }, async () => {
    const c = new ReplicationCluster({ tickMs: 50, logEntriesMax: 20 });
    try {
      for (const id of VOTERS) {
        const e = await rocks(`${id}f`);
        await c.start(id, e, [VOTER_SPEC], { staging: stagingOf(e) });
      }
      await proposeAll(
        c,
        Array.from({ length: 40 }, (_, b) => Array.from({ length: 4 }, (_, j) => put(b * 4 + j, Buffer.alloc(4096, (b + j) % 251)))),
      );
      const leader = (await c.waitForLeader(GROUP, 10_000)).node;
      await until(() => (leader.runtime.raftStatus(GROUP)?.firstIndex ?? 0) > 20, 10_000, 'the leader to compact its log');
      expect(leader.engine.sst).toBeDefined();

      // n4 runs on an engine without the native calls (as on the published binding).
      const disk = await rocks('n4f');
      const withoutSst = overriding(disk, { sst: undefined });
      await c.start('n4', withoutSst, [EMPTY_SPEC], { staging: stagingOf(disk) });
      await addLearner(c, 'n4');
      const now = await caughtUp(c, 'n4', 30_000);
      const sent = VOTERS.map((id) => c.node(id).transport.snapshotStats().send);
      expect(sent.reduce((n, st) => n + (st?.filesSent ?? 0), 0)).toBe(0);
      expect(sent.reduce((n, st) => n + (st?.succeeded ?? 0), 0)).toBeGreaterThanOrEqual(1);
      expect(c.node('n4').transport.snapshotStats().receive?.failed).toBeGreaterThanOrEqual(1); // the SST attempt
      expectSameRows(await rows(disk), await rows(now.engine));
    } finally {
      await c.stopAll();
    }
  });
});

describe('streamed snapshots to a node whose snapshot socket cannot be reached', () => {
  it('the sender sends the SST files over gRPC instead and the learner catches up', { timeout: 60_000 }, async () => {
    const c = new ReplicationCluster({ tickMs: 50, logEntriesMax: 20 });
    // The voters dial n4's snapshot socket at 127.0.0.2, where nothing listens (as behind a firewall); every socket listens on 127.0.0.1.
    const socket: TransportOverrides = {
      snapshotSocket: { host: '127.0.0.1', port: 0 },
      snapshotSocketHostOf: (id) => (id === 'n4' ? '127.0.0.2' : '127.0.0.1'),
    };
    try {
      for (const id of VOTERS) {
        const e = await rocks(`${id}s`);
        await c.start(id, e, [VOTER_SPEC], { staging: stagingOf(e) }, socket);
      }
      await proposeAll(
        c,
        Array.from({ length: 40 }, (_, b) => Array.from({ length: 4 }, (_, j) => put(b * 4 + j, Buffer.alloc(4096, (b + j) % 251)))),
      );
      const leader = (await c.waitForLeader(GROUP, 10_000)).node;
      await until(() => (leader.runtime.raftStatus(GROUP)?.firstIndex ?? 0) > 20, 10_000, 'the leader to compact its log');

      const disk = await rocks('n4s');
      await c.start('n4', disk, [EMPTY_SPEC], { staging: stagingOf(disk) }, socket);
      await addLearner(c, 'n4');
      const now = await caughtUp(c, 'n4', 30_000);
      const sent = () => VOTERS.map((id) => c.node(id).transport.snapshotStats().send);
      expect(sent().reduce((n, st) => n + (st?.filesSent ?? 0), 0)).toBeGreaterThanOrEqual(1);
      // Only snapshots to the voters (one that fell behind the compaction) went over a socket.
      const votersReceived = VOTERS.reduce((n, id) => n + (c.node(id).transport.snapshotStats().receive?.received ?? 0), 0);
      expect(sent().reduce((n, st) => n + (st?.overSocket ?? 0), 0)).toBe(votersReceived);
      expect(c.node('n4').transport.snapshotStats().receive?.received).toBeGreaterThanOrEqual(1);
      expect(c.node('n4').transport.snapshotStats().receive?.failed).toBe(0); // nothing reached it half-sent
      expectSameRows(await rows(disk), await rows(now.engine));
    } finally {
      await c.stopAll();
    }
  });
});
