/**
 * Unsafe recovery from a lost quorum (docs/adr/0012-unsafe-quorum-recovery.md) on a 3-node
 * cluster of real node processes (RocksDB, replication factor 3): data is written; the recovery
 * is refused without the confirmation and while the group has a quorum; two nodes are killed
 * with kill -9 and never restarted, so the partition (and the meta group) cannot elect a leader;
 * the recovery is refused for a dead survivor; then the survivor recovers the meta group and the
 * partition, after which writes and linearizable reads succeed again and every write committed
 * before the kill reads back, also after the survivor itself is killed and restarted.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { keyHash, RECONNECT_OPTIONS } from '@keyva/client';
import { type CallError, failure, unary } from '@keyva/node/testing/test-node';
import { ControlLoop, GrpcAdminCaller, Observer, StepExecutor } from '@keyva/operator/dataplane';
import { resolveSpec } from '@keyva/operator/placement';
import { type AdminClient, type KVClient, keyvaV1, type UnsafeRecoverPartitionResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultCluster, stablePort } from './faults/cluster.ts';

const PARTITIONS = 2;
const CLI = resolve(import.meta.dirname, '..', '..', 'cli', 'src', 'main.ts');
const KEYS = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let root: string;
let cluster: FaultCluster;
let admin: AdminClient;
let kv: KVClient;
/** A node that joins after the recovery (re-replication). */
let joined: LocalNode | undefined;
let fifth: LocalNode | undefined;
/** The partition of the test keys, and the keys written before the kill (key → value). */
let partition: number;
const written = new Map<string, string>();
/** More keys of that partition: written while the group is alive, after recovery, after restart. */
let liveKey: string;
let afterKey: string;
let restartKey: string;
/**
 * Written after the kill: the write fails for the client (deadline), but its outcome is unknown.
 * The survivor may hold it uncommitted in its log, and the recovery keeps and commits such entries.
 */
let unknownKey: string;

function clients(address: string): { admin: AdminClient; kv: KVClient } {
  const creds = grpc.credentials.createInsecure();
  return {
    admin: new keyvaV1.Admin(address, creds, RECONNECT_OPTIONS) as unknown as AdminClient,
    kv: new keyvaV1.KV(address, creds, RECONNECT_OPTIONS) as unknown as KVClient,
  };
}

async function retrying<T>(what: string, boundMs: number, fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + boundMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw new Error(`${what}: still failing after ${boundMs} ms: ${(e as Error).message}`);
      await sleep(200);
    }
  }
}

function recover(req: { partitionId?: number; metaGroup?: boolean; survivingReplicas: string[]; confirmDataLoss: boolean }) {
  return unary<object, UnsafeRecoverPartitionResponseOut>(admin, 'UnsafeRecoverPartition', { partitionId: 0, metaGroup: false, ...req }, 30_000);
}

/**
 * The recovery, once the survivor stopped believing in a leader: a leader that lost its quorum
 * keeps leading until CheckQuorum steps it down (an election timeout), and the node refuses
 * (leaderPresent) until then. Any other refusal fails at once.
 */
async function recoverOnceLeaderless(req: Parameters<typeof recover>[0]): Promise<UnsafeRecoverPartitionResponseOut> {
  const end = Date.now() + 20_000;
  for (;;) {
    try {
      return await recover(req);
    } catch (e) {
      if ((e as CallError).meta?.reason !== 'leaderPresent' || Date.now() > end) throw e;
      await sleep(200);
    }
  }
}

const put = (key: string, value: string, deadlineMs = 10_000) =>
  unary(kv, 'Put', { key: Buffer.from(key), value: Buffer.from(value) }, deadlineMs) as Promise<{ version: string }>;
const get = (key: string, deadlineMs = 10_000) => unary(kv, 'Get', { key: Buffer.from(key) }, deadlineMs) as Promise<{ found: boolean; value: Buffer }>;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'keyva-quorum-recovery-'));
  cluster = await FaultCluster.create({ root, nodes: 3, partitions: PARTITIONS });
  await cluster.startAll();
  ({ admin, kv } = clients(cluster.endpoints[0] as string));
  const map = await retrying('partition map', 30_000, async () => {
    const r = (await unary(admin, 'GetPartitionMap', { linearizable: true })) as {
      map: { partitions: { id: number; start: string; end: string }[] };
    };
    if (r.map.partitions.length !== PARTITIONS) throw new Error('no map yet');
    return r.map;
  });
  const partitionOf = (key: string) => {
    const h = keyHash(Buffer.from(key));
    const p = map.partitions.find((x) => BigInt(x.start) <= h && (x.end === '0' || h < BigInt(x.end)));
    if (p === undefined) throw new Error(`no partition for ${key}`);
    return p.id;
  };
  partition = partitionOf('k-0');
  const keys: string[] = [];
  for (let i = 0; keys.length < KEYS + 4 && i < 10 * KEYS; i++) if (partitionOf(`k-${i}`) === partition) keys.push(`k-${i}`);
  [liveKey, afterKey, restartKey, unknownKey] = keys.slice(KEYS) as [string, string, string, string];
  for (const key of keys.slice(0, KEYS)) {
    await retrying(`put ${key}`, 30_000, () => put(key, `v-${key}`));
    written.set(key, `v-${key}`);
  }
}, 180_000);

afterAll(async () => {
  admin?.close();
  kv?.close();
  await joined?.stop(3000);
  await fifth?.stop(3000);
  await cluster?.close();
  if (root) rmSync(root, { recursive: true, force: true });
}, 60_000);

describe('LESSONS #11: unsafe recovery from a lost quorum (3 real nodes, kill -9 of two)', () => {
  it('is refused without the data-loss confirmation', async () => {
    const e = await failure(recover({ partitionId: partition, survivingReplicas: ['node-1'], confirmDataLoss: false }));
    expect(e.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(e.meta.reason).toBe('confirmationRequired');
    expect(e.details).toContain('--i-understand-data-loss');
  });

  it('is refused for survivors that are not voters, and while the group has a leader (quorum alive)', async () => {
    const notVoter = await failure(recover({ partitionId: partition, survivingReplicas: ['node-1', 'node-9'], confirmDataLoss: true }));
    expect(notVoter.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(notVoter.meta.reason).toBe('notVoter');
    const live = await failure(recover({ partitionId: partition, survivingReplicas: ['node-1'], confirmDataLoss: true }));
    expect(live.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(live.meta.reason).toBe('leaderPresent');
    // Nothing changed: writes still go through the 3-voter group.
    await put(liveKey, 'still-3-voters');
  });

  it('after kill -9 of two nodes the partition is unavailable, and a dead survivor is refused', async () => {
    await cluster.kill('node-2');
    await cluster.kill('node-3');
    const w = await failure(put(unknownKey, 'after-kill', 3000));
    expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.FAILED_PRECONDITION]).toContain(w.code);
    const r = await failure(get([...written.keys()][0] as string, 3000));
    expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.FAILED_PRECONDITION]).toContain(r.code);
    // Once node-1 stops believing in the old leader: node-2 is listed as survivor but is dead.
    const dead = await retrying('refusal for a dead survivor', 20_000, async () => {
      const e = await failure(recover({ partitionId: partition, survivingReplicas: ['node-1', 'node-2'], confirmDataLoss: true }));
      if (e.meta.reason === 'leaderPresent') throw new Error('node-1 still knows a leader');
      return e;
    });
    expect(dead.code).toBe(grpc.status.FAILED_PRECONDITION);
    // Two voters listed, one answers (node-1): 1 of 3 is no quorum, but node-2 is not alive.
    expect(dead.meta.reason).toBe('survivorUnreachable');
    expect(dead.details).toContain('node-2');
  }, 60_000);

  it('recovers the meta group and the partition on the survivor: writes and reads succeed, earlier writes are there', async () => {
    // The meta group through the real CLI (table output), retried while node-1 still believes in a leader.
    const cliArgs = ['partition', 'recover', 'meta', '--survivors', 'node-1', '--i-understand-data-loss', '-e', cluster.endpoints[0] as string];
    const out = await retrying('keyva partition recover meta', 20_000, async () => {
      try {
        return (await promisify(execFile)(process.execPath, [CLI, ...cliArgs], { env: { ...process.env, NO_COLOR: '1' } })).stdout;
      } catch (e) {
        const err = e as Error & { stderr?: string };
        if (err.stderr?.includes('has a leader')) throw new Error(err.stderr);
        return `FAILED: ${err.stderr ?? err.message}`;
      }
    });
    expect(out).toContain('recovered the meta group: voters node-1, leader node-1');
    expect(out).toContain('node-2,node-3');
    expect(out).toMatch(/data loss: .*LOST/);
    const res = await recoverOnceLeaderless({ partitionId: partition, survivingReplicas: ['node-1'], confirmDataLoss: true });
    expect(res.changed).toBe(true);
    expect(res.voters).toEqual(['node-1']);
    expect(res.removed).toEqual(['node-2', 'node-3']);
    expect(res.leader).toBe('node-1');
    expect(Number(res.recoveryIndex)).toBe(Number(res.lastIndex) + 2);
    expect(Number(res.newTerm)).toBeGreaterThan(Number(res.lastTerm));
    expect(Number(res.commitIndex)).toBeLessThanOrEqual(Number(res.lastIndex));
    expect(res.dataLossWarning).toMatch(/LOST/);
    // Writes and linearizable reads are served again.
    await retrying('put after recovery', 20_000, () => put(afterKey, 'recovered'));
    expect((await get(afterKey)).value.toString()).toBe('recovered');
    for (const [k, v] of written) expect((await get(k)).value.toString(), k).toBe(v);
    expect((await get(liveKey)).value.toString()).toBe('still-3-voters');
    // The write of unknown outcome: applied (kept from the survivor's log) or not, never anything else.
    const unknown = await get(unknownKey);
    expect(unknown.found ? unknown.value.toString() : 'absent').toMatch(/^(after-kill|absent)$/);
    // A repeated call changes nothing.
    const again = await recover({ partitionId: partition, survivingReplicas: ['node-1'], confirmDataLoss: true });
    expect(again.changed).toBe(false);
  }, 90_000);

  it('the recovery is durable: after kill -9 and restart of the survivor it leads alone and serves every write', async () => {
    await cluster.kill('node-1');
    admin.close();
    kv.close();
    await cluster.start('node-1');
    ({ admin, kv } = clients(cluster.endpoints[0] as string));
    await retrying('put after restart', 30_000, () => put(restartKey, 'ok'));
    for (const [k, v] of written) expect((await get(k)).value.toString(), k).toBe(v);
    expect((await get(afterKey)).value.toString()).toBe('recovered');
    const status = (await unary(admin, 'LocalReplica', { partitionId: partition })) as { voters: string[]; leader: string };
    expect(status.voters).toEqual(['node-1']);
    expect(status.leader).toBe('node-1');
  }, 120_000);

  it('re-replication after recovery: a new node joins, is added as a learner, promoted, and holds every write', async () => {
    const port = async () => stablePort();
    const [grpcPort, httpPort] = [await port(), await port()];
    const n1 = cluster.spec('node-1');
    joined = await startLocalNode({
      dataDir: join(root, 'node-4'),
      engine: 'rocksdb',
      grpcPort,
      httpPort,
      nodeId: 'node-4',
      logLevel: 'warn',
      readyTimeoutMs: 90_000,
      extraArgs: ['--peers', `node-1=127.0.0.1:${n1.grpcPort},node-4=127.0.0.1:${grpcPort}`, '--join', '--replication-factor', '3'],
    });
    // The recovered meta group registers node-4; the recovered partition's leader adds it learner-first.
    await retrying('AddLearner node-4', 60_000, () => unary(admin, 'AddLearner', { partitionId: partition, nodeId: 'node-4' }, 20_000));
    await retrying('PromoteLearner node-4', 60_000, () => unary(admin, 'PromoteLearner', { partitionId: partition, nodeId: 'node-4' }, 20_000));
    const replicas = (await unary(admin, 'GetPartitionReplicas', { partitionId: partition })) as { replicas: { nodeId: string; role: string }[] };
    expect(replicas.replicas.filter((r) => r.role === 'VOTER').map((r) => r.nodeId)).toEqual(['node-1', 'node-4']);
    // node-4's own replica serves follower-free linearizable reads through the group of two.
    const c4 = clients(joined.grpc);
    try {
      for (const [k, v] of written)
        expect((await retrying(`get ${k} on node-4`, 20_000, () => unary(c4.kv, 'Get', { key: Buffer.from(k) }))) as { value: Buffer }).toMatchObject({
          value: Buffer.from(v),
        });
      const local = (await unary(c4.admin, 'LocalReplica', { partitionId: partition })) as { hosted: boolean; voters: string[] };
      expect(local.hosted).toBe(true);
      expect(local.voters).toEqual(['node-1', 'node-4']);
    } finally {
      c4.admin.close();
      c4.kv.close();
    }
  }, 180_000);

  it('the placement loop restores the replication factor: it records the survivors in the map and adds a third voter', async () => {
    const [grpcPort, httpPort] = [await stablePort(), await stablePort()];
    const n1 = cluster.spec('node-1');
    fifth = await startLocalNode({
      dataDir: join(root, 'node-5'),
      engine: 'rocksdb',
      grpcPort,
      httpPort,
      nodeId: 'node-5',
      logLevel: 'warn',
      readyTimeoutMs: 90_000,
      extraArgs: ['--peers', `node-1=127.0.0.1:${n1.grpcPort},node-5=127.0.0.1:${grpcPort}`, '--join', '--replication-factor', '3'],
    });
    const admin5 = new GrpcAdminCaller();
    const loop = new ControlLoop({
      observer: new Observer({ admin: admin5, seeds: () => [cluster.endpoints[0] as string] }),
      executor: new StepExecutor(admin5),
      spec: () => resolveSpec({ replicationFactor: 3, merge: { enabled: false }, leaders: { transfersPerPlanMax: 0 }, moves: { catchUpLagMax: 64 } }),
      intervalMs: 300,
    });
    loop.start();
    try {
      const voters = async () =>
        ((await unary(admin, 'GetPartitionReplicas', { partitionId: partition })) as { replicas: { nodeId: string; role: string }[] }).replicas
          .filter((r) => r.role === 'VOTER')
          .map((r) => r.nodeId)
          .sort();
      const mapReplicas = async () =>
        ((await unary(admin, 'GetPartitionMap', { linearizable: true })) as { map: { partitions: { id: number; replicas: string[] }[] } }).map.partitions
          .find((p) => p.id === partition)
          ?.replicas.slice()
          .sort();
      await retrying('RF 3 restored and recorded', 120_000, async () => {
        const v = await voters();
        const m = await mapReplicas();
        if (v.length !== 3 || v.some((x) => x === 'node-2' || x === 'node-3') || JSON.stringify(m) !== JSON.stringify(v))
          throw new Error(`voters ${v.join(',')}, map ${m?.join(',')}; loop: ${JSON.stringify(loop.status().blockers)} ${loop.status().lastError ?? ''}`);
        return v;
      });
      expect(await voters()).toEqual(['node-1', 'node-4', 'node-5']);
      for (const [k, v] of written) expect((await get(k)).value.toString(), k).toBe(v);
    } finally {
      await loop.stop();
      admin5.close();
    }
  }, 180_000);
});
