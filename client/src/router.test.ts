import { KeyVaError } from '@keyva/proto/errors';
import { describe, expect, test } from 'vitest';
import { keyHash, type NodeId, PartitionMap, tagHash, uniformPartitions } from './keyspace/index.ts';
import { REDIRECTS_AT_ONCE_MAX, Router } from './router.ts';

const nodes = [
  { id: 'n1' as NodeId, grpcAddress: '10.0.0.1:7379', httpAddress: '' },
  { id: 'n2' as NodeId, grpcAddress: '10.0.0.2:7379', httpAddress: '' },
  { id: 'n3' as NodeId, grpcAddress: '10.0.0.3:7379', httpAddress: '' },
];

/** Four partitions; partition i led by leaders[i]. */
function mapOf(epoch: bigint, leaders: string[], ns = nodes): PartitionMap {
  const parts = uniformPartitions(leaders.length).map((p, i) => ({ ...p, leaderHint: leaders[i] as NodeId }));
  return new PartitionMap(epoch, parts, ns);
}

function fixture(initial?: PartitionMap) {
  const fetches: string[] = [];
  let next: PartitionMap | Error | undefined = initial;
  let gate: Promise<void> = Promise.resolve();
  const router = new Router({
    seeds: ['seed-a:7379', 'seed-b:7379'],
    refreshTimeoutMs: 1000,
    fetchMap: async (address) => {
      fetches.push(address);
      await gate;
      if (next instanceof Error) throw next;
      if (next === undefined) throw new KeyVaError('UNAVAILABLE');
      return next;
    },
  });
  return {
    router,
    fetches,
    serve(m: PartitionMap | Error | undefined) {
      next = m;
    },
    hold(): () => void {
      let release!: () => void;
      gate = new Promise<void>((r) => {
        release = r;
      });
      return release;
    },
  };
}

/** A key whose hash lands in partition `i` of 4 uniform partitions. */
function keyIn(i: number): Buffer {
  for (let n = 0; ; n++) {
    const k = Buffer.from(`key-${n}`);
    if (Number(keyHash(k) >> 62n) === i) return k;
  }
}

const notLeader = (details: Record<string, string>) => new KeyVaError('NOT_LEADER', 'not leader', details);

describe('Router', () => {
  test('without a map, rotates over the seed endpoints', () => {
    const { router } = fixture();
    expect(router.route(Buffer.from('a')).address).toBe('seed-a:7379');
    expect(router.route(Buffer.from('a')).address).toBe('seed-b:7379');
    expect(router.route(Buffer.from('a')).partitionId).toBeUndefined();
  });

  test('routes a key to its partition leader by hash', async () => {
    const f = fixture(mapOf(1n, ['n1', 'n2', 'n3', 'n1']));
    await f.router.refresh();
    for (const [i, addr] of [
      [0, '10.0.0.1:7379'],
      [1, '10.0.0.2:7379'],
      [2, '10.0.0.3:7379'],
      [3, '10.0.0.1:7379'],
    ] as const) {
      const r = f.router.route(keyIn(i));
      expect(r.partitionId).toBe(i);
      expect(r.address).toBe(addr);
    }
  });

  test('keys of one hash tag route together, like the tag itself', async () => {
    const f = fixture(mapOf(1n, ['n1', 'n2', 'n3', 'n1']));
    await f.router.refresh();
    const tagRoute = f.router.routeTag(Buffer.from('user42'));
    expect(f.router.route(Buffer.from('{user42}:a'))).toEqual(tagRoute);
    expect(f.router.route(Buffer.from('x{user42}:b'))).toEqual(tagRoute);
    expect(f.router.routeHash(tagHash(Buffer.from('user42')))).toEqual(tagRoute);
  });

  test('falls back to a seed when the leader is unknown or has no address', async () => {
    const f = fixture(mapOf(1n, ['n9', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    expect(f.router.route(keyIn(0)).address).toMatch(/^seed-/);
  });

  test('NOT_LEADER with a known leader hint redirects at once, without a refresh', async () => {
    const f = fixture(mapOf(1n, ['n1', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    const k = keyIn(2);
    const before = f.router.route(k);
    const immediate = await f.router.onError(notLeader({ epoch: '1', leaderHint: 'n3' }), before, Date.now() + 1000);
    expect(immediate).toBe(true);
    expect(f.router.route(k).address).toBe('10.0.0.3:7379');
    expect(f.router.route(keyIn(1)).address).toBe('10.0.0.1:7379');
    expect(f.fetches).toHaveLength(1);
  });

  test('a call follows at most REDIRECTS_AT_ONCE_MAX leader hints at once, then backs off (two nodes pointing at each other)', async () => {
    const f = fixture(mapOf(1n, ['n1', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    const k = keyIn(2);
    const answers: boolean[] = [];
    for (let retry = 1; retry <= REDIRECTS_AT_ONCE_MAX + 2; retry++) {
      const hint = retry % 2 === 1 ? 'n3' : 'n2';
      answers.push(await f.router.onError(notLeader({ epoch: '1', leaderHint: hint }), f.router.route(k), Date.now() + 1000, true, retry));
      // The hint is followed either way: the next attempt goes there, after a backoff or not.
      expect(f.router.route(k).address).toBe(hint === 'n3' ? '10.0.0.3:7379' : '10.0.0.2:7379');
    }
    expect(answers).toEqual([...Array(REDIRECTS_AT_ONCE_MAX).fill(true), false, false]);
  });

  test('NOT_LEADER hinting an unknown node, or a newer epoch, refreshes the map', async () => {
    const f = fixture(mapOf(1n, ['n1', 'n1', 'n1', 'n1'], nodes.slice(0, 2)));
    await f.router.refresh();
    const k = keyIn(0);
    f.serve(mapOf(2n, ['n3', 'n1', 'n1', 'n1']));
    const immediate = await f.router.onError(notLeader({ epoch: '2', leaderHint: 'n3' }), f.router.route(k), Date.now() + 1000);
    expect(immediate).toBe(true);
    expect(f.router.map?.epoch).toBe(2n);
    expect(f.router.route(k).address).toBe('10.0.0.3:7379');
  });

  test('WRONG_PARTITION refreshes the map', async () => {
    const f = fixture(mapOf(1n, ['n1', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    f.serve(mapOf(2n, ['n2', 'n2', 'n2', 'n2']));
    await f.router.onError(new KeyVaError('WRONG_PARTITION', 'stale', { epoch: '2' }), f.router.route(keyIn(0)), Date.now() + 1000);
    expect(f.router.route(keyIn(0)).address).toBe('10.0.0.2:7379');
  });

  test('WRONG_PARTITION with the same map again backs off; a newer map or another leader retries at once', async () => {
    const f = fixture(mapOf(3n, ['n1', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    const wrong = new KeyVaError('WRONG_PARTITION', 'merging', { epoch: '3' });
    // A fresh copy of the same map (a new object, same epoch, same leader): nothing changed, back off.
    f.serve(mapOf(3n, ['n1', 'n1', 'n1', 'n1']));
    expect(await f.router.onError(wrong, f.router.route(keyIn(0)), Date.now() + 1000)).toBe(false);
    // Same epoch, another leader hint for the partition: retry at once, there.
    f.serve(mapOf(3n, ['n2', 'n1', 'n1', 'n1']));
    expect(await f.router.onError(wrong, f.router.route(keyIn(0)), Date.now() + 1000)).toBe(true);
    // A newer epoch: retry at once.
    f.serve(mapOf(4n, ['n2', 'n1', 'n1', 'n1']));
    expect(await f.router.onError(wrong, f.router.route(keyIn(0)), Date.now() + 1000)).toBe(true);
  });

  test('a NOT_LEADER from a node behind our epoch is ignored (back off, no redirect)', async () => {
    const f = fixture(mapOf(5n, ['n1', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    const r = f.router.route(keyIn(0));
    expect(await f.router.onError(notLeader({ epoch: '4', leaderHint: 'n2' }), r, Date.now() + 1000)).toBe(false);
    expect(f.router.route(keyIn(0)).address).toBe('10.0.0.1:7379');
  });

  test('concurrent refreshes share one request (single flight)', async () => {
    const f = fixture(mapOf(1n, ['n1', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    f.fetches.length = 0;
    const release = f.hold();
    f.serve(mapOf(2n, ['n2', 'n2', 'n2', 'n2']));
    const route = f.router.route(keyIn(0));
    const all = Array.from({ length: 20 }, () => f.router.onError(new KeyVaError('WRONG_PARTITION', 'x', { epoch: '2' }), route, Date.now() + 1000));
    release();
    await Promise.all(all);
    expect(f.fetches).toHaveLength(1);
    expect(f.router.map?.epoch).toBe(2n);
  });

  test('never installs an older map over a newer one', async () => {
    const f = fixture(mapOf(3n, ['n1', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    f.serve(mapOf(2n, ['n2', 'n2', 'n2', 'n2']));
    await f.router.refresh();
    expect(f.router.map?.epoch).toBe(3n);
    expect(f.router.route(keyIn(0)).address).toBe('10.0.0.1:7379');
  });

  test('a refresh tries the next node when one fails, and reports failure when all do', async () => {
    const f = fixture();
    f.serve(new KeyVaError('UNAVAILABLE'));
    await expect(f.router.refresh(undefined, true)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(new Set(f.fetches)).toEqual(new Set(['seed-a:7379', 'seed-b:7379']));
    expect(await f.router.refresh()).toBeUndefined();
  });

  test('other errors do not redirect', async () => {
    const f = fixture(mapOf(1n, ['n1', 'n1', 'n1', 'n1']));
    await f.router.refresh();
    expect(await f.router.onError(new KeyVaError('DEADLINE_EXCEEDED'), f.router.route(keyIn(0)), Date.now() + 1000)).toBe(false);
  });
});

describe('Router with partitions on subsets of the nodes', () => {
  test('a partition with no known leader goes to one of its replicas (rotating), never to a node without one', () => {
    const f = fixture();
    const parts = uniformPartitions(4).map((p, i) => ({ ...p, replicas: i === 0 ? (['n2', 'n3'] as NodeId[]) : (['n1'] as NodeId[]) }));
    f.router.install(new PartitionMap(1n, parts, nodes));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(f.router.route(keyIn(0)).address);
    expect([...seen].sort()).toEqual(['10.0.0.2:7379', '10.0.0.3:7379']);
    expect(f.router.route(keyIn(1)).address).toBe('10.0.0.1:7379');
  });
});
