/**
 * The meta group's snapshots over the real runtime (`MultiRaft` + gRPC on 127.0.0.1, memory
 * engines kept across restarts): with a tiny log, the leaders compact the meta log into a
 * snapshot of the serialized state; a replica that starts empty is caught up by that snapshot
 * (installed atomically with its applied state) and then by the log, reaches the leader's exact
 * state, and reloads it from its engine after a restart.
 */
import type { NodeId } from '@keyva/client/keyspace';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import type { StorageEngine } from '../engine/types.ts';
import { NO_RANGE } from '../replication/multi-raft.ts';
import { contentStateKey } from '../replication/raft-keys.ts';
import { ReplicationCluster, until } from '../replication/testing/replication-cluster.ts';
import { encodeMetaState } from './meta-codec.ts';
import { initialMap } from './meta-state.ts';
import { META_GROUP, MetaStateMachine } from './meta-state-machine.ts';
import { ReplicatedMeta } from './replicated-meta.ts';

const NODES = ['n1', 'n2', 'n3'] as NodeId[];
const WAIT_MS = 10_000;

describe('meta group snapshots', () => {
  const c = new ReplicationCluster({ tickMs: 25, logEntriesMax: 4 });
  const engines = new Map<NodeId, StorageEngine>();
  const sms = new Map<NodeId, MetaStateMachine>();
  afterAll(async () => {
    await c.stopAll();
  });

  const start = async (id: NodeId, bootstrap: boolean) => {
    let engine = engines.get(id);
    if (engine === undefined) {
      engine = new MemoryEngine();
      await engine.open();
      engines.set(id, engine);
    }
    const sm = await MetaStateMachine.open(engine);
    sms.set(id, sm);
    await c.start(id, engine, [{ group: META_GROUP, range: NO_RANGE, content: sm, bootstrap: bootstrap ? NODES : undefined }]);
    return sm;
  };
  const metaOn = (id: NodeId) => new ReplicatedMeta({ self: id, raft: c.node(id).runtime, sm: sms.get(id) as MetaStateMachine });

  it('compacts the meta log, catches up an empty replica by snapshot, and reloads its state after a restart', async () => {
    await start(NODES[0] as NodeId, true);
    await start(NODES[1] as NodeId, true);
    const { node: leader } = await c.waitForLeader(META_GROUP, WAIT_MS);
    const meta = metaOn(leader.id);
    const addr = (id: string, port: number) => ({ id: id as NodeId, grpcAddress: `127.0.0.1:${port}`, httpAddress: '' });
    expect(
      await meta.proposeMetaChange(
        initialMap(
          8,
          NODES.map((id, i) => addr(id, 1000 + i)),
          NODES,
        ),
      ),
    ).toEqual({ ok: true, epoch: 1n, changed: true });
    for (let i = 1; i <= 12; i++)
      expect(await meta.proposeMetaChange({ kind: 'registerNode', node: addr(NODES[i % 3] as string, 2000 + i) })).toMatchObject({ ok: true, changed: true });
    const want = meta.state;
    expect(want.epoch).toBe(13n);
    await until(() => (c.node(leader.id).runtime.status(META_GROUP)?.firstIndex ?? 0) > 5, WAIT_MS, 'the leader to compact its meta log');

    const late = await start(NODES[2] as NodeId, false);
    await until(() => late.state.epoch === want.epoch, WAIT_MS, 'the empty replica to catch up');
    expect(late.state).toEqual(want);
    expect(late.stats.snapshotsInstalled).toBe(1);
    // The replica's stored record is the state, written with its applied state.
    const engine = engines.get(NODES[2] as NodeId) as StorageEngine;
    await until(
      () => (c.node(NODES[2] as string).runtime.status(META_GROUP)?.applied.index ?? 0) >= (leader.runtime.status(META_GROUP)?.commit ?? 0),
      WAIT_MS,
      'apply',
    );
    expect(await engine.getRaw(contentStateKey(META_GROUP))).toEqual(encodeMetaState(want));

    // One more change reaches it through the log, then a restart reloads the state from the engine.
    const after = await metaOn(c.leader(META_GROUP)?.id as NodeId).proposeMetaChange({ kind: 'registerNode', node: addr('n4', 4000) });
    expect(after).toEqual({ ok: true, epoch: 14n, changed: true });
    await until(() => late.state.epoch === 14n, WAIT_MS, 'the change on the caught-up replica');
    await c.stop(NODES[2] as string);
    const reloaded = await MetaStateMachine.open(engine);
    expect(reloaded.state).toEqual(late.state);
    expect(reloaded.state.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3', 'n4']);
  });
});
