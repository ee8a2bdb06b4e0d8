/**
 * A small model of the data plane for planner tests: partitions with Raft-like membership,
 * learners that catch up over ticks, leaders, node states, splits and merges. It behaves like
 * an honest executor + nodes: it refuses what a node would refuse (stale generation, promoting a
 * non-learner, a transfer to a lagging voter) and RECORDS as violations what would lose data or
 * availability (removing a voter without RF healthy caught-up voters left, promoting a lagging
 * learner, removing the leader without a transfer, merging replicas that are not co-located,
 * removing a node that still holds replicas). Deterministic: randomness comes from `Prng`.
 */
import { HASH_SPACE_END } from '../cluster-view.ts';
import type { NodeHealth, NodeId, NodeState, Observation, PartitionId, ReplicaRole, Step } from '../types.ts';

export class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export interface SimReplica {
  nodeId: NodeId;
  role: ReplicaRole;
  matchIndex: number;
}

export interface SimPartition {
  id: PartitionId;
  start: bigint;
  end: bigint;
  generation: bigint;
  replicas: SimReplica[];
  leader: NodeId | undefined;
  commitIndex: number;
  sizeBytes: number;
  qps: number;
  rangeChangedAtMs: number | undefined;
  leaderChangedAtMs: number | undefined;
}

export interface SimNode {
  id: NodeId;
  zone: string | undefined;
  weight: number;
  health: NodeHealth;
  downSinceMs: number | undefined;
  state: NodeState;
  capacityBytes: number;
}

export interface SimOptions {
  readonly nodes: readonly { readonly id: string; readonly zone?: string; readonly weight?: number; readonly capacityBytes?: number }[];
  readonly partitions: number;
  readonly replicationFactor: number;
  /** Initial replicas per partition (defaults to round-robin over the nodes). */
  readonly placement?: (index: number) => readonly string[];
  readonly sizeBytes?: (index: number) => number;
  readonly catchUpLagMax?: number;
}

export class SimCluster {
  readonly nodes = new Map<NodeId, SimNode>();
  partitions: SimPartition[] = [];
  readonly violations: string[] = [];
  readonly applied: string[] = [];
  readonly rf: number;
  readonly catchUpLagMax: number;
  nowMs = 1_000_000;
  private nextId: number;

  constructor(o: SimOptions) {
    this.rf = o.replicationFactor;
    this.catchUpLagMax = o.catchUpLagMax ?? 16;
    for (const n of o.nodes) this.addNode(n.id, n);
    const ids = [...this.nodes.keys()];
    const count = BigInt(o.partitions);
    for (let i = 0; i < o.partitions; i++) {
      const reps = (o.placement?.(i) ?? Array.from({ length: o.replicationFactor }, (_, k) => ids[(i + k) % ids.length] as string)) as NodeId[];
      this.partitions.push({
        id: i as PartitionId,
        start: (BigInt(i) * HASH_SPACE_END) / count,
        end: (BigInt(i + 1) * HASH_SPACE_END) / count,
        generation: 1n,
        replicas: reps.map((nodeId) => ({ nodeId, role: 'voter', matchIndex: 10 })),
        leader: reps[0],
        commitIndex: 10,
        sizeBytes: o.sizeBytes?.(i) ?? 1_000,
        qps: 1,
        rangeChangedAtMs: undefined,
        leaderChangedAtMs: undefined,
      });
    }
    this.nextId = o.partitions;
  }

  addNode(id: string, o: { zone?: string | undefined; weight?: number | undefined; capacityBytes?: number | undefined } = {}): void {
    this.nodes.set(id as NodeId, {
      id: id as NodeId,
      zone: o.zone,
      weight: o.weight ?? 1,
      health: 'up',
      downSinceMs: undefined,
      state: 'active',
      capacityBytes: o.capacityBytes ?? 1e12,
    });
  }

  partition(id: number): SimPartition | undefined {
    return this.partitions.find((p) => p.id === id);
  }

  private usedBytes(n: NodeId): number {
    return this.partitions.filter((p) => p.replicas.some((r) => r.nodeId === n)).reduce((s, p) => s + p.sizeBytes, 0);
  }

  observe(): Observation {
    return {
      epoch: 1n,
      nextPartitionId: this.nextId,
      nodes: [...this.nodes.values()].map((n) => ({
        id: n.id,
        zone: n.zone,
        weight: n.weight,
        health: n.health,
        downSinceMs: n.downSinceMs,
        state: n.state,
        capacityBytes: n.capacityBytes,
        freeBytes: n.capacityBytes - this.usedBytes(n.id),
        report:
          n.health === 'up' ? { nodeId: n.id, replicasHosted: this.partitions.filter((p) => p.replicas.some((r) => r.nodeId === n.id)).length } : undefined,
      })),
      partitions: this.partitions.map((p) => ({
        id: p.id,
        start: p.start,
        end: p.end,
        generation: p.generation,
        replicas: p.replicas.map((r) => ({ ...r })),
        leader: p.leader,
        commitIndex: p.commitIndex,
        sizeBytes: p.sizeBytes,
        qps: p.qps,
        rangeChangedAtMs: p.rangeChangedAtMs,
        leaderChangedAtMs: p.leaderChangedAtMs,
      })),
    };
  }

  private healthy(n: NodeId): boolean {
    return this.nodes.get(n)?.health === 'up';
  }

  private caughtUp(p: SimPartition, r: SimReplica): boolean {
    return this.healthy(r.nodeId) && r.matchIndex + this.catchUpLagMax >= p.commitIndex;
  }

  /**
   * Applies one step like an honest executor + node would; returns 'ok' or why it was refused.
   * The node re-checks the safety predicates at execution time (ADR 0009, "strict reconfig
   * check") and refuses an unsafe change; `fresh` says the step was planned on the current
   * state, so an unsafe fresh step is also a PLANNER bug and recorded as a violation. A late
   * step (planned on an older observation) may legitimately be unsafe by now: it is refused.
   */
  apply(step: Step, fresh = true): string {
    const r = this.applyInner(step, fresh);
    this.applied.push(
      `${this.nowMs} ${fresh ? '' : '(late) '}${step.type} ${JSON.stringify(step, (_, v) => (typeof v === 'bigint' ? v.toString() : v))} -> ${r}`,
    );
    return r;
  }

  private applyInner(step: Step, fresh: boolean): string {
    const violation = (m: string) => {
      if (fresh) this.violations.push(`${step.type}: ${m}`);
    };
    switch (step.type) {
      case 'addLearner':
      case 'promoteLearner':
      case 'removeReplica': {
        const p = this.partition(step.partitionId);
        if (!p) return 'no such partition';
        if (p.generation !== step.expectedGeneration) return 'stale generation';
        if (p.leader === undefined) return 'no leader';
        const rep = p.replicas.find((x) => x.nodeId === step.nodeId);
        if (step.type === 'addLearner') {
          if (rep) return 'already a member';
          if (this.nodes.get(step.nodeId)?.state !== 'active') return 'node not active';
          p.replicas.push({ nodeId: step.nodeId, role: 'learner', matchIndex: 0 });
        } else if (step.type === 'promoteLearner') {
          if (rep?.role !== 'learner') return 'not a learner';
          if (!this.caughtUp(p, rep)) {
            violation(`promoted lagging learner ${step.nodeId} of partition ${p.id} (match ${rep.matchIndex}, commit ${p.commitIndex})`);
            return 'refused: learner is not caught up';
          }
          rep.role = 'voter';
        } else {
          if (!rep) return 'not a member';
          if (rep.role === 'voter') {
            const left = p.replicas.filter((x) => x.role === 'voter' && x.nodeId !== step.nodeId && this.caughtUp(p, x)).length;
            if (left < this.rf) {
              violation(`removed voter ${step.nodeId} of partition ${p.id} leaving ${left} healthy caught-up voters (RF ${this.rf})`);
              return `refused: would leave ${left} caught-up voters`;
            }
            if (p.leader === step.nodeId) {
              violation(`removed the leader ${step.nodeId} of partition ${p.id} without a transfer`);
              return 'refused: transfer leadership first';
            }
          }
          p.replicas = p.replicas.filter((x) => x.nodeId !== step.nodeId);
        }
        p.generation += 1n;
        return 'ok';
      }
      case 'transferLeader': {
        const p = this.partition(step.partitionId);
        if (!p) return 'no such partition';
        const rep = p.replicas.find((x) => x.nodeId === step.to);
        if (rep?.role !== 'voter' || !this.caughtUp(p, rep)) return 'target is not a caught-up voter';
        if (p.leader !== step.to) {
          p.leader = step.to;
          p.leaderChangedAtMs = this.nowMs;
        }
        return 'ok';
      }
      case 'split': {
        const p = this.partition(step.partitionId);
        if (!p) return 'no such partition';
        if (p.generation !== step.expectedGeneration) return 'stale generation';
        if (!(step.atHash > p.start && step.atHash < p.end)) return 'split point outside the range';
        if (p.replicas.some((x) => x.role === 'learner')) return 'membership change in progress';
        const frac = Number(step.atHash - p.start) / Number(p.end - p.start);
        if (step.newPartitionId < this.nextId) return 'partition id taken';
        this.nextId = step.newPartitionId + 1;
        const right: SimPartition = {
          ...p,
          id: step.newPartitionId,
          start: step.atHash,
          generation: p.generation + 1n,
          replicas: p.replicas.map((x) => ({ ...x })),
          sizeBytes: Math.round(p.sizeBytes * (1 - frac)),
          qps: p.qps * (1 - frac),
          rangeChangedAtMs: this.nowMs,
        };
        p.end = step.atHash;
        p.sizeBytes -= right.sizeBytes;
        p.qps -= right.qps;
        p.generation += 1n;
        p.rangeChangedAtMs = this.nowMs;
        this.partitions.push(right);
        return 'ok';
      }
      case 'merge': {
        const a = this.partition(step.left);
        const b = this.partition(step.right);
        if (!a || !b) return 'no such partition';
        if (a.generation !== step.expectedGenerations[0] || b.generation !== step.expectedGenerations[1]) return 'stale generation';
        if (a.end !== b.start) return 'not adjacent';
        const va = a.replicas.map((x) => `${x.nodeId}/${x.role}`).sort();
        const vb = b.replicas.map((x) => `${x.nodeId}/${x.role}`).sort();
        if (va.join() !== vb.join()) {
          violation(`merge of ${a.id} and ${b.id} whose replicas differ (${va} vs ${vb})`);
          return 'replicas not co-located';
        }
        a.end = b.end;
        a.sizeBytes += b.sizeBytes;
        a.qps += b.qps;
        a.generation += 1n;
        a.rangeChangedAtMs = this.nowMs;
        this.partitions = this.partitions.filter((x) => x !== b);
        return 'ok';
      }
      case 'drainNode': {
        const n = this.nodes.get(step.nodeId);
        if (!n) return 'no such node';
        if (n.state === 'active') n.state = 'draining';
        return 'ok';
      }
      case 'removeNode': {
        const n = this.nodes.get(step.nodeId);
        if (!n) return 'no such node';
        const held = this.partitions.filter((p) => p.replicas.some((x) => x.nodeId === n.id)).length;
        if (held > 0) violation(`removed node ${n.id} that still holds ${held} replica(s)`);
        n.state = 'removed';
        return 'ok';
      }
    }
  }

  private electIfNeeded(p: SimPartition): void {
    if (p.leader !== undefined && this.healthy(p.leader)) return;
    const next = p.replicas.filter((x) => x.role === 'voter' && this.caughtUp(p, x)).sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1))[0];
    // A majority of voters must be healthy to elect anyone.
    const vs = p.replicas.filter((x) => x.role === 'voter');
    const up = vs.filter((x) => this.healthy(x.nodeId)).length;
    if (next && up * 2 > vs.length) {
      p.leader = next.nodeId;
      p.leaderChangedAtMs = this.nowMs;
    } else p.leader = undefined;
  }

  setHealth(id: string, health: NodeHealth): void {
    const n = this.nodes.get(id as NodeId);
    if (!n) throw new Error(`no node ${id}`);
    n.health = health;
    n.downSinceMs = health === 'up' ? undefined : (n.downSinceMs ?? this.nowMs);
    for (const p of this.partitions) this.electIfNeeded(p);
  }

  /** Time passes: writes commit, healthy replicas replicate, learners catch up at random speed. */
  tick(rng: Prng, ms = 1_000): void {
    this.nowMs += ms;
    for (const p of this.partitions) {
      if (p.leader === undefined) {
        this.electIfNeeded(p);
        continue;
      }
      p.commitIndex += 1 + rng.int(3);
      for (const r of p.replicas) {
        if (!this.healthy(r.nodeId)) continue;
        r.matchIndex = r.role === 'voter' ? p.commitIndex : Math.min(p.commitIndex, r.matchIndex + 5 + rng.int(40));
      }
    }
  }
}
