/**
 * One placement control loop (operator/src/dataplane) per KeyVaCluster, hosted by the operator
 * while it holds the leader Lease: the controller starts a cluster's loop after a reconcile pass
 * that wants one (with the spec's RF and the members being scaled away as the decommission list)
 * and stops it when the cluster is paused, deleted, or the Lease is lost. The loop keeps no state
 * the cluster does not have (ADR 0009), so a new operator (or a restarted one) resumes where the
 * data plane is. Its view goes back to the pure reconcile core as `Observed.dataPlane`; a change
 * in it (a node registered, drained, removed; moves finished) requeues the cluster.
 *
 * The spec reaches the planner here: `plannerSpec` maps the reconcile core's `PlacementTarget`
 * (RF, decommission list, zones, spec.rebalance, spec.split) to the planner's `ClusterSpec`; the
 * loop reads it afresh on every tick, so a spec change applies from the next plan.
 */
import type { Logger } from 'pino';
import { NODE_GRPC_PORT } from '../api/constants.ts';
import { GrpcAdminCaller } from '../dataplane/admin-client.ts';
import { ControlLoop, type LoopStatus } from '../dataplane/control-loop.ts';
import { type ObservedCluster, Observer } from '../dataplane/observer.ts';
import { DigestAuditor } from '../dataplane/replica-digests.ts';
import { StepExecutor } from '../dataplane/step-executor.ts';
import { resolveSpec } from '../placement/spec.ts';
import { type ClusterSpec, nodeId, partitionId } from '../placement/types.ts';
import type { DataPlaneView, PlacementTarget } from '../reconcile/types.ts';
import { askMetaReplicas, LeaderlessGroups } from './leaderless-groups.ts';

export interface DataPlaneLoopsOptions {
  readonly log: Logger;
  /** The loop's view changed in a way reconcile cares about: requeue the cluster. */
  readonly onChange: (key: string) => void;
  readonly intervalMs?: number | undefined;
  /** Clock of the leaderless-group times handed to reconcile (default Date.now). */
  readonly now?: (() => number) | undefined;
}

interface Entry {
  readonly loop: ControlLoop;
  readonly admin: GrpcAdminCaller;
  readonly executor: StepExecutor;
  seeds: string[];
  spec: ClusterSpec;
  /** Failure zone per member id (the planner's NodeView.zone). */
  zones: Readonly<Record<string, string>>;
  signature: string;
  /** Raft groups without a leader, since when (Degraded=QuorumLost). */
  readonly leaderless: LeaderlessGroups;
  leaderlessSignature: string;
}

/** The planner's spec for a cluster's placement target (throws INVALID_ARGUMENT naming the field). */
export function plannerSpec(t: PlacementTarget): ClusterSpec {
  return resolveSpec({
    replicationFactor: t.replicationFactor,
    decommission: t.decommission.map(nodeId),
    zoneSpread: t.zoneSpread,
    moves: { rebalance: t.rebalance.enabled, startsPerMinuteMax: t.rebalance.movesPerMinuteMax, clusterMax: t.rebalance.movesInFlightMax },
    // Leader balancing off: no balance transfers; leaders still leave draining or unhealthy nodes.
    leaders: t.rebalance.leaderBalance ? {} : { transfersPerPlanMax: 0 },
    split: { auto: t.split.auto, sizeBytes: t.split.splitBytes, loadSplitsPerMinuteMax: t.split.splitsPerMinuteMax, cooldownMs: t.split.cooldownMs },
    merge: { sizeBytes: t.split.mergeBytes, cooldownMs: t.split.cooldownMs },
  });
}

/** gRPC address of a member pod (the seed the loop asks first; the registry's are learnt). */
export function seedOf(podIP: string): string {
  return `${podIP}:${NODE_GRPC_PORT}`;
}

export class DataPlaneLoops {
  private readonly o: DataPlaneLoopsOptions;
  private readonly loops = new Map<string, Entry>();

  constructor(o: DataPlaneLoopsOptions) {
    this.o = o;
  }

  /** Starts the cluster's loop if needed, with these seeds and this placement target. */
  ensure(key: string, seeds: readonly string[], placement: PlacementTarget): void {
    const spec = plannerSpec(placement);
    let e = this.loops.get(key);
    if (e === undefined) {
      const admin = new GrpcAdminCaller();
      const executor = new StepExecutor(admin);
      const entry: { current?: Entry } = {};
      const observer = new Observer({ admin, seeds: () => entry.current?.seeds ?? [], zoneOf: (id) => entry.current?.zones[id] });
      const log = this.o.log.child({ cluster: key, component: 'placement' });
      const loop = new ControlLoop({
        observer,
        executor,
        spec: () => entry.current?.spec ?? spec,
        intervalMs: this.o.intervalMs,
        log: (msg) => log.info(msg),
        onObserved: (oc, st) => this.observed(key, oc, st),
        onObserveFailed: () => this.observeFailed(key, observer),
        auditor: new DigestAuditor({ admin, log: (msg) => log.info(msg) }),
      });
      e = {
        loop,
        admin,
        executor,
        seeds: [...seeds],
        spec,
        zones: placement.zones,
        signature: '',
        leaderless: new LeaderlessGroups(),
        leaderlessSignature: '[]',
      };
      entry.current = e;
      this.loops.set(key, e);
      log.info({ seeds, replicationFactor: spec.replicationFactor, decommission: spec.decommission }, 'placement loop started');
      loop.start();
      return;
    }
    e.seeds = [...seeds];
    const changed = JSON.stringify([e.spec, e.zones]) !== JSON.stringify([spec, placement.zones]);
    e.spec = spec;
    e.zones = placement.zones;
    if (changed) {
      this.o.log.info({ cluster: key, decommission: spec.decommission, moves: spec.moves, zoneSpread: spec.zoneSpread }, 'placement target changed');
      e.loop.nudge();
    }
  }

  /** The planner spec the cluster's loop plans with now (undefined: no loop). */
  specOf(key: string): ClusterSpec | undefined {
    return this.loops.get(key)?.spec;
  }

  has(key: string): boolean {
    return this.loops.has(key);
  }

  /** The loop's latest view for reconcile (undefined before its first observation). */
  view(key: string): DataPlaneView | undefined {
    const e = this.loops.get(key);
    if (e === undefined) return undefined;
    const oc = e.loop.observed;
    const st = e.loop.status();
    const noLeader = e.leaderless.list();
    if (oc === undefined) {
      // Never observed (e.g. the operator started while the meta group had no leader): only
      // the leaderless groups are known; the error keeps reconcile from trusting the rest.
      if (noLeader.length === 0) return undefined;
      return { nodes: [], changing: false, movesDone: 0, movesTotal: 0, blockers: [], error: st.lastError ?? 'not observed yet', noLeader };
    }
    return { ...toView(oc, st), noLeader };
  }

  /**
   * Moves every partition leadership off `member` (rolling upgrade: before its pod goes), then
   * waits until the leaders report it leads nothing, up to `timeoutMs`. Returns what is left.
   */
  async transferLeadersAway(key: string, member: string, timeoutMs: number): Promise<{ led: number; left: number }> {
    const e = this.loops.get(key);
    if (e === undefined) return { led: 0, left: 0 };
    const deadline = Date.now() + timeoutMs;
    let led: number | undefined;
    for (;;) {
      let oc: ObservedCluster;
      try {
        oc = await new Observer({ admin: e.admin, seeds: () => e.seeds }).observe();
      } catch {
        if (Date.now() >= deadline) return { led: led ?? 0, left: led ?? 0 };
        await sleep(500);
        continue;
      }
      const up = new Set(oc.observation.nodes.filter((n) => n.health === 'up' && n.state === 'active').map((n) => n.id as string));
      const mine = oc.observation.partitions.filter((p) => p.leader === member);
      led ??= mine.length;
      if (mine.length === 0 || Date.now() >= deadline) return { led, left: mine.length };
      await Promise.all(
        mine.map((p) => {
          const to = p.replicas.find((r) => r.role === 'voter' && r.nodeId !== member && up.has(r.nodeId));
          if (to === undefined) return undefined;
          return e.executor.execute(
            { type: 'transferLeader', partitionId: partitionId(p.id), to: to.nodeId, reason: `rolling upgrade: ${member} restarts` },
            oc,
          );
        }),
      );
      await sleep(300);
    }
  }

  async stop(key: string): Promise<void> {
    const e = this.loops.get(key);
    if (e === undefined) return;
    this.loops.delete(key);
    await e.loop.stop();
    e.admin.close();
    this.o.log.info({ cluster: key }, 'placement loop stopped');
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.loops.keys()].map((k) => this.stop(k)));
  }

  /** The observation failed: does the meta group still have a leader? (asked of each member itself) */
  private async observeFailed(key: string, observer: Observer): Promise<void> {
    const e = this.loops.get(key);
    if (e === undefined) return;
    e.leaderless.metaAnswers(await askMetaReplicas(e.admin, observer.addresses()), this.now());
    this.leaderlessChanged(key, e);
  }

  private leaderlessChanged(key: string, e: Entry): void {
    const signature = JSON.stringify(e.leaderless.list().map((g) => g.group));
    if (signature === e.leaderlessSignature) return;
    e.leaderlessSignature = signature;
    this.o.onChange(key);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private observed(key: string, oc: ObservedCluster, st: LoopStatus): void {
    const e = this.loops.get(key);
    if (e === undefined) return;
    e.leaderless.observed(
      oc.observation.partitions.map((p) => ({ id: Number(p.id), leader: p.leader })),
      this.now(),
    );
    this.leaderlessChanged(key, e);
    const v = toView(oc, st);
    // What reconcile acts on or shows: node states, whether anything moves, progress, blockers.
    const signature = JSON.stringify([
      v.nodes.map((n) => [n.id, n.state]),
      v.changing,
      v.movesDone,
      v.movesTotal,
      v.blockers.map((b) => b.code),
      v.error !== undefined,
    ]);
    if (signature !== e.signature) {
      e.signature = signature;
      this.o.onChange(key);
    }
  }
}

function toView(oc: ObservedCluster, st: LoopStatus): DataPlaneView {
  const leads = new Map<string, number>();
  for (const p of oc.observation.partitions) if (p.leader !== undefined) leads.set(p.leader, (leads.get(p.leader) ?? 0) + 1);
  return {
    nodes: oc.registry.map((r) => ({
      id: r.id,
      state: r.state,
      replicasHosted: oc.observation.nodes.find((n) => n.id === r.id)?.report?.replicasHosted,
      leaderOf: leads.get(r.id) ?? 0,
    })),
    changing: st.changing,
    movesDone: st.movesDone,
    movesTotal: st.movesTotal,
    blockers: st.blockers.map((b) => ({ code: b.code, message: b.message, nodeId: b.nodeId })),
    error: st.lastError,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
