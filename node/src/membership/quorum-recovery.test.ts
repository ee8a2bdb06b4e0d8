/**
 * Unsafe quorum-loss recovery with two survivors of five (docs/adr/0012-unsafe-quorum-recovery.md)
 * on five real nodes in this process (RocksDB in temp dirs, real gRPC on 127.0.0.1, RF 5): three
 * nodes stop for good, so neither the meta group nor partition 0 has a quorum (2 of 5). The
 * recovery is refused when a live voter is not listed; then it runs on the survivor with the
 * newest log, naming both survivors: both end with voters [a, b] and identical logs up to the
 * recovery entries (which carry a term above every term either had seen), one of them leads,
 * writes and linearizable reads work through either, and every earlier write is there.
 * (The 3-node kill -9 case with real processes is `e2e/src/quorum-recovery.test.ts`.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UnsafeRecoverPartitionResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../net/free-port.ts';
import { until } from '../replication/testing/replication-cluster.ts';
import { type CallError, failure, startTestNode, type TestNode, unary } from '../testing/test-node.ts';

const WAIT_MS = 30_000;
const PARTITION = 0;
const GROUP = PARTITION + 1;
const IDS = ['a', 'b', 'c', 'd', 'e'];
const SURVIVORS = ['a', 'b'];

describe('unsafe recovery: two survivors of five', () => {
  const root = mkdtempSync(join(tmpdir(), 'keyva-quorum-recovery-'));
  const nodes = new Map<string, TestNode>();
  const acked = new Map<string, string>();
  const n = (id: string) => nodes.get(id) as TestNode;
  const recover = (via: string, req: object) =>
    unary<object, UnsafeRecoverPartitionResponseOut>(n(via).admin, 'UnsafeRecoverPartition', { partitionId: 0, metaGroup: false, ...req }, 30_000);

  /** Recovers on `first`, or on the survivor it names as having the newer log; retries while a leader is still believed in. */
  async function recoverOnNewest(first: string, req: object): Promise<{ via: string; res: UnsafeRecoverPartitionResponseOut }> {
    let via = first;
    const end = Date.now() + WAIT_MS;
    for (;;) {
      try {
        return { via, res: await recover(via, req) };
      } catch (e) {
        const err = e as CallError;
        if (err.meta.reason === 'notMostUpToDate' && err.meta.nodeId !== undefined) via = err.meta.nodeId;
        else if (err.meta.reason !== 'leaderPresent' || Date.now() > end) throw e;
        else await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  beforeAll(async () => {
    const ports = new Map<string, [number, number]>();
    for (const id of IDS) ports.set(id, [await freePort(), await freePort()]);
    const peers = IDS.map((id) => `${id}=127.0.0.1:${ports.get(id)?.[0]}`).join(',');
    for (const id of IDS) {
      const [grpcPort, httpPort] = ports.get(id) as [number, number];
      nodes.set(
        id,
        await startTestNode(
          'rocksdb',
          { nodeId: id, grpcPort, httpPort, peers, partitions: 1, raftTickMs: 50, replicationFactor: 5, leaderBalanceIntervalMs: 0 },
          join(root, id),
        ),
      );
    }
    await until(() => IDS.some((id) => n(id).node.raft?.status(GROUP)?.serving === true), WAIT_MS, 'a leader of partition 0');
    for (let i = 0; i < 20; i++) {
      await unary(n('a').kv, 'Put', { key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) });
      acked.set(`k${i}`, `v${i}`);
    }
  }, 90_000);

  afterAll(async () => {
    for (const t of nodes.values()) await t.close().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it('three of five stop for good: no quorum; a live voter left off the survivors is refused', async () => {
    for (const id of ['c', 'd', 'e']) {
      await n(id).close();
      nodes.delete(id);
    }
    const w = await failure(unary(n('a').kv, 'Put', { key: Buffer.from('k-lost'), value: Buffer.from('x') }, 2000));
    expect(w.code).toBeGreaterThan(0);
    const e = await failure(
      (async () => {
        for (;;) {
          try {
            return await recover('a', { partitionId: PARTITION, survivingReplicas: ['a'], confirmDataLoss: true });
          } catch (err) {
            if ((err as CallError).meta.reason !== 'leaderPresent') throw err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      })(),
    );
    expect(e.meta.reason).toBe('voterReachable');
    expect(e.details).toContain('b');
  }, 60_000);

  it('recovers the meta group and the partition on the newest survivor, naming both; both agree and serve', async () => {
    const meta = await recoverOnNewest('a', { metaGroup: true, survivingReplicas: SURVIVORS, confirmDataLoss: true });
    expect(meta.res).toMatchObject({ changed: true, voters: SURVIVORS, removed: ['c', 'd', 'e'] });
    const { via, res } = await recoverOnNewest('a', { partitionId: PARTITION, survivingReplicas: SURVIVORS, confirmDataLoss: true });
    expect(res).toMatchObject({ changed: true, voters: SURVIVORS, removed: ['c', 'd', 'e'] });
    const recoveryIndex = Number(res.recoveryIndex);
    expect(recoveryIndex).toBe(Number(res.lastIndex) + 3);
    const other = via === 'a' ? 'b' : 'a';
    // The other survivor takes the recovered log: same membership, same terms up to the recovery entries.
    await until(
      () =>
        SURVIVORS.every((id) => (n(id).node.raft?.raftStatus(GROUP)?.applied ?? 0) >= recoveryIndex && n(id).node.raft?.status(GROUP)?.leader !== undefined),
      WAIT_MS,
      'both survivors applied the recovery and know a leader',
    );
    for (const id of SURVIVORS) expect(n(id).node.raft?.status(GROUP)?.voters).toEqual(SURVIVORS);
    const log = (id: string) =>
      (n(id).node.raft?.logEntries(GROUP, 1, recoveryIndex + 1) ?? []).map((e) => [e.index, e.term, e.type === 'confChange' ? e.change.type : 'normal']);
    const recovered = log(via);
    expect(recovered.slice(-3).map((e) => [e[1], e[2]])).toEqual([
      [Number(res.newTerm), 'removeReplica'],
      [Number(res.newTerm), 'removeReplica'],
      [Number(res.newTerm), 'removeReplica'],
    ]);
    const theirs = log(other);
    // Entries both still hold (compaction may have trimmed a prefix) are identical.
    const common = theirs.filter((e) => recovered.some((r) => r[0] === e[0]));
    expect(common.length).toBeGreaterThanOrEqual(3);
    for (const e of common) expect(recovered.find((r) => r[0] === e[0])).toEqual(e);
    // Writes and linearizable reads through either survivor.
    await until(() => SURVIVORS.some((id) => n(id).node.raft?.status(GROUP)?.serving === true), WAIT_MS, 'a serving leader');
    for (const id of SURVIVORS) {
      await unary(n(id).kv, 'Put', { key: Buffer.from(`after-${id}`), value: Buffer.from('ok') });
      acked.set(`after-${id}`, 'ok');
    }
    for (const id of SURVIVORS)
      for (const [k, v] of acked)
        expect(((await unary(n(id).kv, 'Get', { key: Buffer.from(k) })) as { value: Buffer }).value.toString(), `${k} via ${id}`).toBe(v);
  }, 90_000);
});
