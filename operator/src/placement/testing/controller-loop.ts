/**
 * A test controller around the pure planner: observe, plan, execute (some steps late, some
 * lost), remember, and optionally crash (forget everything) at random points. Used by the
 * simulation tests to show that convergence and safety never depend on controller memory.
 */

import { recordIssued } from '../history.ts';
import { checkInvariants, type Violation } from '../invariants.ts';
import { plan } from '../plan.ts';
import { isDone } from '../steps.ts';
import type { ClusterSpec, Plan, PlannerHistory, Step } from '../types.ts';
import type { Prng, SimCluster } from './sim-cluster.ts';

export interface Faults {
  /** Chance per round that the controller crashes and restarts with no memory. */
  readonly crash: number;
  /** Chance that an issued step is delivered late (in a later round). */
  readonly delay: number;
  /** Chance that an issued step is lost. */
  readonly loss: number;
}

export const NO_FAULTS: Faults = { crash: 0, delay: 0, loss: 0 };

export class ControllerLoop {
  history: PlannerHistory = [];
  private late: Step[] = [];
  spec: ClusterSpec;
  readonly sim: SimCluster;
  readonly rng: Prng;
  crashes = 0;
  rounds = 0;
  lastPlan: Plan | undefined;
  /** Invariant violations seen after any round (ignoring those listed as tolerated). */
  readonly violations: { round: number; v: Violation }[] = [];
  tolerated: ReadonlySet<string> = new Set();

  constructor(spec: ClusterSpec, sim: SimCluster, rng: Prng) {
    this.spec = spec;
    this.sim = sim;
    this.rng = rng;
  }

  round(faults: Faults): Plan {
    this.rounds += 1;
    if (this.rng.next() < faults.crash) {
      this.crashes += 1;
      this.history = [];
      this.late = [];
    }
    const p = plan(this.spec, this.sim.observe(), this.sim.nowMs, this.history);
    this.lastPlan = p;
    const issued: Step[] = [];
    // Late steps from earlier rounds arrive first: they were planned on an older observation.
    const late = this.late;
    this.late = [];
    for (const s of late) {
      if (this.rng.next() < 0.5) this.late.push(s);
      else if (!isDone(s, this.sim.observe())) this.sim.apply(s, false);
    }
    for (const s of p.steps) {
      const r = this.rng.next();
      if (r < faults.loss) continue;
      if (r < faults.loss + faults.delay) this.late.push(s);
      else this.sim.apply(s);
      issued.push(s);
    }
    this.history = recordIssued(this.history, issued, this.sim.nowMs);
    this.sim.tick(this.rng);
    for (const v of checkInvariants(this.sim.observe(), this.spec.replicationFactor)) {
      if (!this.tolerated.has(v.code)) this.violations.push({ round: this.rounds, v });
    }
    return p;
  }

  /**
   * Runs fault-free rounds until `quietRounds` plans in a row have no step and no move in flight
   * (longer than the cooldowns, so nothing is merely postponed); returns rounds used or -1.
   */
  heal(maxRounds: number, quietRounds = 40): number {
    this.late = [];
    let quiet = 0;
    for (let i = 0; i < maxRounds; i++) {
      const p = this.round(NO_FAULTS);
      quiet = p.steps.length === 0 && p.progress.movesInFlight === 0 ? quiet + 1 : 0;
      if (quiet >= quietRounds) return i + 1;
    }
    return -1;
  }
}
