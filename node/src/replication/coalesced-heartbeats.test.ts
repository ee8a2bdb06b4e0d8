/**
 * Coalesced heartbeats (KeyVa issue #3): three in-process nodes over real gRPC share 48 groups;
 * while idle, the heartbeats and heartbeat responses of all groups between two nodes travel as
 * compact records in one RaftBatch per peer per tick, not one message per group. Counted on the
 * receiving end of every stream (wire messages read) against the heartbeats they carried.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { GroupSpec } from './multi-raft.ts';
import { equalRanges, ReplicationCluster, until } from './testing/replication-cluster.ts';

const NODES = ['n1', 'n2', 'n3'] as NodeId[];
const GROUPS = 48;
const TICK_MS = 20;
const HEARTBEAT_TICK = 2;
const WINDOW_TICKS = 50;
const RANGES = equalRanges(GROUPS);
const SPECS: GroupSpec[] = RANGES.map((range, i) => ({ group: i + 1, range, bootstrap: NODES }));

const c = new ReplicationCluster({ tickMs: TICK_MS, heartbeatTick: HEARTBEAT_TICK, electionTick: 20 });
afterAll(() => c.stopAll());

it('sends one wire message per peer per tick carrying the heartbeats of every group', { timeout: 30_000 }, async () => {
  for (const id of NODES) {
    const e = new MemoryEngine();
    await e.open();
    await c.start(id, e, SPECS);
  }
  await until(() => SPECS.every((s) => c.leader(s.group) !== undefined), 15_000, 'a leader in every group');
  // Let the elections' appends settle: only heartbeats remain.
  await new Promise((r) => setTimeout(r, 10 * TICK_MS));

  const sum = (f: (n: { batchesReceived: number; heartbeatsReceived: number; received: number }) => number) =>
    [...c.nodes.values()].reduce((a, n) => a + f(n.transport.stats), 0);
  const before = { batches: sum((s) => s.batchesReceived), heartbeats: sum((s) => s.heartbeatsReceived), messages: sum((s) => s.received) };
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, WINDOW_TICKS * TICK_MS));
  const ticks = (performance.now() - t0) / TICK_MS;
  const batches = sum((s) => s.batchesReceived) - before.batches;
  const heartbeats = sum((s) => s.heartbeatsReceived) - before.heartbeats;
  const messages = sum((s) => s.received) - before.messages;

  // Every group's leader sends a heartbeat to 2 followers every HEARTBEAT_TICK ticks, each answered.
  const expected = (GROUPS * 2 * 2 * ticks) / HEARTBEAT_TICK;
  expect(heartbeats, `heartbeats received, expected about ${Math.round(expected)}`).toBeGreaterThan(expected / 3);
  // Almost every message on the wire was a coalesced heartbeat (no proposals ran).
  expect(messages - heartbeats).toBeLessThan(heartbeats / 10);
  // 6 directed node pairs; per pair at most one batch per tick for the heartbeats and one for the
  // responses (generous: a stalled event loop merges ticks, never splits them).
  const bound = 6 * 2 * (ticks + 5);
  expect(batches, `${batches} wire messages for ${heartbeats} heartbeats over ${ticks.toFixed(0)} ticks`).toBeLessThanOrEqual(bound);
  expect(heartbeats / batches).toBeGreaterThan(GROUPS / 8);
  console.log(`coalesced heartbeats: ${heartbeats} heartbeats in ${batches} wire messages over ${ticks.toFixed(0)} ticks (${GROUPS} groups, 3 nodes)`);
});
