/**
 * Lease reads on a real three-node cluster (in-process runtimes, gRPC on loopback, memory
 * engines): a leader whose lease holds answers a linearizable read without a Ready turn or a
 * heartbeat round; after its event loop stalled longer than an election timeout it no longer
 * trusts the lease (its ticks catch up with the monotonic clock) and confirms with a quorum.
 * With ReadIndex every read takes a round.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { ReadOnlyOption } from '../raft/types.ts';
import type { GroupSpec } from './multi-raft.ts';
import { type ClusterNode, equalRanges, ReplicationCluster, type RuntimeOverrides } from './testing/replication-cluster.ts';

const NODES = ['n1', 'n2', 'n3'] as NodeId[];
const SPECS: GroupSpec[] = [{ group: 1, range: equalRanges(1)[0] as GroupSpec['range'], bootstrap: NODES }];
const TICK_MS = 20;
const ELECTION_MS = 10 * TICK_MS;
const WAIT_MS = 20_000;

/** Whether `read()` resolved within the current microtask queue (no I/O, no timer, no Ready turn). */
async function answeredAtOnce(leader: ClusterNode): Promise<boolean> {
  let done = false;
  const p = leader.runtime.read(1).then(
    () => {
      done = true;
    },
    () => undefined,
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  const now = done;
  await p;
  return now;
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the whole process (every node of this cluster) stalls, as under CPU starvation
  }
}

async function cluster(overrides: RuntimeOverrides): Promise<ReplicationCluster> {
  const c = new ReplicationCluster({ tickMs: TICK_MS, ...overrides });
  for (const id of NODES) {
    const e = new MemoryEngine();
    await e.open();
    await c.start(id, e, SPECS);
  }
  return c;
}

describe('lease reads', () => {
  let c: ReplicationCluster | undefined;
  afterEach(async () => {
    await c?.stopAll();
    c = undefined;
  });

  it('a leader with a valid lease answers at once; after a stall it confirms with a quorum first', async () => {
    c = await cluster({ raft: { readOnlyOption: ReadOnlyOption.Lease } });
    const { node: leader } = await c.waitForLeader(1, WAIT_MS);
    // The lease holds once a quorum answered a heartbeat of this term.
    let atOnce = false;
    for (const end = performance.now() + WAIT_MS; !atOnce && performance.now() < end; ) {
      atOnce = c.leader(1) === leader && (await answeredAtOnce(leader));
      if (!atOnce) await new Promise((r) => setTimeout(r, TICK_MS));
    }
    expect(atOnce).toBe(true);

    busyWait(3 * ELECTION_MS);
    // The first thing after the stall is the read: its lease must be judged on real time.
    expect(await answeredAtOnce(leader)).toBe(false);
  }, 60_000);

  it('ReadIndex mode never answers without a round', async () => {
    c = await cluster({});
    const { node: leader } = await c.waitForLeader(1, WAIT_MS);
    await new Promise((r) => setTimeout(r, 5 * TICK_MS));
    for (let i = 0; i < 5; i++) expect(await answeredAtOnce(leader)).toBe(false);
  }, 60_000);
});
