import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Message, MessageType } from '../raft/messages.ts';
import type { Entry, ReplicaId } from '../raft/types.ts';
import {
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodePacked,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodePacked,
  type GroupMessage,
  isCoalescedHeartbeat,
} from './raft-codec.ts';

const rid = fc.stringMatching(/^[a-z0-9-]{1,12}$/).map((s) => s as ReplicaId);
const num = fc.integer({ min: 0, max: 2 ** 40 });
const bytes = fc.uint8Array({ maxLength: 64 });
const entryArb: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ type: fc.constant('normal' as const), term: num, index: num, data: bytes }),
  fc.record({
    type: fc.constant('confChange' as const),
    term: num,
    index: num,
    change: fc.record({ type: fc.constantFrom('addLearner' as const, 'promoteLearner' as const, 'removeReplica' as const), replica: rid }),
  }),
);
const messageArb: fc.Arbitrary<Message> = fc.record({
  type: fc.constantFrom(...Object.values(MessageType)),
  from: rid,
  to: rid,
  term: num,
  logTerm: num,
  index: num,
  entries: fc.array(entryArb, { maxLength: 4 }),
  commit: num,
  reject: fc.boolean(),
  rejectHint: num,
  snapshot: fc.option(
    fc.record({ metadata: fc.record({ index: num, term: num, confState: fc.record({ voters: fc.array(rid), learners: fc.array(rid) }) }), data: bytes }),
    {
      nil: undefined,
    },
  ),
  context: fc.option(bytes, { nil: undefined }),
});

const norm = (x: unknown) => JSON.parse(JSON.stringify(x, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));

describe('raft codec', () => {
  it('round-trips every message shape', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        expect(norm(decodeMessage(encodeMessage(m)))).toEqual(norm(m));
      }),
    );
  });
  it('round-trips entries and hard states', () => {
    fc.assert(
      fc.property(entryArb, (e) => {
        expect(norm(decodeEntry(encodeEntry(e)))).toEqual(norm(e));
      }),
    );
    expect(decodeHardState(encodeHardState({ term: 7, vote: 'n1' as ReplicaId, commit: 42 }))).toEqual({ term: 7, vote: 'n1', commit: 42 });
    expect(decodeHardState(encodeHardState({ term: 1, vote: undefined, commit: 0 }))).toEqual({ term: 1, vote: undefined, commit: 0 });
  });
  it('rejects truncated or trailing bytes as STORAGE_ERROR, never crashes', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), (m, cut) => {
        const b = encodeMessage(m);
        const t = b.subarray(0, cut % b.length);
        expect(() => decodeMessage(t)).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR' }));
        expect(() => decodeMessage(Buffer.concat([b, Buffer.from([0])]))).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR' }));
      }),
      { numRuns: 200 },
    );
  });

  // A heartbeat or response as the core sends it: only term, commit, index and context set.
  const heartbeatArb: fc.Arbitrary<Message> = fc.record({
    type: fc.constantFrom(MessageType.Heartbeat, MessageType.HeartbeatResponse),
    from: rid,
    to: rid,
    term: num,
    logTerm: fc.constant(0),
    index: num,
    entries: fc.constant([]),
    commit: num,
    reject: fc.constant(false),
    rejectHint: fc.constant(0),
    snapshot: fc.constant(undefined),
    context: fc.option(bytes, { nil: undefined }),
  });
  const batchArb: fc.Arbitrary<GroupMessage[]> = fc.array(
    fc.record({ group: fc.integer({ min: 0, max: 2 ** 32 - 1 }), message: fc.oneof(messageArb, heartbeatArb) }),
    { maxLength: 12 },
  );

  it('packs a batch: every message back, the others in order, then the heartbeats in order', () => {
    fc.assert(
      fc.property(batchArb, (items) => {
        const { messages, heartbeats } = decodePacked(encodePacked(items));
        const want = [...items.filter((i) => !isCoalescedHeartbeat(i.message)), ...items.filter((i) => isCoalescedHeartbeat(i.message))];
        expect(norm(messages)).toEqual(norm(want));
        expect(heartbeats).toBe(items.filter((i) => isCoalescedHeartbeat(i.message)).length);
      }),
    );
  });

  it('coalesces a heartbeat into a 33-byte record', () => {
    const hb = (g: number): GroupMessage => ({
      group: g,
      message: {
        type: MessageType.Heartbeat,
        from: 'n1' as ReplicaId,
        to: 'n2' as ReplicaId,
        term: 3,
        logTerm: 0,
        index: 7,
        entries: [],
        commit: 5,
        reject: false,
        rejectHint: 0,
      },
    });
    const one = encodePacked([hb(1)]).length;
    const hundred = encodePacked(Array.from({ length: 100 }, (_, g) => hb(g))).length;
    expect((hundred - one) / 99).toBe(33);
    expect(isCoalescedHeartbeat({ ...hb(1).message, reject: true })).toBe(false);
  });

  it('rejects a truncated, extended or mislabelled packed batch as STORAGE_ERROR', () => {
    fc.assert(
      fc.property(batchArb, fc.nat(), (items, cut) => {
        const b = encodePacked(items);
        const bad = expect.objectContaining({ code: 'STORAGE_ERROR' });
        expect(() => decodePacked(b.subarray(0, cut % b.length))).toThrow(bad);
        expect(() => decodePacked(Buffer.concat([b, Buffer.from([0])]))).toThrow(bad);
        expect(() => decodePacked(Buffer.concat([Buffer.from([9]), b.subarray(1)]))).toThrow(bad);
      }),
      { numRuns: 200 },
    );
  });
});
