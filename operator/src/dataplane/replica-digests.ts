/**
 * Replica digests for the placement controller (LESSONS #10; node side in
 * node/src/membership/replica-digest.ts): a partition's leader digests every replica at one read
 * timestamp (`PartitionDigest`), and the controller
 *  - checks them before a cutover: a `removeReplica` step (the end of a move) runs only if the
 *    replicas that answered agree (StepExecutor), so data is never dropped from the one replica
 *    that held it right while another is missing it;
 *  - audits settled partitions in the background, one at a time (`DigestAuditor`): partitions
 *    whose generation changed first (a move, a split or a merge), then the least recently
 *    audited, at most one every `intervalMs`; the results feed the invariant checker
 *    (`REPLICAS_DISAGREE` in status and metrics).
 * A replica that does not answer, or a partition larger than a digest reads, is not compared.
 */
import type { Observation, PartitionView } from '../placement/types.ts';
import type { AdminCaller } from './admin-client.ts';
import type { ObservedCluster } from './observer.ts';

/** A digest reads the whole partition on every replica: give it time. */
export const DIGEST_DEADLINE_MS = 60_000;
export const DIGEST_AUDIT_INTERVAL_MS = 15_000;
/**
 * Partition bytes the background audit reads per second, on average (each replica reads the whole
 * partition): after auditing a partition of `sizeBytes`, the next audit waits at least
 * `sizeBytes / DIGEST_AUDIT_BYTES_PER_SEC` seconds (and `intervalMs`). A digest is a scan of the
 * partition on the nodes' event loops; unpaced, back-to-back audits of large partitions would
 * take a steady share of every node's CPU from clients (CockroachDB's consistency checker is rate
 * limited for the same reason). Cutover checks (StepExecutor) are not paced.
 */
export const DIGEST_AUDIT_BYTES_PER_SEC = 2 * 1024 * 1024;

export interface ReplicaDigestResult {
  readonly nodeId: string;
  readonly ok: boolean;
  readonly keyCount: number;
  readonly checksum: string;
  readonly complete: boolean;
  readonly error: string;
}

export interface PartitionDigests {
  readonly partitionId: number;
  /** The partition's generation when it was digested (a later move or split makes it stale). */
  readonly generation: bigint;
  readonly readTs: bigint;
  readonly atMs: number;
  readonly replicas: readonly ReplicaDigestResult[];
}

interface Wire {
  readTs: string;
  replicas: { nodeId: string; ok: boolean; keyCount: string; checksum: string; complete: boolean; error: string }[];
}

/** The registry address of a node, if it has one. */
export function addressOf(oc: ObservedCluster): (id: string) => string | undefined {
  return (id) => oc.registry.find((n) => n.id === id)?.grpcAddress || undefined;
}

/** Where to send a call meant for a partition's leader (any replica answers NOT_LEADER with a hint). */
export function leaderAddress(oc: ObservedCluster, partition: number): string {
  const p = oc.observation.partitions.find((x) => x.id === partition);
  const a = p?.leader === undefined ? undefined : addressOf(oc)(p.leader);
  return a ?? addressOf(oc)(p?.replicas[0]?.nodeId ?? '') ?? oc.mapSource;
}

/** Asks the partition's leader for every replica's digest at one read timestamp. */
export async function fetchDigests(
  admin: AdminCaller,
  oc: ObservedCluster,
  p: Pick<PartitionView, 'id' | 'generation'>,
  nowMs: number,
): Promise<PartitionDigests> {
  const w = await admin.callLeader<Wire>(leaderAddress(oc, p.id), 'PartitionDigest', { partitionId: p.id }, addressOf(oc), DIGEST_DEADLINE_MS);
  return {
    partitionId: p.id,
    generation: p.generation,
    readTs: BigInt(w.readTs),
    atMs: nowMs,
    replicas: w.replicas.map((r) => ({ nodeId: r.nodeId, ok: r.ok, keyCount: Number(r.keyCount), checksum: r.checksum, complete: r.complete, error: r.error })),
  };
}

/** Replicas that can be compared: answered, and digested completely. */
const comparable = (d: PartitionDigests) => d.replicas.filter((r) => r.ok && r.complete);

/** A message naming two replicas that disagree, or undefined when every comparable one agrees. */
export function disagreement(d: PartitionDigests): string | undefined {
  const [first, ...rest] = comparable(d);
  const other = rest.find((r) => first !== undefined && (r.keyCount !== first.keyCount || r.checksum !== first.checksum));
  if (first === undefined || other === undefined) return undefined;
  return `replicas of partition ${d.partitionId} disagree at read timestamp ${d.readTs}: ${first.nodeId} has ${first.keyCount} keys (checksum ${first.checksum.slice(0, 12)}), ${other.nodeId} has ${other.keyCount} keys (checksum ${other.checksum.slice(0, 12)})`;
}

export interface DigestAuditorOptions {
  readonly admin: AdminCaller;
  /** The shortest time between two audits' starts (default DIGEST_AUDIT_INTERVAL_MS). */
  readonly intervalMs?: number;
  /** Average partition bytes audited per second, at most (default DIGEST_AUDIT_BYTES_PER_SEC). */
  readonly bytesPerSec?: number;
  readonly now?: () => number;
  readonly log?: (msg: string) => void;
}

export class DigestAuditor {
  private readonly o: DigestAuditorOptions;
  private readonly latest = new Map<number, PartitionDigests>();
  private running: Promise<void> | undefined;
  /** When the next audit may start (the interval and the byte pacing of the last one). */
  private nextStartMs = Number.NEGATIVE_INFINITY;
  private count = 0;

  constructor(o: DigestAuditorOptions) {
    this.o = o;
  }

  /** Partitions audited so far. */
  get audited(): number {
    return this.count;
  }

  /** Starts one audit in the background if none runs and the last one's interval and pacing passed. */
  maybeAudit(oc: ObservedCluster): void {
    const now = (this.o.now ?? Date.now)();
    if (this.running !== undefined || now < this.nextStartMs) return;
    const p = this.next(oc.observation);
    if (p === undefined) return;
    const pacedMs = (p.sizeBytes * 1000) / (this.o.bytesPerSec ?? DIGEST_AUDIT_BYTES_PER_SEC);
    this.nextStartMs = now + Math.max(this.o.intervalMs ?? DIGEST_AUDIT_INTERVAL_MS, pacedMs);
    this.running = fetchDigests(this.o.admin, oc, p, now)
      .then((d) => {
        this.latest.set(p.id, d);
        this.count++;
        const why = disagreement(d);
        if (why !== undefined) this.o.log?.(`digest audit: ${why}`);
      })
      .catch((e: unknown) => this.o.log?.(`digest audit of partition ${p.id}: ${(e as Error).message}`))
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Waits for the audit under way, if any. */
  async idle(): Promise<void> {
    await this.running;
  }

  /** The observation with each partition's latest digests (of its current generation) on its replicas. */
  attach(o: Observation): Observation {
    return {
      ...o,
      partitions: o.partitions.map((p) => {
        const d = this.latest.get(p.id);
        if (d === undefined || d.generation !== p.generation) return p;
        const by = new Map(comparable(d).map((r) => [r.nodeId, r]));
        return {
          ...p,
          replicas: p.replicas.map((r) => {
            const x = by.get(r.nodeId);
            return x === undefined ? r : { ...r, digest: { readTs: d.readTs, keyCount: x.keyCount, checksum: x.checksum } };
          }),
        };
      }),
    };
  }

  /** A settled partition (a leader, no learner) not audited at its generation, else the least recently audited. */
  private next(o: Observation): PartitionView | undefined {
    const settled = o.partitions.filter((p) => p.leader !== undefined && p.replicas.every((r) => r.role === 'voter'));
    const fresh = settled.find((p) => this.latest.get(p.id)?.generation !== p.generation);
    if (fresh !== undefined) return fresh;
    return [...settled].sort((a, b) => (this.latest.get(a.id)?.atMs ?? 0) - (this.latest.get(b.id)?.atMs ?? 0))[0];
  }
}
