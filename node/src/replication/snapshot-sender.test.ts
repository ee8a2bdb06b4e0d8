/**
 * The snapshot sender's retry pacing (`snapshot-retry-pacing.ts`) wired into `SnapshotSender`:
 * a transfer to a replica whose last transfer failed waits before it starts (it would otherwise
 * export the whole partition again on every heartbeat), a failure is logged with the wait, and
 * nothing waiting is reported after `close`. The transfers here fail at once (an undecodable
 * snapshot); the streams themselves are covered end to end by `snapshot-stream.test.ts`.
 */
import { describe, expect, it } from 'vitest';
import type { StorageEngine } from '../engine/types.ts';
import { type Message, MessageType, message } from '../raft/messages.ts';
import type { ReplicaId } from '../raft/types.ts';
import type { GroupId } from './raft-keys.ts';
import { RateLimiter } from './snapshot-rate-limiter.ts';
import { SNAPSHOT_RETRY_MIN_MS } from './snapshot-retry-pacing.ts';
import { type SnapshotHost, SnapshotSender } from './snapshot-sender.ts';
import type { SnapshotStaging } from './snapshot-staging.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sender() {
  const reports: { group: GroupId; to: ReplicaId; ok: boolean; atMs: number }[] = [];
  const warnings: Record<string, unknown>[] = [];
  const host: SnapshotHost = {
    engine: {} as StorageEngine,
    staging: {} as SnapshotStaging,
    reportSnapshot: (group, to, ok) => reports.push({ group, to, ok, atMs: Date.now() }),
    rangeOf: () => undefined,
    refusesSnapshot: () => undefined,
  };
  const log = { warn: (obj: Record<string, unknown>) => warnings.push(obj) } as unknown as NonNullable<ConstructorParameters<typeof SnapshotSender>[0]['log']>;
  const s = new SnapshotSender({ self: 'n1', host, clientOf: () => undefined, limiter: new RateLimiter({ bytesPerSecond: 1 << 30 }), log });
  return { s, reports, warnings };
}

// A snapshot message whose data is no snapshot descriptor: its transfer fails before any I/O.
const broken = (index: number): Message =>
  message(
    {
      type: MessageType.Snapshot,
      to: 'n2/7' as ReplicaId,
      snapshot: { metadata: { index, term: 1, confState: { voters: [], learners: [] } }, data: new Uint8Array([1, 2, 3]) },
    },
    'n1/7' as ReplicaId,
    1,
  );

describe('SnapshotSender retry pacing', () => {
  it('after a failure the next transfer to that replica waits, doubling; other replicas do not', async () => {
    const { s, reports, warnings } = sender();
    s.send('n2', 7, broken(10));
    await sleep(20);
    expect(reports.map((r) => r.ok)).toEqual([false]);
    expect(warnings[0]).toMatchObject({ group: 7, to: 'n2', index: 10, retryInMs: SNAPSHOT_RETRY_MIN_MS });

    s.send('n2', 7, broken(11)); // Raft asks again at once
    s.send('n2', 7, broken(11)); // and again: one waits already
    s.send('n3', 7, broken(11)); // another replica: not held back
    await sleep(20);
    expect(s.stats).toMatchObject({ deferred: 1, skippedBusy: 1, started: 2 });
    expect(s.transfers(), 'a waiting transfer is not in progress').toEqual([]);
    expect(reports).toHaveLength(2);
    expect(reports[1]?.group).toBe(7);

    await sleep(SNAPSHOT_RETRY_MIN_MS + 50);
    expect(reports).toHaveLength(3);
    expect(reports[2]?.atMs, 'the wait counts from the failure').toBeGreaterThanOrEqual((reports[0]?.atMs ?? 0) + SNAPSHOT_RETRY_MIN_MS - 5);
    expect(warnings.at(-1)).toMatchObject({ group: 7, to: 'n2', index: 11, retryInMs: 2 * SNAPSHOT_RETRY_MIN_MS });
    s.close();
  });

  it('a transfer waiting when the sender closes never starts nor reports', async () => {
    const { s, reports } = sender();
    s.send('n2', 7, broken(10));
    await sleep(20);
    s.send('n2', 7, broken(11));
    s.close();
    await sleep(SNAPSHOT_RETRY_MIN_MS + 50);
    expect(reports).toHaveLength(1);
    expect(s.stats.started).toBe(1);
  });
});
