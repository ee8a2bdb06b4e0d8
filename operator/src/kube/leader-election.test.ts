import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { KubeApiError, type KubeClient, type KubeObject } from './kube-client.ts';
import { LeaderElector } from './leader-election.ts';

/** An in-memory Lease store with the API server's optimistic concurrency. */
function fakeApi() {
  let lease: (KubeObject & { spec: Record<string, unknown> }) | undefined;
  let rv = 0;
  const api = {
    async getOrUndefined() {
      return lease ? structuredClone(lease) : undefined;
    },
    async create(o: KubeObject & { spec: Record<string, unknown> }) {
      if (lease) throw new KubeApiError(409, 'AlreadyExists', 'exists');
      lease = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++rv) } };
      return structuredClone(lease);
    },
    async replace(o: KubeObject & { spec: Record<string, unknown> }) {
      if (!lease) throw new KubeApiError(404, 'NotFound', 'gone');
      if (o.metadata?.resourceVersion !== lease.metadata?.resourceVersion) throw new KubeApiError(409, 'Conflict', 'conflict');
      lease = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++rv) } };
      return structuredClone(lease);
    },
  };
  return { api: api as unknown as KubeClient, holder: () => lease?.spec.holderIdentity as string | undefined, lease: () => lease };
}

const cfg = (identity: string) => ({ namespace: 'ks', name: 'op', identity, leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500 });
const log = pino({ level: 'silent' });

describe('LeaderElector', () => {
  it('one candidate wins; the other waits while the record keeps changing, and takes over once it stops for leaseDuration (its own clock)', async () => {
    const { api, holder, lease } = fakeApi();
    let tA = 0;
    let tB = 1_000_000; // B's monotonic clock has nothing to do with A's
    const wall = () => new Date('2026-01-01T00:00:00Z'); // wall clocks are never compared
    const a = new LeaderElector(api, cfg('a'), log, { monotonic: () => tA, wall });
    const b = new LeaderElector(api, cfg('b'), log, { monotonic: () => tB, wall });
    expect(await a.tryAcquireOrRenew()).toBe(true);
    expect(await b.tryAcquireOrRenew()).toBe(false);
    expect(holder()).toBe('a');
    expect(a.isLeader()).toBe(true);
    for (let i = 0; i < 10; i++) {
      tA += 500;
      tB += 500;
      expect(await a.tryAcquireOrRenew()).toBe(true); // renewals change the record ...
      expect(await b.tryAcquireOrRenew()).toBe(false); // ... so B keeps waiting
    }
    // A stops renewing (dead). B sees an unchanged record for leaseDuration, then takes over.
    tB += 3999;
    expect(await b.tryAcquireOrRenew()).toBe(false);
    tB += 2;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(holder()).toBe('b');
    expect(lease()?.spec.leaseTransitions).toBe(1);
    // A wakes up: its renewal is refused (held by B, recently changed), and it is no longer leader after renewDeadline.
    tA += 1;
    expect(await a.tryAcquireOrRenew()).toBe(false);
    tA += 3000;
    expect(a.isLeader()).toBe(false);
  });

  it('two candidates racing for a free Lease: optimistic concurrency lets exactly one win', async () => {
    const { api, holder } = fakeApi();
    const clocks = { monotonic: () => 0, wall: () => new Date() };
    const a = new LeaderElector(api, cfg('a'), log, clocks);
    const b = new LeaderElector(api, cfg('b'), log, clocks);
    const results = await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(holder()).toBe(results[0] ? 'a' : 'b');
  });

  it('a released Lease (no holder) is taken at once', async () => {
    const { api, holder } = fakeApi();
    let t = 0;
    const a = new LeaderElector(api, cfg('a'), log, { monotonic: () => t, wall: () => new Date() });
    const b = new LeaderElector(api, cfg('b'), log, { monotonic: () => t, wall: () => new Date() });
    await a.tryAcquireOrRenew();
    expect(await b.tryAcquireOrRenew()).toBe(false);
    await a.release();
    t += 1;
    expect(await b.tryAcquireOrRenew()).toBe(true);
    expect(holder()).toBe('b');
  });

  it('refuses timings where the leader could act after another replica may take over', () => {
    const { api } = fakeApi();
    const clocks = { monotonic: () => 0, wall: () => new Date() };
    expect(() => new LeaderElector(api, { ...cfg('a'), renewDeadlineMs: 4000 }, log, clocks)).toThrow(/leaseDuration > renewDeadline/);
  });
});
