/**
 * Durable encodings of the meta group: its commands (Raft entries) and its state (the stored
 * record and the Raft snapshot data). Both are JSON, versioned by a `v` field, 64-bit numbers
 * as decimal strings, and validated on decode (shape with zod, then `validateMetaCommand` /
 * `metaStateProblems`), so bytes that decode are always a well-formed command or state.
 *
 * Envelope: until the group driver proposes opaque payloads, a meta command travels in the data
 * groups' entry format (`replicated-command.ts`, which gives it a proposal id and the leader's
 * stamps) as ONE put of `META_COMMAND_KEY` at hash 0 whose value is the command. The meta state
 * machine never writes that put: it only reads the command out of it.
 */
import type { NodeId, PartitionId } from '@keyva/client/keyspace';
import { KeyVaError } from '@keyva/proto/errors';
import { z } from 'zod';
import type { DataMutation, ReplicatedCommand } from '../replication/replicated-command.ts';
import {
  INCARNATION_PATTERN,
  type MetaCommand,
  type MetaNode,
  type MetaPartition,
  type MetaState,
  metaStateProblems,
  NODE_STATES,
  type NodeState,
  validateMetaCommand,
} from './meta-state.ts';

const FORMAT_VERSION = 1;
/** The key of the envelope's single put (see the file comment). */
export const META_COMMAND_KEY = Buffer.from('keyva/meta-command', 'utf8');

const u64 = z
  .string()
  .regex(/^(0|[1-9]\d{0,19})$/, 'a decimal u64')
  .transform((s) => BigInt(s))
  .refine((v) => v < 1n << 64n, 'out of the 64-bit range');
/** Up to 2^64 (a range end). */
const u64End = z
  .string()
  .regex(/^(0|[1-9]\d{0,19})$/, 'a decimal integer')
  .transform((s) => BigInt(s))
  .refine((v) => v <= 1n << 64n, 'beyond 2^64');
const partitionId = z
  .number()
  .int()
  .min(0)
  .transform((n) => n as PartitionId);
const nodeId = z.string().transform((s) => s as NodeId);
const nodeState = z.enum(NODE_STATES as [NodeState, ...NodeState[]]);
const incarnation = z.string().regex(INCARNATION_PATTERN, '16 lowercase hex digits').optional();
const addresses = z.strictObject({ id: nodeId, grpcAddress: z.string(), httpAddress: z.string(), incarnation });
const partition = z.strictObject({ id: partitionId, start: u64, end: u64End, generation: u64, replicas: z.array(nodeId) });
const node = z.strictObject({ id: nodeId, grpcAddress: z.string(), httpAddress: z.string(), state: nodeState, incarnation });

const commandSchema = z.discriminatedUnion('kind', [
  z.strictObject({ v: z.literal(FORMAT_VERSION), kind: z.literal('bootstrap'), partitions: z.array(partition), nodes: z.array(node) }),
  z.strictObject({ v: z.literal(FORMAT_VERSION), kind: z.literal('registerNode'), node: addresses }),
  z.strictObject({ v: z.literal(FORMAT_VERSION), kind: z.literal('setNodeState'), nodeId, state: nodeState, expectedEpoch: u64 }),
  z.strictObject({ v: z.literal(FORMAT_VERSION), kind: z.literal('setPartitionReplicas'), partitionId, replicas: z.array(nodeId), expectedEpoch: u64 }),
  z.strictObject({
    v: z.literal(FORMAT_VERSION),
    kind: z.literal('splitPartition'),
    partitionId,
    atHash: u64,
    newPartitionId: partitionId,
    expectedEpoch: u64,
  }),
  z.strictObject({ v: z.literal(FORMAT_VERSION), kind: z.literal('mergePartitions'), leftId: partitionId, rightId: partitionId, expectedEpoch: u64 }),
]);

const stateSchema = z.strictObject({
  v: z.literal(FORMAT_VERSION),
  epoch: u64,
  partitions: z.array(partition),
  nodes: z.array(node),
  idFloor: z.number().int().min(0).max(0xffff_ffff).optional(),
});

function invalid(msg: string): KeyVaError {
  return new KeyVaError('INVALID_ARGUMENT', `meta command: ${msg}`, { field: 'command' });
}

const json = (v: unknown): Buffer =>
  Buffer.from(
    JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)),
    'utf8',
  );

const partitionOut = (p: MetaPartition) => ({ id: p.id, start: p.start, end: p.end, generation: p.generation, replicas: [...p.replicas] });
const nodeOut = (n: MetaNode) => ({ id: n.id, grpcAddress: n.grpcAddress, httpAddress: n.httpAddress, state: n.state, incarnation: n.incarnation });

/** Encodes a command; throws INVALID_ARGUMENT for one `validateMetaCommand` refuses. */
export function encodeMetaCommand(c: MetaCommand): Buffer {
  const problem = validateMetaCommand(c);
  if (problem !== undefined) throw invalid(problem);
  switch (c.kind) {
    case 'bootstrap':
      return json({ v: FORMAT_VERSION, kind: c.kind, partitions: c.partitions.map(partitionOut), nodes: c.nodes.map(nodeOut) });
    case 'registerNode':
      return json({
        v: FORMAT_VERSION,
        kind: c.kind,
        node: { id: c.node.id, grpcAddress: c.node.grpcAddress, httpAddress: c.node.httpAddress, incarnation: c.node.incarnation },
      });
    default:
      return json({ v: FORMAT_VERSION, ...c });
  }
}

/** Decodes and validates a command; throws INVALID_ARGUMENT naming the problem. */
export function decodeMetaCommand(data: Uint8Array): MetaCommand {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    throw invalid('not JSON');
  }
  const r = commandSchema.safeParse(raw);
  if (!r.success) throw invalid(r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  const { v: _v, ...command } = r.data;
  const problem = validateMetaCommand(command);
  if (problem !== undefined) throw invalid(problem);
  return command;
}

/** The state record (and Raft snapshot data); the empty state is empty bytes. */
export function encodeMetaState(s: MetaState): Buffer {
  if (s.epoch === 0n) return Buffer.alloc(0);
  return json({
    v: FORMAT_VERSION,
    epoch: s.epoch,
    partitions: s.partitions.map(partitionOut),
    nodes: s.nodes.map(nodeOut),
    ...(s.idFloor === undefined ? {} : { idFloor: s.idFloor }),
  });
}

/** Decodes a stored or received state; throws STORAGE_ERROR if it is not a valid state. */
export function decodeMetaState(data: Uint8Array): MetaState {
  if (data.byteLength === 0) return { epoch: 0n, partitions: [], nodes: [] };
  const corrupt = (why: string) => new KeyVaError('STORAGE_ERROR', `corrupt meta state: ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  const r = stateSchema.safeParse(raw);
  if (!r.success) throw corrupt(r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  const state: MetaState = {
    epoch: r.data.epoch,
    partitions: r.data.partitions,
    nodes: r.data.nodes,
    ...(r.data.idFloor === undefined ? {} : { idFloor: r.data.idFloor }),
  };
  const problems = metaStateProblems(state);
  if (problems.length > 0) throw corrupt(problems.slice(0, 5).join('; '));
  return state;
}

/** The mutations a meta command is proposed as (the envelope; see the file comment). */
export function metaProposal(c: MetaCommand): DataMutation[] {
  return [{ type: 'put', hash: 0n, key: META_COMMAND_KEY, value: encodeMetaCommand(c), expiresAtMs: 0 }];
}

/** The meta command inside a replicated command; throws INVALID_ARGUMENT if there is none or it is invalid. */
export function metaCommandOf(rc: ReplicatedCommand): MetaCommand {
  const m = rc.mutations[0];
  if (rc.mutations.length !== 1 || m === undefined || m.type !== 'put' || m.hash !== 0n || !m.key.equals(META_COMMAND_KEY) || m.condition !== undefined)
    throw invalid('the entry does not carry exactly one meta command');
  return decodeMetaCommand(m.value);
}
