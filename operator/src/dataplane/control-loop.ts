/**
 * The placement control loop: observe -> (record Raft membership in the map) -> plan -> execute
 * the plan's steps (already within the move budget) -> repeat every `intervalMs`. It keeps no
 * state the cluster does not have: moves in flight are learners and voter surpluses, a node
 * leaving is DRAINING in the registry, so a loop that crashed (or a new one) re-plans from the
 * next observation and continues where the cluster is. Its only memory is the planner's damping
 * history and the progress counters shown in status; losing them weakens nothing.
 */

import { recordIssued } from '../placement/history.ts';
import { checkInvariants, type Violation } from '../placement/invariants.ts';
import { plan } from '../placement/plan.ts';
import { isDone, stepKey } from '../placement/steps.ts';
import type { ClusterSpec, Plan, PlannerHistory, Refusal, Step } from '../placement/types.ts';
import type { ObservedCluster, Observer } from './observer.ts';
import type { DigestAuditor } from './replica-digests.ts';
import type { StepExecutor, StepOutcome } from './step-executor.ts';

export const CONTROL_INTERVAL_MS = 500;
/** While nothing moves: observing a settled cluster costs a call per partition, so less often. */
export const CONTROL_IDLE_INTERVAL_MS = 2000;
/**
 * After a tick that changed the cluster (a step took effect, or the map recorded new voters):
 * the next step of the same move (promote after catch-up, map sync after promote, removal after
 * the map sync, ...) is usually ready at once, so the next observation comes this soon instead
 * of a whole interval later. Every step is still planned from a fresh observation.
 */
export const CONTROL_PROGRESS_INTERVAL_MS = 20;
/** Consecutive ticks at the progress interval, at most; then one regular interval (no tight loop). */
export const CONTROL_PROGRESS_TICKS_MAX = 8;

export interface Blocker {
  readonly code: string;
  readonly message: string;
  readonly nodeId?: string | undefined;
  readonly partitionId?: number | undefined;
}

export interface LoopStatus {
  readonly running: boolean;
  readonly ticks: number;
  readonly observedAtMs?: number | undefined;
  readonly epoch?: string | undefined;
  /** Moves (replicas to place on their target node) of the change under way. */
  readonly movesDone: number;
  readonly movesTotal: number;
  readonly movesInFlight: number;
  readonly partitionsBelowRF: number;
  readonly partitionsWithoutLeader: number;
  /** True while anything is left to do (moves, a draining node, steps). */
  readonly changing: boolean;
  readonly currentSteps: readonly { readonly key: string; readonly reason: string }[];
  readonly stepsExecuted: number;
  readonly blockers: readonly Blocker[];
  readonly violations: readonly Violation[];
  /** Partitions whose replica digests were compared so far (LESSONS #10). */
  readonly digestsAudited: number;
  readonly lastError?: string | undefined;
  readonly lastOutcomes: readonly StepOutcome[];
}

export interface ControlLoopOptions {
  readonly observer: Observer;
  readonly executor: StepExecutor;
  readonly spec: () => ClusterSpec;
  readonly intervalMs?: number | undefined;
  readonly idleIntervalMs?: number | undefined;
  /** Delay of the next tick after one that changed something (`CONTROL_PROGRESS_INTERVAL_MS`). */
  readonly progressIntervalMs?: number | undefined;
  readonly now?: () => number;
  /** Called after every tick with the fresh observation (e.g. to stop removed nodes' processes). */
  readonly onObserved?: (oc: ObservedCluster, status: LoopStatus) => void | Promise<void>;
  /** Called after a tick whose observation failed (e.g. to ask the members whether the meta group lost its leader). */
  readonly onObserveFailed?: (error: Error) => void | Promise<void>;
  /** Background replica-digest audits whose results the invariant checker sees (`replica-digests.ts`). */
  readonly auditor?: DigestAuditor | undefined;
  readonly log?: (msg: string) => void;
}

const refusalBlocker = (r: Refusal): Blocker => ({ code: r.code, message: r.message, nodeId: r.nodeId, partitionId: r.partitionId });

export class ControlLoop {
  private readonly o: ControlLoopOptions;
  private history: PlannerHistory = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private current: Promise<void> | undefined;
  private stopped = true;
  private ticks = 0;
  private stepsExecuted = 0;
  private movesDone = 0;
  private lastRemaining = 0;
  private quiet = true;
  private last: ObservedCluster | undefined;
  private lastPlan: Plan | undefined;
  private lastError: string | undefined;
  private blockedSteps: Blocker[] = [];
  private outcomes: StepOutcome[] = [];
  private inFlight: Step[] = [];
  private violations: Violation[] = [];
  /** The last tick changed the cluster (see CONTROL_PROGRESS_INTERVAL_MS); ticks in a row that did. */
  private progressed = false;
  private progressTicks = 0;

  constructor(o: ControlLoopOptions) {
    this.o = o;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops after the tick under way (its calls finish: each is idempotent, but let them land). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.current;
  }

  /** Observe and plan now (after a topology request) instead of at the next interval. */
  nudge(): void {
    if (this.stopped || this.current !== undefined) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.schedule(0);
  }

  /** The latest fresh observation, if any. */
  get observed(): ObservedCluster | undefined {
    return this.last;
  }

  status(): LoopStatus {
    const p = this.lastPlan?.progress;
    const remaining = p?.movesRemaining ?? 0;
    const draining = this.last?.observation.nodes.some((n) => n.state === 'draining') ?? false;
    return {
      running: !this.stopped,
      ticks: this.ticks,
      observedAtMs: this.last?.atMs,
      epoch: this.last?.observation.epoch.toString(),
      movesDone: this.movesDone,
      movesTotal: this.movesDone + remaining,
      movesInFlight: p?.movesInFlight ?? 0,
      partitionsBelowRF: p?.partitionsBelowRF ?? 0,
      partitionsWithoutLeader: p?.partitionsWithoutLeader ?? 0,
      changing: remaining > 0 || (p?.movesInFlight ?? 0) > 0 || draining || this.inFlight.some((s) => s.type !== 'transferLeader'),
      currentSteps: this.inFlight.map((s) => ({ key: stepKey(s), reason: s.reason })),
      stepsExecuted: this.stepsExecuted,
      blockers: [...(this.lastPlan?.refusals ?? []).map(refusalBlocker), ...this.blockedSteps],
      violations: this.violations,
      digestsAudited: this.o.auditor?.audited ?? 0,
      lastError: this.lastError,
      lastOutcomes: this.outcomes,
    };
  }

  /** One observe -> plan -> execute round (also usable without `start`, e.g. in tests). */
  async tick(): Promise<void> {
    this.ticks++;
    this.progressed = false;
    const now = (this.o.now ?? Date.now)();
    let oc: ObservedCluster;
    try {
      oc = await this.o.observer.observe();
    } catch (e) {
      this.lastError = `observe: ${(e as Error).message}`;
      await this.o.onObserveFailed?.(e as Error);
      return;
    }
    this.last = oc;
    const spec = this.o.spec();
    // Background audits read whole partitions on every replica: only while nothing moves. A move
    // checks the digests of its own partition before each removal (the executor), and the audit
    // resumes with the partitions whose generation changed once the cluster is settled.
    if (this.quiet && this.inFlight.length === 0) this.o.auditor?.maybeAudit(oc);
    this.violations = checkInvariants(this.o.auditor?.attach(oc.observation) ?? oc.observation, spec.replicationFactor);
    // The map follows membership first: a step planned on a map behind Raft would fail its CAS.
    const sync = await this.o.executor.syncMap(oc);
    if (sync.updated > 0 || sync.error !== undefined) {
      this.lastError = sync.error;
      if (sync.updated > 0) {
        this.progressed = true;
        this.o.log?.(`map: recorded the voters of ${sync.updated} partition(s)`);
      }
      await this.o.onObserved?.(oc, this.status());
      return;
    }
    const next = plan(spec, oc.observation, now, this.history);
    this.lastPlan = next;
    // Progress of the change under way: a new one starts when moves appear after a quiet plan;
    // the counters of the last one stay for status until then.
    const remaining = next.progress.movesRemaining;
    if (remaining > 0 && this.lastRemaining === 0 && this.quiet) this.movesDone = 0;
    if (remaining < this.lastRemaining) this.movesDone += this.lastRemaining - remaining;
    this.lastRemaining = remaining;
    const draining = oc.observation.nodes.some((n) => n.state === 'draining');
    this.quiet = remaining === 0 && next.progress.movesInFlight === 0 && !draining;
    const todo = next.steps.filter((s) => !isDone(s, oc.observation));
    this.inFlight = todo;
    this.lastError = undefined;
    if (todo.length > 0) {
      for (const s of todo) this.o.log?.(`step ${stepKey(s)}: ${s.reason}`);
      const outcomes = await Promise.all(todo.map((s) => this.o.executor.execute(s, oc)));
      this.stepsExecuted += outcomes.filter((x) => x.kind === 'done').length;
      this.progressed = outcomes.some((x) => x.kind === 'done' && x.changed);
      this.history = recordIssued(
        this.history,
        todo.filter((_, i) => outcomes[i]?.kind === 'done'),
        now,
      );
      this.outcomes = outcomes;
      this.blockedSteps = outcomes.flatMap((x) => (x.kind === 'blocked' ? [{ code: x.reason, message: `${x.key}: ${x.message}` }] : []));
      for (const x of outcomes) if (x.kind !== 'done') this.o.log?.(`step ${x.key}: ${x.kind}: ${x.message}`);
    } else {
      this.blockedSteps = [];
    }
    await this.o.onObserved?.(oc, this.status());
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.tick()
        .catch((e: unknown) => {
          this.lastError = `tick: ${(e as Error).message}`;
        })
        .finally(() => {
          this.current = undefined;
          const busy = !this.quiet || this.inFlight.length > 0 || this.lastError !== undefined;
          this.progressTicks = this.progressed ? this.progressTicks + 1 : 0;
          const soon = this.progressed && this.progressTicks <= CONTROL_PROGRESS_TICKS_MAX;
          this.schedule(
            soon
              ? (this.o.progressIntervalMs ?? CONTROL_PROGRESS_INTERVAL_MS)
              : busy
                ? (this.o.intervalMs ?? CONTROL_INTERVAL_MS)
                : Math.max(this.o.intervalMs ?? 0, this.o.idleIntervalMs ?? CONTROL_IDLE_INTERVAL_MS),
          );
        });
    }, delayMs);
  }
}
