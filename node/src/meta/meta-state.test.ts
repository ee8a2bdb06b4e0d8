/**
 * The meta state and its commands (pure): bootstrap, registration, node states, replica
 * changes, split and merge; compare-and-set on the epoch; refusals change nothing; the codec
 * round-trips and refuses malformed bytes; and a property test over random command sequences
 * (epoch strictly grows with every change and only then, ranges always tile the hash space once,
 * encode/decode of every state is the identity).
 */
import { HASH_SPACE_END, type NodeId, type PartitionId } from '@keyva/client/keyspace';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMetaCommand, decodeMetaState, encodeMetaCommand, encodeMetaState, metaCommandOf, metaProposal } from './meta-codec.ts';
import {
  applyMetaCommand,
  EMPTY_META_STATE,
  initialMap,
  type MetaCommand,
  MetaRefusal,
  type MetaResult,
  type MetaState,
  metaStateProblems,
  NodeState,
} from './meta-state.ts';

const n = (id: string) => id as NodeId;
const p = (id: number) => id as PartitionId;
const addr = (id: string, port: number) => ({ id: n(id), grpcAddress: `127.0.0.1:${port}`, httpAddress: '' });
const NODES = [addr('a', 1), addr('b', 2), addr('c', 3)];

function run(s: MetaState, c: MetaCommand): { state: MetaState; result: MetaResult } {
  return applyMetaCommand(s, c);
}

function bootstrapped(count = 4): MetaState {
  const { state, result } = run(EMPTY_META_STATE, initialMap(count, NODES, [n('a'), n('b'), n('c')]));
  expect(result).toEqual({ ok: true, epoch: 1n, changed: true });
  return state;
}

function refusal(r: MetaResult): string {
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  return r.reason;
}

describe('MetaState commands', () => {
  it('bootstraps once, with ranges tiling the hash space and every node active', () => {
    const s = bootstrapped(4);
    expect(s.epoch).toBe(1n);
    expect(s.partitions.map((x) => [x.id, x.start, x.end])).toEqual([
      [0, 0n, 1n << 62n],
      [1, 1n << 62n, 2n << 62n],
      [2, 2n << 62n, 3n << 62n],
      [3, 3n << 62n, HASH_SPACE_END],
    ]);
    expect(s.nodes.map((x) => x.state)).toEqual(['active', 'active', 'active']);
    expect(metaStateProblems(s)).toEqual([]);
    const again = run(s, initialMap(8, NODES, [n('a')]));
    expect(refusal(again.result)).toBe(MetaRefusal.AlreadyBootstrapped);
    expect(again.state).toBe(s);
  });

  it('refuses everything but the bootstrap before it', () => {
    expect(refusal(run(EMPTY_META_STATE, { kind: 'registerNode', node: addr('a', 1) }).result)).toBe(MetaRefusal.NotBootstrapped);
    expect(refusal(run(EMPTY_META_STATE, { kind: 'mergePartitions', leftId: p(0), rightId: p(1), expectedEpoch: 0n }).result)).toBe(
      MetaRefusal.NotBootstrapped,
    );
  });

  it('places each initial partition on replicationFactor founders by rotation over the sorted ids, balanced', () => {
    const five = [n('e'), n('c'), n('a'), n('d'), n('b')];
    const m = initialMap(8, [], five, 3);
    expect(m.partitions.map((x) => [...x.replicas].sort().join(''))).toEqual(['abc', 'ade', 'bcd', 'abe', 'cde', 'abc', 'ade', 'bcd']);
    expect(m.partitions.map((x) => x.replicas[0])).toEqual(['a', 'e', 'd', 'e', 'd', 'c', 'd', 'c']);
    const perNode = new Map<string, number>();
    for (const x of m.partitions) for (const r of x.replicas) perNode.set(r, (perNode.get(r) ?? 0) + 1);
    const counts = [...perNode.values()];
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(24);
    // Same input in another order: the same map (every founder computes it alike).
    expect(initialMap(8, [], [...five].reverse(), 3)).toEqual(m);
    expect(initialMap(3, [], five, 1).partitions.map((x) => x.replicas)).toEqual([['a'], ['b'], ['c']]);
    expect(initialMap(3, [], five).partitions.map((x) => x.replicas.join(''))).toEqual(['abcde', 'bcdea', 'cdeab']);
    expect(() => initialMap(2, [], five, 7)).toThrow(/replication factor 7 needs 1 to 5 replicas/);
  });

  it('refuses a bootstrap whose replicas are not among its nodes, or whose ranges leave a gap', () => {
    expect(refusal(run(EMPTY_META_STATE, initialMap(2, NODES, [n('z')])).result)).toBe(MetaRefusal.Invalid);
    const m = initialMap(2, NODES, [n('a')]);
    const gap = { ...m, partitions: [m.partitions[0]!, { ...m.partitions[1]!, start: m.partitions[1]!.start + 1n }] };
    const r = run(EMPTY_META_STATE, gap).result;
    expect(refusal(r)).toBe(MetaRefusal.Invalid);
    expect(!r.ok && r.message).toMatch(/tile/);
  });

  it('registers nodes idempotently: the same addresses change nothing, new ones bump the epoch', () => {
    const s = bootstrapped();
    const same = run(s, { kind: 'registerNode', node: addr('a', 1) });
    expect(same.result).toEqual({ ok: true, epoch: 1n, changed: false });
    expect(same.state).toBe(s);
    const http = run(s, { kind: 'registerNode', node: { ...addr('a', 1), httpAddress: '127.0.0.1:80' } });
    expect(http.result).toEqual({ ok: true, epoch: 2n, changed: true });
    expect(http.state.nodes.find((x) => x.id === 'a')?.httpAddress).toBe('127.0.0.1:80');
    const fresh = run(http.state, { kind: 'registerNode', node: addr('d', 4) });
    expect(fresh.result).toEqual({ ok: true, epoch: 3n, changed: true });
    expect(fresh.state.nodes.map((x) => `${x.id}:${x.state}`)).toEqual(['a:active', 'b:active', 'c:active', 'd:active']);
  });

  it('records the incarnation a node registers with and refuses the same id from another data directory', () => {
    const s = bootstrapped();
    const inc1 = '0123456789abcdef';
    const inc2 = 'fedcba9876543210';
    const first = run(s, { kind: 'registerNode', node: { ...addr('a', 1), incarnation: inc1 } });
    expect(first.result).toEqual({ ok: true, epoch: 2n, changed: true });
    expect(first.state.nodes.find((x) => x.id === 'a')?.incarnation).toBe(inc1);
    // The same directory again (a restart): nothing changes; without an incarnation (an old node): kept.
    expect(run(first.state, { kind: 'registerNode', node: { ...addr('a', 1), incarnation: inc1 } }).state).toBe(first.state);
    const moved = run(first.state, { kind: 'registerNode', node: { ...addr('a', 7) } });
    expect(moved.state.nodes.find((x) => x.id === 'a')).toMatchObject({ grpcAddress: '127.0.0.1:7', incarnation: inc1 });
    // Another directory under the same id: refused, nothing changed, the message says what to do.
    const wiped = run(moved.state, { kind: 'registerNode', node: { ...addr('a', 7), incarnation: inc2 } });
    expect(refusal(wiped.result)).toBe(MetaRefusal.IncarnationChanged);
    expect(!wiped.result.ok && wiped.result.message).toMatch(/wiped or replaced.*keyva node remove a/);
    expect(wiped.state).toBe(moved.state);
    // A new node registers with its incarnation; the state round-trips through its encoding.
    const d = run(moved.state, { kind: 'registerNode', node: { ...addr('d', 4), incarnation: inc2 } });
    expect(decodeMetaState(encodeMetaState(d.state))).toEqual(d.state);
    const c: MetaCommand = { kind: 'registerNode', node: { ...addr('d', 4), incarnation: inc2 } };
    expect(decodeMetaCommand(encodeMetaCommand(c))).toEqual(c);
  });

  it('compare-and-set: a change planned against another epoch is refused as stale and changes nothing', () => {
    const s = bootstrapped();
    const stale = run(s, { kind: 'setPartitionReplicas', partitionId: p(0), replicas: [n('a')], expectedEpoch: 0n });
    expect(refusal(stale.result)).toBe(MetaRefusal.StaleEpoch);
    expect(!stale.result.ok && stale.result.message).toMatch(/expected epoch 0, but the map is at epoch 1/);
    expect(stale.state).toBe(s);
    expect(refusal(run(s, { kind: 'setPartitionReplicas', partitionId: p(0), replicas: [n('a')], expectedEpoch: 2n }).result)).toBe(MetaRefusal.StaleEpoch);
    const ok = run(s, { kind: 'setPartitionReplicas', partitionId: p(0), replicas: [n('a')], expectedEpoch: 1n });
    expect(ok.result).toEqual({ ok: true, epoch: 2n, changed: true });
    expect(ok.state.partitions[0]).toMatchObject({ replicas: ['a'], generation: 2n });
  });

  it('checks replicas against the registry', () => {
    const s = bootstrapped();
    expect(refusal(run(s, { kind: 'setPartitionReplicas', partitionId: p(0), replicas: [n('zz')], expectedEpoch: 1n }).result)).toBe(MetaRefusal.UnknownNode);
    expect(refusal(run(s, { kind: 'setPartitionReplicas', partitionId: p(9), replicas: [n('a')], expectedEpoch: 1n }).result)).toBe(
      MetaRefusal.UnknownPartition,
    );
    expect(refusal(run(s, { kind: 'setPartitionReplicas', partitionId: p(0), replicas: [n('a'), n('a')], expectedEpoch: 1n }).result)).toBe(
      MetaRefusal.Invalid,
    );
  });

  it('drains and removes a node only once it holds no replica; a removed id never comes back', () => {
    let s = bootstrapped(2);
    const drain = run(s, { kind: 'setNodeState', nodeId: n('c'), state: NodeState.Draining, expectedEpoch: 1n });
    expect(drain.result).toEqual({ ok: true, epoch: 2n, changed: true });
    s = drain.state;
    expect(refusal(run(s, { kind: 'setNodeState', nodeId: n('c'), state: NodeState.Removed, expectedEpoch: 2n }).result)).toBe(MetaRefusal.NodeHoldsReplicas);
    for (const id of [0, 1]) s = run(s, { kind: 'setPartitionReplicas', partitionId: p(id), replicas: [n('a'), n('b')], expectedEpoch: s.epoch }).state;
    const removed = run(s, { kind: 'setNodeState', nodeId: n('c'), state: NodeState.Removed, expectedEpoch: s.epoch });
    expect(removed.result.ok).toBe(true);
    s = removed.state;
    expect(refusal(run(s, { kind: 'registerNode', node: addr('c', 3) }).result)).toBe(MetaRefusal.NodeRemoved);
    expect(refusal(run(s, { kind: 'setNodeState', nodeId: n('c'), state: NodeState.Active, expectedEpoch: s.epoch }).result)).toBe(MetaRefusal.NodeRemoved);
    expect(refusal(run(s, { kind: 'setPartitionReplicas', partitionId: p(0), replicas: [n('c')], expectedEpoch: s.epoch }).result)).toBe(
      MetaRefusal.NodeRemoved,
    );
    expect(refusal(run(s, { kind: 'setNodeState', nodeId: n('q'), state: NodeState.Draining, expectedEpoch: s.epoch }).result)).toBe(MetaRefusal.UnknownNode);
  });

  it('splits inside a range under a new id and merges adjacent partitions on the same replicas', () => {
    const s = bootstrapped(2);
    const half = 1n << 63n;
    expect(refusal(run(s, { kind: 'splitPartition', partitionId: p(0), atHash: half, newPartitionId: p(7), expectedEpoch: 1n }).result)).toBe(
      MetaRefusal.BadSplitPoint,
    );
    expect(refusal(run(s, { kind: 'splitPartition', partitionId: p(0), atHash: 10n, newPartitionId: p(1), expectedEpoch: 1n }).result)).toBe(
      MetaRefusal.PartitionIdTaken,
    );
    const split = run(s, { kind: 'splitPartition', partitionId: p(0), atHash: 10n, newPartitionId: p(7), expectedEpoch: 1n });
    expect(split.result).toEqual({ ok: true, epoch: 2n, changed: true });
    expect(split.state.partitions.map((x) => [x.id, x.start, x.end, x.generation])).toEqual([
      [0, 0n, 10n, 2n],
      [7, 10n, half, 2n],
      [1, half, HASH_SPACE_END, 1n],
    ]);
    expect(refusal(run(split.state, { kind: 'mergePartitions', leftId: p(0), rightId: p(1), expectedEpoch: 2n }).result)).toBe(MetaRefusal.NotAdjacent);
    const moved = run(split.state, { kind: 'setPartitionReplicas', partitionId: p(7), replicas: [n('a')], expectedEpoch: 2n }).state;
    expect(refusal(run(moved, { kind: 'mergePartitions', leftId: p(0), rightId: p(7), expectedEpoch: 3n }).result)).toBe(MetaRefusal.ReplicasDiffer);
    const merged = run(split.state, { kind: 'mergePartitions', leftId: p(0), rightId: p(7), expectedEpoch: 2n });
    expect(merged.result).toEqual({ ok: true, epoch: 3n, changed: true });
    expect(merged.state.partitions.map((x) => [x.id, x.start, x.end, x.generation])).toEqual([
      [0, 0n, half, 3n],
      [1, half, HASH_SPACE_END, 1n],
    ]);
    // A merged-away id is never given to a new partition (docs/adr/0010-splits.md "Merges"), also after a reload.
    expect(merged.state.idFloor).toBe(8);
    const reloaded = decodeMetaState(encodeMetaState(merged.state));
    expect(reloaded).toEqual(merged.state);
    const reuse = run(reloaded, { kind: 'splitPartition', partitionId: p(0), atHash: 10n, newPartitionId: p(7), expectedEpoch: 3n });
    expect([refusal(reuse.result), reuse.state]).toEqual([MetaRefusal.PartitionIdTaken, reloaded]);
    const fresh = run(reloaded, { kind: 'splitPartition', partitionId: p(0), atHash: 10n, newPartitionId: p(8), expectedEpoch: 3n });
    expect(fresh.result).toEqual({ ok: true, epoch: 4n, changed: true });
    expect(fresh.state.idFloor).toBe(8);
  });
});

describe('meta codec', () => {
  it('round-trips commands and states, and carries a command in the replicated-command envelope', () => {
    const s = bootstrapped();
    expect(decodeMetaState(encodeMetaState(s))).toEqual(s);
    expect(decodeMetaState(encodeMetaState(EMPTY_META_STATE))).toEqual(EMPTY_META_STATE);
    const c: MetaCommand = { kind: 'splitPartition', partitionId: p(1), atHash: (1n << 62n) + 5n, newPartitionId: p(9), expectedEpoch: 1n };
    expect(decodeMetaCommand(encodeMetaCommand(c))).toEqual(c);
    expect(metaCommandOf({ id: 1n, commitTs: 1n, nowMs: 0, mutations: metaProposal(c) })).toEqual(c);
  });

  it('refuses malformed bytes with INVALID_ARGUMENT naming the problem, and a corrupt state with STORAGE_ERROR', () => {
    const bad = (text: string) => () => decodeMetaCommand(Buffer.from(text));
    expect(bad('{')).toThrow(/not JSON/);
    expect(bad('{"v":2,"kind":"registerNode"}')).toThrow(/meta command/);
    expect(bad('{"v":1,"kind":"launchRockets"}')).toThrow(/kind/);
    expect(bad('{"v":1,"kind":"mergePartitions","leftId":1,"rightId":1,"expectedEpoch":"3"}')).toThrow(/with itself/);
    expect(bad('{"v":1,"kind":"mergePartitions","leftId":1,"rightId":2,"expectedEpoch":"-3"}')).toThrow(/expectedEpoch/);
    expect(bad('{"v":1,"kind":"registerNode","node":{"id":"a","grpcAddress":"nowhere","httpAddress":""}}')).toThrow(/not host:port/);
    expect(bad('{"v":1,"kind":"registerNode","node":{"id":"a","grpcAddress":"h:1","httpAddress":"","extra":1}}')).toThrow(/meta command/);
    expect(bad('{"v":1,"kind":"registerNode","node":{"id":"a","grpcAddress":"h:1","httpAddress":"","incarnation":"xyz"}}')).toThrow(/16 lowercase hex/);
    try {
      bad('{')();
    } catch (e) {
      expect((e as { code: string }).code).toBe('INVALID_ARGUMENT');
    }
    expect(() => metaCommandOf({ id: 1n, commitTs: 1n, nowMs: 0, mutations: [] })).toThrow(/exactly one meta command/);
    const s = encodeMetaState(bootstrapped()).toString().replace('"start":"0"', '"start":"1"');
    expect(() => decodeMetaState(Buffer.from(s))).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR', message: expect.stringMatching(/tile/) }));
  });
});

// --- property test --------------------------------------------------------------------------

const IDS = ['a', 'b', 'c', 'd', 'e'] as const;
const nodeIdArb = fc.constantFrom(...IDS).map(n);
const partitionIdArb = fc.integer({ min: 0, max: 12 }).map(p);
/** Split points spread over the whole space, plus points right at the edges of small ranges. */
const hashArb = fc.oneof(fc.bigInt({ min: 0n, max: HASH_SPACE_END }), fc.bigInt({ min: 0n, max: 64n }));
/** An epoch that is usually right (with `current`), sometimes stale. */
const epochArb = fc.oneof({ weight: 4, arbitrary: fc.constant(-1n) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 20n }) });

const commandArb: fc.Arbitrary<(epoch: bigint) => MetaCommand> = fc.oneof(
  fc.integer({ min: 1, max: 6 }).map((count) => () => initialMap(count, NODES, [n('a'), n('b')])),
  fc.tuple(nodeIdArb, fc.integer({ min: 1, max: 3 }), fc.boolean()).map(([id, port, http]) => () => ({
    kind: 'registerNode' as const,
    node: { id, grpcAddress: `h:${port}`, httpAddress: http ? `h:${port + 100}` : '' },
  })),
  fc.tuple(nodeIdArb, fc.constantFrom(NodeState.Active, NodeState.Draining, NodeState.Removed), epochArb).map(([nodeId, state, e]) => (epoch: bigint) => ({
    kind: 'setNodeState' as const,
    nodeId,
    state,
    expectedEpoch: e < 0n ? epoch : e,
  })),
  fc.tuple(partitionIdArb, fc.uniqueArray(nodeIdArb, { minLength: 1, maxLength: 3 }), epochArb).map(([partitionId, replicas, e]) => (epoch: bigint) => ({
    kind: 'setPartitionReplicas' as const,
    partitionId,
    replicas,
    expectedEpoch: e < 0n ? epoch : e,
  })),
  fc.tuple(partitionIdArb, hashArb, partitionIdArb, epochArb).map(([partitionId, atHash, newPartitionId, e]) => (epoch: bigint) => ({
    kind: 'splitPartition' as const,
    partitionId,
    atHash,
    newPartitionId,
    expectedEpoch: e < 0n ? epoch : e,
  })),
  fc.tuple(partitionIdArb, partitionIdArb, epochArb).map(([leftId, rightId, e]) => (epoch: bigint) => ({
    kind: 'mergePartitions' as const,
    leftId,
    rightId,
    expectedEpoch: e < 0n ? epoch : e,
  })),
);

describe('MetaState property', () => {
  it('random command sequences: the epoch grows by one with every change only, and the map always tiles the hash space once', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: 1, maxLength: 60 }), (makers) => {
        let s: MetaState = EMPTY_META_STATE;
        let changes = 0;
        for (const make of makers) {
          const command = make(s.epoch);
          let decoded: MetaCommand;
          try {
            decoded = decodeMetaCommand(encodeMetaCommand(command));
          } catch {
            // Structurally invalid: the state machine applies such bytes as a no-op.
            expect(applyMetaCommand(s, command).state).toBe(s);
            continue;
          }
          const { state, result } = applyMetaCommand(s, decoded);
          if (result.ok && result.changed) {
            changes++;
            expect(state.epoch).toBe(s.epoch + 1n);
            expect(result.epoch).toBe(state.epoch);
          } else {
            expect(state).toBe(s);
            expect(result.epoch).toBe(s.epoch);
          }
          if (!result.ok && result.reason === MetaRefusal.StaleEpoch) expect(command).toHaveProperty('expectedEpoch');
          s = state;
          expect(metaStateProblems(s)).toEqual([]);
          if (s.epoch > 0n) {
            let at = 0n;
            for (const x of s.partitions) {
              expect(x.start).toBe(at);
              expect(x.end > x.start).toBe(true);
              at = x.end;
            }
            expect(at).toBe(HASH_SPACE_END);
          }
          expect(decodeMetaState(encodeMetaState(s))).toEqual(s);
        }
        expect(s.epoch).toBe(BigInt(changes));
      }),
      { numRuns: 300 },
    );
  });
});
