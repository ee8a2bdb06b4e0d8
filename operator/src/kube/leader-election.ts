/**
 * Leader election on a coordination.k8s.io/v1 Lease (client-go leaderelection semantics), so two
 * or more operator replicas are safe: only the holder runs workers.
 *
 *  - A candidate takes the Lease when it does not exist, is released (no holder), or its record
 *    has not changed for leaseDuration as measured on OUR monotonic clock since we first saw it
 *    (never by comparing the holder's timestamps with our wall clock: clocks may be skewed).
 *  - Every write is a PUT with the resourceVersion we read (optimistic concurrency): two
 *    candidates cannot both win.
 *  - The leader renews every retryPeriod; if it cannot renew for renewDeadline (< leaseDuration)
 *    it stops leading before anyone else may take over.
 *  - On shutdown the holder releases the Lease so a standby takes over at once.
 */
import type { Logger } from 'pino';
import { isConflict, isNotFound, type KubeClient, type KubeObject } from './kube-client.ts';
import { RESOURCES } from './resources.ts';

export interface LeaderElectionConfig {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

type Lease = KubeObject & {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
};

/** RFC 3339 with microseconds (metav1.MicroTime). */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly c: LeaderElectionConfig;
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly monotonic: () => number;
  private readonly wall: () => Date;
  private observedRecord = '';
  private observedAt = Number.NEGATIVE_INFINITY;
  private lastRenewAt = Number.NEGATIVE_INFINITY;
  private holding = false;

  constructor(client: KubeClient, c: LeaderElectionConfig, log: Logger, clocks: { monotonic: () => number; wall: () => Date }) {
    if (!(c.leaseDurationMs > c.renewDeadlineMs && c.renewDeadlineMs > c.retryPeriodMs)) {
      throw new Error('leader election needs leaseDuration > renewDeadline > retryPeriod');
    }
    this.client = client;
    this.c = c;
    this.log = log.child({ lease: `${c.namespace}/${c.name}`, identity: c.identity });
    this.monotonic = clocks.monotonic;
    this.wall = clocks.wall;
  }

  /** True while we hold the Lease and renewed it within renewDeadline. */
  isLeader(): boolean {
    return this.holding && this.monotonic() - this.lastRenewAt < this.c.renewDeadlineMs;
  }

  /**
   * Campaigns until `signal` aborts. `lead(stopSignal)` runs while we lead; it must return once
   * `stopSignal` aborts (lost Lease or shutdown). Then we campaign again.
   */
  async run(signal: AbortSignal, lead: (stop: AbortSignal) => Promise<void>): Promise<void> {
    while (!signal.aborted) {
      if (!(await this.tryAcquireOrRenew())) {
        await sleep(this.c.retryPeriodMs, signal);
        continue;
      }
      this.log.info('became leader');
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      const leading = lead(stop.signal).catch((e) => this.log.error({ err: e }, 'leader work failed'));
      while (!stop.signal.aborted) {
        await sleep(this.c.retryPeriodMs, stop.signal);
        if (stop.signal.aborted) break;
        const ok = await this.tryAcquireOrRenew();
        if (!ok && this.monotonic() - this.lastRenewAt >= this.c.renewDeadlineMs) {
          this.log.warn('could not renew the Lease within renewDeadline: stopping leading');
          stop.abort();
        }
      }
      this.holding = false;
      signal.removeEventListener('abort', onAbort);
      await leading;
      this.log.info('stopped leading');
      if (signal.aborted) await this.release();
    }
  }

  /** One attempt; true if we hold the Lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.monotonic();
    const wallNow = microTime(this.wall());
    let lease: Lease | undefined;
    try {
      lease = await this.client.getOrUndefined<Lease>(RESOURCES.Lease, this.c.namespace, this.c.name);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot read the Lease');
      return false;
    }
    const leaseDurationSeconds = Math.ceil(this.c.leaseDurationMs / 1000);
    if (!lease) {
      try {
        await this.client.create<Lease>({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.c.name, namespace: this.c.namespace },
          spec: { holderIdentity: this.c.identity, leaseDurationSeconds, acquireTime: wallNow, renewTime: wallNow, leaseTransitions: 0 },
        });
        this.renewed(now);
        return true;
      } catch (e) {
        if (!isConflict(e)) this.log.warn({ err: (e as Error).message }, 'cannot create the Lease');
        return false;
      }
    }
    const spec = lease.spec ?? {};
    // Any write (a renewal) changes the resourceVersion, even if the holder's wall clock is stuck.
    const record = JSON.stringify([lease.metadata?.resourceVersion ?? '', spec.holderIdentity ?? '', spec.renewTime ?? '']);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = now;
    }
    const holder = spec.holderIdentity ?? '';
    const iHold = holder === this.c.identity;
    const duration = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (!iHold && holder !== '' && now - this.observedAt < duration) {
      this.holding = false;
      return false; // held by someone alive
    }
    const next: Lease = {
      ...lease,
      spec: {
        holderIdentity: this.c.identity,
        leaseDurationSeconds,
        acquireTime: iHold ? spec.acquireTime : wallNow,
        renewTime: wallNow,
        leaseTransitions: iHold ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      await this.client.replace(next);
      if (!iHold) this.log.info({ previous: holder || '(none)' }, 'took over the Lease');
      this.renewed(now);
      return true;
    } catch (e) {
      if (!isConflict(e) && !isNotFound(e)) this.log.warn({ err: (e as Error).message }, 'cannot update the Lease');
      return false;
    }
  }

  private renewed(now: number): void {
    this.lastRenewAt = now;
    this.holding = true;
  }

  /** Gives the Lease up (holder cleared) so that a standby does not wait for it to expire. */
  async release(): Promise<void> {
    try {
      const lease = await this.client.getOrUndefined<Lease>(RESOURCES.Lease, this.c.namespace, this.c.name);
      if (!lease || lease.spec?.holderIdentity !== this.c.identity) return;
      this.holding = false;
      await this.client.replace<Lease>({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(this.wall()) } });
      this.log.info('released the Lease');
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'cannot release the Lease');
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
