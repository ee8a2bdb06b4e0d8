/**
 * Concurrent clients run get/put/delete/CAS against a real node process on RocksDB while the
 * harness kill -9s it and restarts it on the same data folder; porcupine checks the recorded
 * history. Replication is not built yet, so this proves the single-node foundation: no stale
 * read, no lost acknowledged write, no CAS anomaly across a crash.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { isKeyVaError, KeyVa, writeOutcome } from '@keyva/client';
import { freePort } from '@keyva/node/net/free-port';
import { afterAll, describe, expect, it } from 'vitest';
import { prng } from './faults/prng.ts';
import { History } from './lincheck/history.ts';
import { checkHistory } from './lincheck/lincheck.ts';

const CLIENTS = 6;
const KEYS = ['a', 'b', 'c', 'd'];
const RUN_MS = 7000;

describe('linearizability of a single node across kill -9 (porcupine)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-lin-'));
  let node: LocalNode | undefined;
  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stays linearizable', async () => {
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const start = () => startLocalNode({ dataDir: dir, engine: 'rocksdb', grpcPort, httpPort, logLevel: 'warn' });
    node = await start();
    const kv = await KeyVa.connect({ endpoints: [node.grpc], deadlineMs: 1000, retry: { attemptsMax: 1 }, useStream: true });
    const h = new History();
    const seed = Number(process.env.KEYVA_LIN_SEED ?? Date.now() % 100000);
    const rnd = prng(seed);
    let end = Date.now() + RUN_MS;
    let counter = 0;
    // A write error is "fail" only when the SDK knows the request never reached a node.
    const failed = (error: unknown) =>
      isKeyVaError(error) && writeOutcome(error) === 'not-applied' ? ({ status: 'fail' } as const) : ({ status: 'unknown' } as const);
    const unknownOnError = ({ error }: { error?: unknown }) => (error === undefined ? ({ status: 'ok' } as const) : failed(error));
    let restartedAt = Number.POSITIVE_INFINITY;
    let resumed = false;

    const client = async (c: number) => {
      // Until the restarted node answered again, then to the (extended) end of the run.
      while (!resumed || Date.now() < end) {
        const key = KEYS[Math.floor(rnd() * KEYS.length)] as string;
        const r = rnd();
        const value = `${c}-${counter++}`;
        if (r < 0.4) {
          await h.record(
            { client: c, op: 'get', key },
            () => kv.get(key),
            ({ value: e, error }) =>
              error === undefined ? { status: 'ok', found: e !== undefined, output: e?.value.toString() ?? '' } : { status: 'unknown' },
          );
        } else if (r < 0.7) {
          await h.record({ client: c, op: 'put', key, value }, () => kv.put(key, value), unknownOnError);
        } else if (r < 0.8) {
          await h.record({ client: c, op: 'delete', key }, () => kv.delete(key), unknownOnError);
        } else {
          // CAS from the value this client last saw (or from absent).
          const seen = await kv.get(key).catch(() => undefined);
          const expected = seen?.value.toString();
          await h.record(
            { client: c, op: 'cas', key, value, expected: expected ?? '', expectedAbsent: expected === undefined },
            () => kv.cas(key, expected === undefined ? { absent: true } : { value: expected }, value),
            ({ value: res, error }) => (error === undefined ? { status: 'ok', ok: res?.ok ?? false } : failed(error)),
          );
        }
        const last = h.ops[h.ops.length - 1];
        if (last && last.status !== 'ok') await new Promise((r2) => setTimeout(r2, 25)); // back off while the node is down
      }
    };

    const crash = (async () => {
      try {
        await new Promise((r) => setTimeout(r, RUN_MS / 3));
        node?.process.kill('SIGKILL');
        await node?.exited;
        await new Promise((r) => setTimeout(r, 300));
        node = await start();
        restartedAt = Number(process.hrtime.bigint());
        // However long the restart took (seconds on a loaded machine) and however long the client's
        // channel waits before it reconnects (its reconnect backoff grows to 2 s while the node is
        // down), the clients keep going a third of the run after the node answered again.
        const answers = () =>
          kv.get(KEYS[0] as string).then(
            () => true,
            () => false,
          );
        const answerBy = Date.now() + 15_000;
        while (Date.now() < answerBy && !(await answers())) await new Promise((r) => setTimeout(r, 50));
        end = Math.max(end, Date.now() + RUN_MS / 3);
      } finally {
        resumed = true;
      }
    })();
    await Promise.all([...Array.from({ length: CLIENTS }, (_, c) => client(c)), crash]);
    await kv.close();

    const path = join(dir, 'history.jsonl');
    h.write(path);
    const verdict = await checkHistory(path, join(dir, 'history.html'));
    const counts = h.counts();
    console.log(
      `linearizability (seed ${seed}): ${h.ops.length} operations (${counts.ok} ok, ${counts.unknown} unknown) on ${KEYS.length} keys, kill -9 once: ${verdict.result}`,
    );
    const okAfterRestart = h.ops.filter((o) => o.status === 'ok' && o.call > restartedAt).length;
    console.log(`  ${okAfterRestart} operations answered after the restart`);
    expect(counts.ok).toBeGreaterThan(200);
    expect(okAfterRestart).toBeGreaterThan(50);
    expect(verdict.result, `history not linearizable, see ${verdict.visualization}; replay with KEYVA_LIN_SEED=${seed}`).toBe('Ok');
  });
});
