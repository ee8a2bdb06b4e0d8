/**
 * Routing in a replicated 3-node cluster of real processes (ADR 0008 §6-§8): every node answers
 * every KV request (forwarding to the partition's leader), over REST (fetch) and over a plain
 * grpc-js client that knows nothing of leaders; write concerns `all` and `leader`; the staleness
 * bound of follower reads; and a forwarded write whose leader dies mid-call answering an
 * unknown outcome, never a retryable NOT_LEADER/UNAVAILABLE.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { freePort } from '@keyva/node/net/free-port';
import { type KVClient, keyvaV1 } from '@keyva/proto';
import { ERROR_METADATA } from '@keyva/proto/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const NODES = 3;
const PARTITIONS = 4;
const TICK_MS = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface CallError {
  readonly grpcCode: number;
  readonly code: string;
  readonly details: Record<string, string>;
  readonly message: string;
}

/** A unary call on a plain grpc-js client: resolves with the answer or a decoded error. */
function call<Res>(client: KVClient, method: string, req: unknown, opts: { deadlineMs?: number; md?: Record<string, string> } = {}): Promise<Res> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.md ?? {})) md.set(k, v);
  return new Promise<Res>((resolve, reject) => {
    const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method] as (...a: unknown[]) => void;
    fn.call(client, req, md, { deadline: Date.now() + (opts.deadlineMs ?? 5000) }, (err: grpc.ServiceError | null, res: Res) => {
      if (!err) return resolve(res);
      const code = String(err.metadata?.get(ERROR_METADATA.code)[0] ?? '');
      const details = JSON.parse(String(err.metadata?.get(ERROR_METADATA.details)[0] ?? '{}')) as Record<string, string>;
      reject({ grpcCode: err.code, code, details, message: err.details } satisfies CallError);
    });
  });
}

describe('routing: any node answers any request', () => {
  const root = mkdtempSync(join(tmpdir(), 'keyva-routing-'));
  const nodes: LocalNode[] = [];
  const clients: KVClient[] = [];

  beforeAll(async () => {
    const specs = [];
    for (let i = 0; i < NODES; i++) specs.push({ id: `node-${i + 1}`, grpcPort: await freePort(), httpPort: await freePort() });
    const peers = specs.map((s) => `${s.id}=127.0.0.1:${s.grpcPort}`).join(',');
    const started = await Promise.all(
      specs.map((s) =>
        startLocalNode({
          dataDir: join(root, s.id),
          engine: 'rocksdb',
          grpcPort: s.grpcPort,
          httpPort: s.httpPort,
          nodeId: s.id,
          logLevel: 'warn',
          // Leader balancing off: these tests pick a partition's leader and followers, then pause or
          // kill exactly those processes. A balancer transfer in between (the node default runs one
          // every second from 3 s after start) would move the role under the test: the "leader"
          // would forward to a successor that answers UNAVAILABLE until it serves, or to a paused
          // node. Balancing has its own tests (node/src/replication/leader-balance*.test.ts);
          // elections can still move leadership here, which the helpers below re-resolve.
          extraArgs: ['--peers', peers, '--partitions', String(PARTITIONS), '--raft-tick-ms', String(TICK_MS), '--leader-balance-interval-ms', '0'],
        }),
      ),
    );
    nodes.push(...started);
    for (const n of nodes) clients.push(new keyvaV1.KV(n.grpc, grpc.credentials.createInsecure()));
    // Every partition has a serving leader once a write to each succeeds (through any node).
    const end = Date.now() + 20_000;
    for (let p = 0; p < 16; p++) {
      for (;;) {
        const r = await fetch(`http://${nodes[p % NODES]?.http}/v1/kv/warm-${p}`, { method: 'PUT', body: 'x' }).catch(() => undefined);
        if (r?.status === 200) break;
        if (Date.now() > end) throw new Error(`cluster not writable: HTTP ${r?.status}`);
        await sleep(100);
      }
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop(5000)));
    rmSync(root, { recursive: true, force: true });
  });

  /**
   * The SERVING leader of `key`'s partition: a linearizable read sent with the forwarded marker
   * (so no node forwards it) that the node answers itself. A NOT_LEADER hint names a leader that
   * may not serve yet (just elected or just handed leadership): ask that node in turn, until one
   * answers. UNAVAILABLE (no serving leader yet, or leadership changing) is waited out. `first`
   * is the node asked first (never a paused one: it would not answer).
   */
  const leaderOf = async (key: string, first = 0): Promise<number> => {
    const probe = { key: Buffer.from(key), read: { consistency: 'LINEARIZABLE' } };
    const end = Date.now() + 15_000;
    let ask = first;
    for (;;) {
      try {
        await call(clients[ask] as KVClient, 'Get', probe, { md: { 'keyva-forwarded-by': 'test' } });
        return ask;
      } catch (e) {
        const err = e as CallError;
        const hinted = err.code === 'NOT_LEADER' ? nodes.findIndex((n) => n.nodeId === err.details.leaderHint) : -1;
        if ((err.code !== 'UNAVAILABLE' && hinted < 0) || Date.now() > end) throw new Error(`leader probe: ${err.code} ${err.message}`);
        if (hinted >= 0 && hinted !== ask) ask = hinted;
        else await sleep(100);
      }
    }
  };
  /** A NOT_LEADER/UNAVAILABLE answer that says nothing was written (not committed, outcome known): safe to retry. */
  const retryable = (e: unknown): boolean => {
    const err = e as Partial<CallError>;
    return (err.code === 'NOT_LEADER' || err.code === 'UNAVAILABLE') && err.details?.committed === undefined && err.details?.outcome === undefined;
  };
  /** Retries `f` while it fails with a retryable answer (leadership moving), for at most `boundMs`. */
  const retrying = async <T>(f: () => Promise<T>, boundMs = 15_000): Promise<T> => {
    const end = Date.now() + boundMs;
    for (;;) {
      try {
        return await f();
      } catch (e) {
        if (!retryable(e) || Date.now() > end) throw e;
        await sleep(100);
      }
    }
  };
  /** A key, its partition's leader and the two other nodes (leadership lands wherever elections put it). */
  const keyAndRoles = async (key: string): Promise<{ key: string; leader: number; others: [number, number] }> => {
    const leader = await leaderOf(key);
    expect(leader).toBeGreaterThanOrEqual(0);
    return { key, leader, others: [(leader + 1) % NODES, (leader + 2) % NODES] };
  };
  const rest = (n: number, path: string, init?: RequestInit) => fetch(`http://${nodes[n]?.http}${path}`, init);

  it('answers put/get/CAS/delete over REST on every node, followers forwarding to the leader', async () => {
    for (let i = 0; i < 6; i++) {
      const key = `rest-${i}`;
      const writer = i % NODES;
      const put = await rest(writer, `/v1/kv/${key}`, { method: 'PUT', body: `v${i}` });
      expect(put.status, await put.clone().text()).toBe(200);
      const { version } = (await put.json()) as { version: string };
      for (let n = 0; n < NODES; n++) {
        const got = await rest(n, `/v1/kv/${key}`);
        expect(got.status).toBe(200);
        const body = (await got.json()) as { valueText: string; version: string };
        expect([body.valueText, body.version]).toEqual([`v${i}`, version]);
      }
      // CAS through another node: the right version wins once, a stale one fails, on every node alike.
      const other = (writer + 1) % NODES;
      const cas = await rest(other, `/v1/kv/${key}?ifVersion=${version}`, { method: 'PUT', body: `w${i}` });
      expect(cas.status).toBe(200);
      const stale = await rest((writer + 2) % NODES, `/v1/kv/${key}?ifVersion=${version}`, { method: 'PUT', body: 'lost' });
      expect(stale.status).toBe(412);
      expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('CONDITION_FAILED');
      const del = await rest((writer + 2) % NODES, `/v1/kv/${key}`, { method: 'DELETE' });
      expect(await del.json()).toMatchObject({ deleted: true });
      for (let n = 0; n < NODES; n++) expect((await rest(n, `/v1/kv/${key}`)).status).toBe(404);
    }
    // Bad options are refused clearly.
    expect((await rest(0, '/v1/kv/x?concern=most', { method: 'PUT', body: 'x' })).status).toBe(400);
    expect((await rest(0, '/v1/kv/x?consistency=follower&maxStalenessMs=0')).status).toBe(400);
  });

  it('serves snapshot reads on any node, and no later commit lands at or below a timestamp once read', async () => {
    const { key, leader, others } = await keyAndRoles('snap');
    const put = await rest(others[0], `/v1/kv/${key}`, { method: 'PUT', body: 'old' });
    const { version } = (await put.json()) as { version: string };
    for (let n = 0; n < NODES; n++) {
      const at = await rest(n, `/v1/kv/${key}?consistency=snapshot&snapshotTs=${version}`);
      expect(((await at.json()) as { valueText: string }).valueText).toBe('old');
      expect((await rest(n, `/v1/kv/${key}?consistency=snapshot&snapshotTs=${BigInt(version) - 1n}`)).status).toBe(404);
    }
    // A timestamp 2 s ahead of every clock (within the allowed skew), read on a follower: the
    // answer is final, so the next write to the partition must be stamped above it.
    const ahead = BigInt(Date.now() + 2000) << 16n;
    const snap = await rest(others[1], `/v1/kv/${key}?consistency=snapshot&snapshotTs=${ahead}`);
    expect([snap.status, ((await snap.json()) as { valueText: string }).valueText]).toEqual([200, 'old']);
    const next = await rest(leader, `/v1/kv/${key}`, { method: 'PUT', body: 'new' });
    expect(BigInt(((await next.json()) as { version: string }).version)).toBeGreaterThan(ahead);
    const again = await rest(others[0], `/v1/kv/${key}?consistency=snapshot&snapshotTs=${ahead}`);
    expect(((await again.json()) as { valueText: string }).valueText).toBe('old');

    // Scans are served where they arrive: a follower refuses a snapshot scan at a timestamp its
    // partition has not closed (naming the leader), and serves it once a read closed it.
    expect((await rest(0, `/v1/kv/${encodeURIComponent('{snaptag}k')}`, { method: 'PUT', body: 't' })).status).toBe(200);
    // Roles resolved right before the scans that name the leader (a serving leader, see leaderOf).
    const tagged = await keyAndRoles('{snaptag}k');
    const later = BigInt(Date.now() + 3000) << 16n;
    const scanAt = (n: number) => rest(n, `/v1/kv?tag=snaptag&consistency=snapshot&snapshotTs=${later}`);
    const refused = await scanAt(tagged.others[0]);
    expect(refused.status).toBe(421);
    expect(((await refused.json()) as { error: { details: Record<string, string> } }).error.details.leaderHint).toBe(nodes[tagged.leader]?.nodeId);
    expect((await rest(tagged.others[1], `/v1/kv/${encodeURIComponent(tagged.key)}?consistency=snapshot&snapshotTs=${later}`)).status).toBe(200);
    const served = await scanAt(tagged.others[0]);
    expect(served.status).toBe(200);
    expect(((await served.json()) as { items: { keyText: string }[] }).items.map((i) => i.keyText)).toEqual([tagged.key]);
  });

  it('answers a plain grpc-js client (unary, batch, stream) on a follower', async () => {
    const { key, leader, others } = await keyAndRoles('grpc');
    const follower = clients[others[0]] as KVClient;
    const put = await call<{ version: string }>(follower, 'Put', { key: Buffer.from(key), value: Buffer.from('one') });
    const got = await call<{ found: boolean; value: Buffer; version: string }>(follower, 'Get', { key: Buffer.from(key) });
    expect([got.found, got.value.toString(), got.version]).toEqual([true, 'one', put.version]);
    // CAS on the follower: forwarded, condition checked by the leader.
    const cas = await call<{ version: string }>(follower, 'Put', {
      key: Buffer.from(key),
      value: Buffer.from('two'),
      condition: { versionEquals: put.version },
    });
    await expect(call(follower, 'Put', { key: Buffer.from(key), value: Buffer.from('x'), condition: { versionEquals: put.version } })).rejects.toMatchObject({
      code: 'CONDITION_FAILED',
    });
    // A batch get over keys of every partition (led by whichever nodes lead them): one answer, in order.
    const keys = [key, ...Array.from({ length: 12 }, (_, i) => `bg-${i}`)];
    for (const k of keys.slice(1)) await call(clients[others[1]] as KVClient, 'Put', { key: Buffer.from(k), value: Buffer.from(`val-${k}`) });
    const batch = await call<{ results: { found: boolean; value: Buffer; version: string }[] }>(follower, 'BatchGet', {
      keys: keys.map((k) => Buffer.from(k)),
    });
    expect(batch.results.map((r) => r.value.toString())).toEqual(['two', ...keys.slice(1).map((k) => `val-${k}`)]);
    expect(batch.results[0]?.version).toBe(cas.version);
    // Batch write with concern ALL on a follower.
    const bw = await call<{ versions: string[] }>(follower, 'BatchWrite', {
      mutations: [{ put: { key: Buffer.from(`{${key}}a`), value: Buffer.from('a') } }, { delete: { key: Buffer.from(key) } }],
      write: { concern: 'ALL' },
    });
    expect(bw.versions).toHaveLength(2);
    // The pipelined stream on a follower: every op answered by id.
    const stream = follower.Stream();
    const answers = new Map<string, { error?: { code: string } | null; put?: { version: string } | null; get?: { found: boolean; value: Buffer } | null }>();
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (r: { id: string; put?: { version: string } | null }) => answers.set(r.id, r));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    stream.write({ id: 1, put: { key: Buffer.from(`{${key}}s`), value: Buffer.from('streamed') } });
    await sleep(300);
    stream.write({ id: 2, get: { key: Buffer.from(`{${key}}s`) } });
    stream.write({ id: 3, get: { key: Buffer.from(key) } });
    stream.end();
    await done;
    expect(answers.get('1')?.error ?? undefined).toBeUndefined();
    expect(BigInt(answers.get('1')?.put?.version ?? '0')).toBeGreaterThan(0n);
    expect(answers.get('2')?.get?.value.toString()).toBe('streamed');
    expect(answers.get('3')?.get?.found).toBe(false);
    // A client routing by itself (the SDK) asks for hints instead of forwarding. The leader is
    // re-resolved first (an election may have moved it since the start), and asked of a follower.
    const now = await leaderOf(key, leader);
    const nonLeader = clients[(now + 1) % NODES] as KVClient;
    await expect(call(nonLeader, 'Get', { key: Buffer.from(key) }, { md: { 'keyva-routing': 'direct' } })).rejects.toMatchObject({
      code: 'NOT_LEADER',
      details: { leaderHint: nodes[now]?.nodeId },
    });
    // One hop only: a forwarded request that reaches a non-leader is answered NOT_LEADER, not forwarded again.
    await expect(call(nonLeader, 'Get', { key: Buffer.from(key) }, { md: { 'keyva-forwarded-by': 'node-9' } })).rejects.toMatchObject({
      code: 'NOT_LEADER',
      details: { leaderHint: nodes[now]?.nodeId },
    });
  });

  it('write concern leader answers without a quorum, majority waits, all reports committed-but-not-everywhere', async () => {
    const key = 'concern';
    // Conditional writes cannot use LEADER (the condition is only known at commit): refused by
    // whichever node receives it, before anything is proposed.
    for (let n = 0; n < NODES; n++)
      await expect(
        call(clients[n] as KVClient, 'Put', { key: Buffer.from(key), value: Buffer.from('x'), condition: { absent: true }, write: { concern: 'LEADER' } }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // The fault phase needs the same node to lead from before the first pause to the LEADER write.
    // An election can still move leadership under a loaded machine: a step that is answered
    // NOT_LEADER/UNAVAILABLE with nothing written (or finds the leader moved) resumes the paused
    // followers and starts the phase over on the re-resolved leader. Every assertion stays as strict.
    let roles: Awaited<ReturnType<typeof keyAndRoles>> | undefined;
    for (let attempt = 1; ; attempt++) {
      const restart = (why: string) => {
        if (attempt >= 5) throw new Error(`leadership of ${key} kept moving during the fault phase (${attempt} attempts), last: ${why}`);
        return true;
      };
      roles = await keyAndRoles(key);
      const leader = clients[roles.leader] as KVClient;
      const followers = roles.others.map((i) => nodes[i]) as LocalNode[];
      // One follower paused: ALL cannot complete, but the write is committed (a majority has it).
      followers[0]?.process.kill('SIGSTOP');
      try {
        const t0 = Date.now();
        const err = (await call(leader, 'Put', { key: Buffer.from(key), value: Buffer.from('all'), write: { concern: 'ALL' } }, { deadlineMs: 2000 }).catch(
          (e: unknown) => e,
        )) as CallError;
        if (retryable(err) && restart(`ALL: ${err.code} ${err.message}`)) continue;
        expect(err.code).toBe('DEADLINE_EXCEEDED');
        expect(err.details.committed).toBe('true');
        expect(Date.now() - t0).toBeLessThan(2000);
        // A linearizable read sees it (retried while a new leader, if any, starts serving).
        const got = await retrying(() => call<{ value: Buffer; version: string }>(leader, 'Get', { key: Buffer.from(key) }));
        expect([got.value.toString(), got.version]).toEqual(['all', err.details.version]);
        // Both followers paused: LEADER still answers at once; MAJORITY cannot. The LEADER write
        // carries the forwarded marker so the node answers it itself: were it no longer the
        // leader, it answers NOT_LEADER (nothing written) instead of forwarding to a paused node.
        if ((await leaderOf(key, roles.leader)) !== roles.leader && restart('the leader changed before the second pause')) continue;
        followers[1]?.process.kill('SIGSTOP');
        const l0 = Date.now();
        const lp = (await call<{ version: string }>(
          leader,
          'Put',
          { key: Buffer.from(`${key}-l`), value: Buffer.from('l'), write: { concern: 'LEADER' } },
          { deadlineMs: 2000, md: { 'keyva-forwarded-by': 'test' } },
        ).catch((e: unknown) => e)) as { version: string } | CallError;
        if (retryable(lp) && restart(`LEADER: ${(lp as CallError).code} ${(lp as CallError).message}`)) continue;
        expect(lp).toHaveProperty('version');
        expect(BigInt((lp as { version: string }).version)).toBeGreaterThan(0n);
        expect(Date.now() - l0).toBeLessThan(1000);
        const majority = (await call(leader, 'Put', { key: Buffer.from(`${key}-m`), value: Buffer.from('m') }, { deadlineMs: 400 }).catch(
          (e: unknown) => e,
        )) as CallError;
        expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE]).toContain(majority.grpcCode);
        break;
      } finally {
        for (const f of followers) f.process.kill('SIGCONT');
      }
    }
    // Healed: ALL completes, and every replica then holds the write.
    const end = Date.now() + 15_000;
    for (;;) {
      try {
        const ok = await call<{ version: string }>(clients[roles?.others[0] ?? 0] as KVClient, 'Put', {
          key: Buffer.from(key),
          value: Buffer.from('all-2'),
          write: { concern: 'ALL' },
        });
        expect(BigInt(ok.version)).toBeGreaterThan(0n);
        break;
      } catch (e) {
        if (Date.now() > end) throw e;
        await sleep(100);
      }
    }
  });

  it('serves follower reads within the staleness bound only', async () => {
    const key = 'stale';
    expect((await rest(0, `/v1/kv/${key}`, { method: 'PUT', body: 'fresh' })).status).toBe(200);
    // The reader must be a follower when the other two are paused: resolve the serving leader
    // after the write, and again after the first read; if an election moved it, resolve anew.
    let roles = await keyAndRoles(key);
    for (let attempt = 1; ; attempt++) {
      const first = await rest(roles.others[0], `/v1/kv/${key}?consistency=follower&maxStalenessMs=2000`, { headers: { accept: 'application/octet-stream' } });
      expect([first.status, await first.text()]).toEqual([200, 'fresh']);
      if ((await leaderOf(key, roles.leader)) === roles.leader) break;
      if (attempt >= 5) throw new Error(`leadership of ${key} kept moving (${attempt} attempts)`);
      roles = await keyAndRoles(key);
    }
    const { leader, others } = roles;
    const [reader, third] = others;
    const followerRead = (maxMs: number) =>
      rest(reader, `/v1/kv/${key}?consistency=follower&maxStalenessMs=${maxMs}`, { headers: { accept: 'application/octet-stream' } });
    // Cut the reader off from both other replicas.
    nodes[leader]?.process.kill('SIGSTOP');
    nodes[third]?.process.kill('SIGSTOP');
    try {
      const t0 = Date.now();
      const within = await followerRead(2000);
      expect([within.status, await within.text()]).toEqual([200, 'fresh']);
      expect(Date.now() - t0).toBeLessThan(1000);
      await sleep(2200);
      const beyond = await followerRead(2000);
      expect(beyond.status).toBe(503);
      const body = JSON.parse(await beyond.text()) as { error: { code: string; details: Record<string, string> } };
      expect(body.error.code).toBe('UNAVAILABLE');
      expect(body.error.details.maxStalenessMs).toBe('2000');
    } finally {
      nodes[leader]?.process.kill('SIGCONT');
      nodes[third]?.process.kill('SIGCONT');
    }
    const end = Date.now() + 15_000;
    for (;;) {
      const r = await followerRead(2000);
      if (r.status === 200) {
        expect(await r.text()).toBe('fresh');
        break;
      }
      if (Date.now() > end) throw new Error(`follower read still ${r.status} after healing`);
      await sleep(100);
    }
  });

  it('a forwarded write whose leader dies mid-call has an unknown outcome, a read is retryable', async () => {
    // The cluster may still be settling after the previous test's pauses: retry until a stable
    // leader took the first write and answered a forwarded read (which also warms the channel).
    const end0 = Date.now() + 20_000;
    let roles: Awaited<ReturnType<typeof keyAndRoles>>;
    let v1: { version: string };
    for (;;) {
      roles = await keyAndRoles('dies');
      const via0 = clients[roles.others[0]] as KVClient;
      try {
        v1 = await call<{ version: string }>(via0, 'Put', { key: Buffer.from('dies'), value: Buffer.from('before') });
        await call(via0, 'Get', { key: Buffer.from('dies') });
        if ((await leaderOf('dies')) === roles.leader) break;
      } catch (e) {
        if (Date.now() > end0) throw new Error(`no stable leader: ${JSON.stringify(e)}`);
      }
      await sleep(100);
    }
    const key = roles.key;
    const via = clients[roles.others[0]] as KVClient;
    const leader = nodes[roles.leader] as LocalNode;
    leader.process.kill('SIGSTOP');
    const cas = call(via, 'Put', { key: Buffer.from(key), value: Buffer.from('after'), condition: { versionEquals: v1.version } }, { deadlineMs: 8000 }).then(
      () => undefined,
      (e: unknown) => e as CallError,
    );
    const read = call(via, 'Get', { key: Buffer.from(key) }, { deadlineMs: 8000 }).then(
      () => undefined,
      (e: unknown) => e as CallError,
    );
    await sleep(150);
    leader.process.kill('SIGKILL');
    await leader.exited;
    const [casErr, readErr] = await Promise.all([cas, read]);
    expect(casErr, 'the forwarded CAS cannot have succeeded: its leader was frozen').toBeDefined();
    expect(['NOT_LEADER', 'UNAVAILABLE']).not.toContain(casErr?.code);
    expect(casErr).toMatchObject({ code: 'DEADLINE_EXCEEDED', details: { outcome: 'unknown' } });
    expect(readErr?.code).toBe('UNAVAILABLE');
    // The survivors elect a leader; the key holds one of the two values, never anything else.
    const end = Date.now() + 15_000;
    for (;;) {
      try {
        const got = await call<{ value: Buffer }>(clients[roles.others[1]] as KVClient, 'Get', { key: Buffer.from(key) });
        expect(['before', 'after']).toContain(got.value.toString());
        break;
      } catch (e) {
        if (Date.now() > end) throw new Error(`no leader after the kill: ${JSON.stringify(e)}`);
        await sleep(100);
      }
    }
  });
});
