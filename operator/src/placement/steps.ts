/**
 * "Am I finished?" for every step, decided from a fresh observation only (PD's step.go idea):
 * the executor can resend a step after a crash, and a restarted controller that re-plans from
 * the observation picks up exactly where the previous one stopped.
 */
import type { Observation, Step } from './types.ts';

export function isDone(step: Step, o: Observation): boolean {
  const part = (id: number) => o.partitions.find((p) => p.id === id);
  switch (step.type) {
    case 'addLearner':
      // A learner that was already promoted also counts: the step's effect is there.
      return part(step.partitionId)?.replicas.some((r) => r.nodeId === step.nodeId) ?? false;
    case 'promoteLearner':
      return part(step.partitionId)?.replicas.some((r) => r.nodeId === step.nodeId && r.role === 'voter') ?? false;
    case 'removeReplica': {
      const p = part(step.partitionId);
      return p !== undefined && !p.replicas.some((r) => r.nodeId === step.nodeId);
    }
    case 'transferLeader':
      return part(step.partitionId)?.leader === step.to;
    case 'split': {
      const p = part(step.partitionId);
      return p !== undefined && p.end === step.atHash && o.partitions.some((q) => q.start === step.atHash);
    }
    case 'merge': {
      const l = part(step.left);
      return l !== undefined && l.end === step.rightEnd && part(step.right) === undefined;
    }
    case 'drainNode': {
      const n = o.nodes.find((x) => x.id === step.nodeId);
      return n !== undefined && n.state !== 'active';
    }
    case 'removeNode': {
      const n = o.nodes.find((x) => x.id === step.nodeId);
      return n === undefined || n.state === 'removed';
    }
  }
}

/** A short stable label for logs, events and de-duplication. */
export function stepKey(step: Step): string {
  switch (step.type) {
    case 'addLearner':
    case 'promoteLearner':
    case 'removeReplica':
      return `${step.type}:${step.partitionId}:${step.nodeId}`;
    case 'transferLeader':
      return `${step.type}:${step.partitionId}:${step.to}`;
    case 'split':
      return `${step.type}:${step.partitionId}@${step.atHash}`;
    case 'merge':
      return `${step.type}:${step.left}+${step.right}`;
    case 'drainNode':
    case 'removeNode':
      return `${step.type}:${step.nodeId}`;
  }
}
