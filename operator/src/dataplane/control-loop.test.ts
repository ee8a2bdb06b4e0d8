/**
 * The control loop's pacing (scripted observer, executor and auditor; the real calls are in
 * e2e/src/placement-local.test.ts): a tick that changed the cluster is followed by the next one
 * at once (bounded), and background digest audits pause while a move is in flight.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveSpec } from '../placement/spec.ts';
import { nodeId, type Observation, type PartitionView, partitionId, type ReplicaView } from '../placement/types.ts';
import { CONTROL_PROGRESS_TICKS_MAX, ControlLoop } from './control-loop.ts';
import type { ObservedCluster, Observer } from './observer.ts';
import type { DigestAuditor } from './replica-digests.ts';
import type { StepExecutor } from './step-executor.ts';

const n = nodeId;
const voter = (id: string): ReplicaView => ({ nodeId: n(id), role: 'voter', matchIndex: 10 });

function observed(replicas: ReplicaView[]): ObservedCluster {
  const part: PartitionView = {
    id: partitionId(0),
    start: 0n,
    end: 1n << 64n,
    generation: 1n,
    replicas,
    leader: n('a'),
    commitIndex: 10,
    sizeBytes: 0,
    qps: 0,
  };
  const ids = ['a', 'b', 'c'];
  const observation: Observation = {
    epoch: 1n,
    nodes: ids.map((id) => ({
      id: n(id),
      weight: 1,
      health: 'up',
      state: 'active',
      capacityBytes: 1 << 30,
      freeBytes: 1 << 30,
      report: { nodeId: n(id), replicasHosted: 1 },
    })),
    partitions: [part],
    nextPartitionId: 1,
  };
  return {
    observation,
    mapReplicas: new Map([[0, ids]]),
    registry: ids.map((id) => ({ id, grpcAddress: `${id}:1`, httpAddress: '', state: 'active' })),
    confChangePending: new Set(),
    info: new Map(),
    mapSource: 'a:1',
    atMs: 0,
  };
}

const SETTLED = observed([voter('a'), voter('b'), voter('c')]);
/** A move in flight: a learner on c (not caught up: nothing to promote yet). */
const MOVING = observed([voter('a'), voter('b'), { nodeId: n('c'), role: 'learner', matchIndex: 0 }]);

const loops: ControlLoop[] = [];
afterEach(async () => {
  for (const l of loops.splice(0)) await l.stop();
});

function loop(o: { observe: () => ObservedCluster; mapUpdates: () => number; audits?: ObservedCluster[] }): { loop: ControlLoop; tickTimes: number[] } {
  const tickTimes: number[] = [];
  const observer = {
    observe: async () => {
      tickTimes.push(performance.now());
      return o.observe();
    },
  } as unknown as Observer;
  const executor = {
    syncMap: async () => ({ updated: o.mapUpdates() }),
    execute: async () => ({ kind: 'retry', key: 'x', message: 'scripted' }),
  } as unknown as StepExecutor;
  const auditor =
    o.audits === undefined
      ? undefined
      : ({
          maybeAudit: (oc: ObservedCluster) => o.audits?.push(oc),
          attach: (x: Observation) => x,
          audited: 0,
        } as unknown as DigestAuditor);
  const l = new ControlLoop({
    observer,
    executor,
    auditor,
    spec: () => resolveSpec({ replicationFactor: 3, leaders: { transfersPerPlanMax: 0 } }),
    intervalMs: 2000,
    idleIntervalMs: 2000,
    progressIntervalMs: 5,
  });
  loops.push(l);
  return { loop: l, tickTimes };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('control loop pacing', () => {
  it('observes again at once after a tick that recorded the map (not a whole interval later)', async () => {
    let syncs = 0;
    const { loop: l, tickTimes } = loop({ observe: () => SETTLED, mapUpdates: () => (++syncs <= 3 ? 1 : 0) });
    l.start();
    await sleep(1000);
    // Three ticks that changed the map, then the one that found nothing: all well within one interval.
    expect(tickTimes.length).toBe(4);
    expect((tickTimes[3] as number) - (tickTimes[0] as number)).toBeLessThan(900);
  });

  it('takes a regular interval after CONTROL_PROGRESS_TICKS_MAX changing ticks in a row', async () => {
    const { loop: l, tickTimes } = loop({ observe: () => SETTLED, mapUpdates: () => 1 });
    l.start();
    await sleep(1000);
    expect(tickTimes.length).toBe(CONTROL_PROGRESS_TICKS_MAX + 1);
  });

  it('starts digest audits only while no move is in flight', async () => {
    let cur = MOVING;
    const audits: ObservedCluster[] = [];
    const { loop: l } = loop({ observe: () => cur, mapUpdates: () => 0, audits });
    await l.tick(); // the first tick knows of no move yet
    expect(audits.length).toBe(1);
    await l.tick();
    await l.tick();
    expect(audits.length, 'no audit while the learner catches up').toBe(1);
    cur = SETTLED;
    await l.tick(); // plans nothing: the cluster is quiet from now on
    await l.tick();
    expect(audits.length).toBe(2);
  });
});
