/**
 * The meta group's state (ADR 0008 §1): the partition map and the node registry, and the
 * commands that change them. Pure and deterministic: every replica applies the same commands
 * in the same order and reaches the same state and the same results.
 *
 * - `epoch` starts at 0 (nothing bootstrapped), becomes 1 with the bootstrap and grows by one
 *   with every command that changes something; a command that changes nothing (a node
 *   registering the addresses it already has) leaves it alone.
 * - Partitions tile the 64-bit hash space exactly once, sorted by start; each has a stable id,
 *   a generation (bumped by split, merge and replica changes) and its replicas (node ids). No
 *   leader: leaders are live facts of the Raft groups, not map state.
 * - Nodes: durable id, gRPC and HTTP addresses, state `active | draining | removed`. A removed
 *   node never comes back under the same id, and no node holding a replica can be removed.
 * - Controller commands carry `expectedEpoch` (compare-and-set): one planned against an older
 *   map is refused (`staleEpoch`), so a stale controller cannot overwrite newer changes.
 *
 * Commands are validated structurally by `validateMetaCommand` (the codec calls it on decode);
 * `applyMetaCommand` checks them against the state and refuses with a reason, changing nothing.
 */
import { HASH_SPACE_END, type NodeId, type PartitionId } from '@keyva/client/keyspace';

export const NodeState = { Active: 'active', Draining: 'draining', Removed: 'removed' } as const;
export type NodeState = (typeof NodeState)[keyof typeof NodeState];
export const NODE_STATES: readonly NodeState[] = Object.values(NodeState);

export interface MetaPartition {
  readonly id: PartitionId;
  /** Inclusive. */
  readonly start: bigint;
  /** Exclusive; HASH_SPACE_END for the last partition. */
  readonly end: bigint;
  readonly generation: bigint;
  readonly replicas: readonly NodeId[];
}

/** A data directory's incarnation: 16 lowercase hex digits, random (`node-identity.ts`). */
export const INCARNATION_PATTERN = /^[0-9a-f]{16}$/;

/** What a node tells about itself when it registers. */
export interface NodeAddresses {
  readonly id: NodeId;
  /** `host:port` clients and peers dial. */
  readonly grpcAddress: string;
  /** `host:port` of the REST gateway; empty when not known yet. */
  readonly httpAddress: string;
  /**
   * The random id of the node's data directory (`node.ts`), recorded when the node registers
   * itself; absent for a node only listed by the bootstrap. A node that comes back under the same
   * id with a NEW data directory (its disk was wiped or replaced) lost the Raft state its votes and
   * acknowledgements rest on: it must not rejoin its groups (docs/adr/0008, "Wiped data directories").
   */
  readonly incarnation?: string | undefined;
}

export interface MetaNode extends NodeAddresses {
  readonly state: NodeState;
}

export interface MetaState {
  readonly epoch: bigint;
  /** Sorted by start, tiling [0, 2^64) once (empty before the bootstrap). */
  readonly partitions: readonly MetaPartition[];
  /** Sorted by id. */
  readonly nodes: readonly MetaNode[];
  /**
   * Partition ids below this one were used by partitions merged away (docs/adr/0010-splits.md
   * "Merges"): a split never gives a new partition such an id, so no node can mistake a new
   * partition's Raft group for a retired one it has not deleted yet. Absent before the first merge.
   */
  readonly idFloor?: number | undefined;
}

export const EMPTY_META_STATE: MetaState = { epoch: 0n, partitions: [], nodes: [] };

export type MetaCommand =
  /** The initial map; accepted only while nothing is bootstrapped. */
  | { readonly kind: 'bootstrap'; readonly partitions: readonly MetaPartition[]; readonly nodes: readonly MetaNode[] }
  /** A node announcing its addresses (idempotent); a new node joins as active. */
  | { readonly kind: 'registerNode'; readonly node: NodeAddresses }
  | { readonly kind: 'setNodeState'; readonly nodeId: NodeId; readonly state: NodeState; readonly expectedEpoch: bigint }
  | { readonly kind: 'setPartitionReplicas'; readonly partitionId: PartitionId; readonly replicas: readonly NodeId[]; readonly expectedEpoch: bigint }
  /** `partitionId` keeps [start, atHash); `newPartitionId` gets [atHash, end) on the same replicas. */
  | {
      readonly kind: 'splitPartition';
      readonly partitionId: PartitionId;
      readonly atHash: bigint;
      readonly newPartitionId: PartitionId;
      readonly expectedEpoch: bigint;
    }
  /** Adjacent `leftId` (lower range) and `rightId` on the same replicas become `leftId`. */
  | { readonly kind: 'mergePartitions'; readonly leftId: PartitionId; readonly rightId: PartitionId; readonly expectedEpoch: bigint };

export type MetaCommandKind = MetaCommand['kind'];
export const META_COMMAND_KINDS: readonly MetaCommandKind[] = [
  'bootstrap',
  'registerNode',
  'setNodeState',
  'setPartitionReplicas',
  'splitPartition',
  'mergePartitions',
];

export const MetaRefusal = {
  /** The command is malformed (also: bytes that are not a command, applied as a no-op). */
  Invalid: 'invalid',
  /** `expectedEpoch` is not the current epoch: re-read the map and plan again. */
  StaleEpoch: 'staleEpoch',
  NotBootstrapped: 'notBootstrapped',
  AlreadyBootstrapped: 'alreadyBootstrapped',
  UnknownPartition: 'unknownPartition',
  UnknownNode: 'unknownNode',
  /** The node is removed: its id is never used again. */
  NodeRemoved: 'nodeRemoved',
  /** A node still holding replicas cannot be removed. */
  NodeHoldsReplicas: 'nodeHoldsReplicas',
  PartitionIdTaken: 'partitionIdTaken',
  BadSplitPoint: 'badSplitPoint',
  NotAdjacent: 'notAdjacent',
  /** Merging needs both partitions on the same replicas (move replicas first). */
  ReplicasDiffer: 'replicasDiffer',
  /** A named limit (`PARTITIONS_MAX`, `NODES_MAX`) would be exceeded. */
  Limit: 'limit',
  /** The node registered before from another data directory: its disk was wiped or replaced. */
  IncarnationChanged: 'incarnationChanged',
} as const;
export type MetaRefusal = (typeof MetaRefusal)[keyof typeof MetaRefusal];

export type MetaResult =
  | { readonly ok: true; readonly epoch: bigint; readonly changed: boolean }
  | { readonly ok: false; readonly reason: MetaRefusal; readonly message: string; readonly epoch: bigint };

export const PARTITIONS_MAX = 65_536;
export const NODES_MAX = 1024;
export const REPLICAS_MAX = 7;
/** Partition ids are u32 and partition `p` is Raft group `p + 1` (a u32 as well). */
export const PARTITION_ID_MAX = 0xffff_fffe;
export const ADDRESS_CHARS_MAX = 255;
export const NODE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ADDRESS_PATTERN = /^[^\s/]+:\d{1,5}$/;

// --- structural validation ------------------------------------------------------------------

function nodeIdProblem(id: string, what: string): string | undefined {
  return NODE_ID_PATTERN.test(id) ? undefined : `${what} ${JSON.stringify(id)} is not a node id (lowercase letters, digits and dashes, 1-63 chars)`;
}

function partitionIdProblem(id: number, what: string): string | undefined {
  return Number.isInteger(id) && id >= 0 && id <= PARTITION_ID_MAX ? undefined : `${what} ${id} is not an integer in 0..${PARTITION_ID_MAX}`;
}

function epochProblem(e: bigint): string | undefined {
  return e >= 0n && e < 1n << 64n ? undefined : `expectedEpoch ${e} is out of the 64-bit range`;
}

function replicasProblem(replicas: readonly string[]): string | undefined {
  if (replicas.length === 0 || replicas.length > REPLICAS_MAX) return `a partition needs 1..${REPLICAS_MAX} replicas, got ${replicas.length}`;
  if (new Set(replicas).size !== replicas.length) return `replicas ${replicas.join(',')} name a node twice`;
  for (const r of replicas) {
    const p = nodeIdProblem(r, 'replica');
    if (p) return p;
  }
  return undefined;
}

function addressesProblem(n: NodeAddresses): string | undefined {
  const p = nodeIdProblem(n.id, 'node id');
  if (p) return p;
  if (n.grpcAddress.length > ADDRESS_CHARS_MAX || !ADDRESS_PATTERN.test(n.grpcAddress))
    return `node ${n.id}: gRPC address ${JSON.stringify(n.grpcAddress)} is not host:port`;
  if (n.httpAddress !== '' && (n.httpAddress.length > ADDRESS_CHARS_MAX || !ADDRESS_PATTERN.test(n.httpAddress)))
    return `node ${n.id}: HTTP address ${JSON.stringify(n.httpAddress)} is not host:port (or empty)`;
  return undefined;
}

/**
 * Problems of a partition list and registry as a whole: ranges tile the hash space, ids unique,
 * replicas registered and not removed, counts within limits. Empty when fine.
 */
export function mapProblems(partitions: readonly MetaPartition[], nodes: readonly MetaNode[]): string[] {
  const problems: string[] = [];
  if (partitions.length === 0) problems.push('no partition');
  if (partitions.length > PARTITIONS_MAX) problems.push(`${partitions.length} partitions, more than ${PARTITIONS_MAX}`);
  if (nodes.length > NODES_MAX) problems.push(`${nodes.length} nodes, more than ${NODES_MAX}`);
  const byId = new Map<string, MetaNode>();
  for (const n of nodes) {
    const p = addressesProblem(n);
    if (p) problems.push(p);
    if (!NODE_STATES.includes(n.state)) problems.push(`node ${n.id}: unknown state ${String(n.state)}`);
    if (byId.has(n.id)) problems.push(`node ${n.id} is listed twice`);
    byId.set(n.id, n);
  }
  const ids = new Set<number>();
  let expect = 0n;
  for (const p of [...partitions].sort((a, b) => cmp(a.start, b.start))) {
    const idp = partitionIdProblem(p.id, 'partition id');
    if (idp) problems.push(idp);
    if (ids.has(p.id)) problems.push(`partition id ${p.id} is used twice`);
    ids.add(p.id);
    if (p.start !== expect) problems.push(`partition ${p.id} starts at ${p.start}, expected ${expect}: ranges must tile the hash space once`);
    if (p.end <= p.start || p.end > HASH_SPACE_END) problems.push(`partition ${p.id}: range [${p.start}, ${p.end}) is empty, inverted or beyond 2^64`);
    if (p.generation < 1n || p.generation >= 1n << 64n) problems.push(`partition ${p.id}: generation ${p.generation} is not in 1..2^64-1`);
    const rp = replicasProblem(p.replicas);
    if (rp) problems.push(`partition ${p.id}: ${rp}`);
    for (const r of p.replicas) {
      const n = byId.get(r);
      if (n === undefined) problems.push(`partition ${p.id}: replica ${r} is not a registered node`);
      else if (n.state === NodeState.Removed) problems.push(`partition ${p.id}: replica ${r} is a removed node`);
    }
    expect = p.end;
  }
  if (partitions.length > 0 && expect !== HASH_SPACE_END) problems.push(`partitions end at ${expect}, expected 2^64`);
  return problems;
}

/** Problems of a whole state (used when decoding a stored or received snapshot). Empty when fine. */
export function metaStateProblems(s: MetaState): string[] {
  if (s.epoch < 0n || s.epoch >= 1n << 64n) return [`epoch ${s.epoch} is out of the 64-bit range`];
  if (s.epoch === 0n) return s.partitions.length === 0 && s.nodes.length === 0 ? [] : ['epoch 0 (not bootstrapped) with partitions or nodes'];
  const problems = mapProblems(s.partitions, s.nodes);
  for (let i = 1; i < s.partitions.length; i++)
    if ((s.partitions[i - 1] as MetaPartition).start >= (s.partitions[i] as MetaPartition).start) problems.push('partitions are not sorted by start');
  for (let i = 1; i < s.nodes.length; i++) if ((s.nodes[i - 1] as MetaNode).id >= (s.nodes[i] as MetaNode).id) problems.push('nodes are not sorted by id');
  return problems;
}

/** Structural problem of a command (independent of any state), or undefined. */
export function validateMetaCommand(c: MetaCommand): string | undefined {
  switch (c.kind) {
    case 'bootstrap': {
      const problems = mapProblems(c.partitions, c.nodes);
      return problems.length === 0 ? undefined : problems.slice(0, 5).join('; ');
    }
    case 'registerNode':
      return addressesProblem(c.node);
    case 'setNodeState':
      return (
        nodeIdProblem(c.nodeId, 'node id') ??
        (NODE_STATES.includes(c.state) ? undefined : `unknown node state ${String(c.state)}`) ??
        epochProblem(c.expectedEpoch)
      );
    case 'setPartitionReplicas':
      return partitionIdProblem(c.partitionId, 'partition id') ?? replicasProblem(c.replicas) ?? epochProblem(c.expectedEpoch);
    case 'splitPartition':
      return (
        partitionIdProblem(c.partitionId, 'partition id') ??
        partitionIdProblem(c.newPartitionId, 'new partition id') ??
        (c.atHash > 0n && c.atHash < HASH_SPACE_END ? undefined : `split point ${c.atHash} is not inside the hash space`) ??
        epochProblem(c.expectedEpoch)
      );
    case 'mergePartitions':
      return (
        partitionIdProblem(c.leftId, 'left partition id') ??
        partitionIdProblem(c.rightId, 'right partition id') ??
        (c.leftId === c.rightId ? `cannot merge partition ${c.leftId} with itself` : undefined) ??
        epochProblem(c.expectedEpoch)
      );
    default:
      return `unknown command kind ${String((c as { kind: unknown }).kind)}`;
  }
}

// --- transitions ----------------------------------------------------------------------------

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortPartitions(ps: readonly MetaPartition[]): MetaPartition[] {
  return [...ps].sort((a, b) => cmp(a.start, b.start));
}

function sortNodes(ns: readonly MetaNode[]): MetaNode[] {
  return [...ns].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function refuse(s: MetaState, reason: MetaRefusal, message: string): { state: MetaState; result: MetaResult } {
  return { state: s, result: { ok: false, reason, message, epoch: s.epoch } };
}

function unchanged(s: MetaState): { state: MetaState; result: MetaResult } {
  return { state: s, result: { ok: true, epoch: s.epoch, changed: false } };
}

function changed(
  s: MetaState,
  partitions: readonly MetaPartition[],
  nodes: readonly MetaNode[],
  idFloor = s.idFloor,
): { state: MetaState; result: MetaResult } {
  const epoch = s.epoch + 1n;
  return { state: { epoch, partitions, nodes, ...(idFloor === undefined ? {} : { idFloor }) }, result: { ok: true, epoch, changed: true } };
}

const sameReplicas = (a: readonly NodeId[], b: readonly NodeId[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const sameReplicaSet = (a: readonly NodeId[], b: readonly NodeId[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

/**
 * Applies one command: the next state and the command's result. A refused command returns the
 * same state. Structurally invalid commands (see `validateMetaCommand`) are refused as `invalid`.
 */
export function applyMetaCommand(s: MetaState, c: MetaCommand): { state: MetaState; result: MetaResult } {
  const problem = validateMetaCommand(c);
  if (problem !== undefined) return refuse(s, MetaRefusal.Invalid, problem);
  if (c.kind === 'bootstrap') {
    if (s.epoch !== 0n) return refuse(s, MetaRefusal.AlreadyBootstrapped, `the partition map is bootstrapped already (epoch ${s.epoch})`);
    const nodes = sortNodes(c.nodes.map((n) => ({ id: n.id, grpcAddress: n.grpcAddress, httpAddress: n.httpAddress, state: n.state })));
    return changed(s, sortPartitions(c.partitions), nodes);
  }
  if (s.epoch === 0n) return refuse(s, MetaRefusal.NotBootstrapped, 'the partition map is not bootstrapped yet');
  if (c.kind === 'registerNode') return registerNode(s, c.node);
  if (c.expectedEpoch !== s.epoch)
    return refuse(s, MetaRefusal.StaleEpoch, `expected epoch ${c.expectedEpoch}, but the map is at epoch ${s.epoch}: re-read the map and plan again`);
  switch (c.kind) {
    case 'setNodeState':
      return setNodeState(s, c.nodeId, c.state);
    case 'setPartitionReplicas':
      return setReplicas(s, c.partitionId, c.replicas);
    case 'splitPartition':
      return split(s, c.partitionId, c.atHash, c.newPartitionId);
    case 'mergePartitions':
      return merge(s, c.leftId, c.rightId);
  }
}

/** What a node whose data directory changed is told (the registry's and its own incarnation). */
export function wipedMessage(id: NodeId | string, registered: string, now: string): string {
  return (
    `node ${id} registered before with data directory ${registered}, but now runs on a new one (${now}): its disk was wiped or ` +
    `replaced, so it lost the Raft state its votes and acknowledged writes rest on and must not rejoin under the same id. ` +
    `Restore its data directory, or remove it (keyva node remove ${id}) and start the node with a new --node-id`
  );
}

/**
 * The refusal (`wipedMessage`) when node `id`, registered with incarnation `registered`, shows up
 * with `claimed`; undefined when either is unknown or they agree. The one rule the registry, the
 * start-up check and the Raft transport apply.
 */
export function incarnationConflict(id: NodeId | string, registered: string | undefined, claimed: string | undefined): string | undefined {
  return registered === undefined || claimed === undefined || registered === claimed ? undefined : wipedMessage(id, registered, claimed);
}

function registerNode(s: MetaState, a: NodeAddresses): { state: MetaState; result: MetaResult } {
  const known = s.nodes.find((n) => n.id === a.id);
  if (known === undefined) {
    if (s.nodes.length >= NODES_MAX) return refuse(s, MetaRefusal.Limit, `the registry holds ${NODES_MAX} nodes already`);
    const node: MetaNode = {
      id: a.id,
      grpcAddress: a.grpcAddress,
      httpAddress: a.httpAddress,
      state: NodeState.Active,
      ...(a.incarnation === undefined ? {} : { incarnation: a.incarnation }),
    };
    return changed(s, s.partitions, sortNodes([...s.nodes, node]));
  }
  if (known.state === NodeState.Removed) return refuse(s, MetaRefusal.NodeRemoved, `node ${a.id} was removed; a removed node id is never used again`);
  const conflict = incarnationConflict(a.id, known.incarnation, a.incarnation);
  if (conflict !== undefined) return refuse(s, MetaRefusal.IncarnationChanged, conflict);
  const incarnation = known.incarnation ?? a.incarnation;
  if (known.grpcAddress === a.grpcAddress && known.httpAddress === a.httpAddress && known.incarnation === incarnation) return unchanged(s);
  const node: MetaNode = { ...known, grpcAddress: a.grpcAddress, httpAddress: a.httpAddress, ...(incarnation === undefined ? {} : { incarnation }) };
  return changed(
    s,
    s.partitions,
    s.nodes.map((n) => (n.id === a.id ? node : n)),
  );
}

function setNodeState(s: MetaState, id: NodeId, state: NodeState): { state: MetaState; result: MetaResult } {
  const known = s.nodes.find((n) => n.id === id);
  if (known === undefined) return refuse(s, MetaRefusal.UnknownNode, `node ${id} is not registered`);
  if (known.state === NodeState.Removed) return refuse(s, MetaRefusal.NodeRemoved, `node ${id} was removed; a removed node id is never used again`);
  if (known.state === state) return unchanged(s);
  if (state === NodeState.Removed) {
    const held = s.partitions.filter((p) => p.replicas.includes(id)).map((p) => p.id);
    if (held.length > 0)
      return refuse(
        s,
        MetaRefusal.NodeHoldsReplicas,
        `node ${id} still holds replicas of ${held.length} partition(s) (e.g. ${held.slice(0, 5).join(', ')}); move them first`,
      );
  }
  return changed(
    s,
    s.partitions,
    s.nodes.map((n) => (n.id === id ? { ...n, state } : n)),
  );
}

function replicaProblem(s: MetaState, replicas: readonly NodeId[]): { reason: MetaRefusal; message: string } | undefined {
  for (const r of replicas) {
    const n = s.nodes.find((x) => x.id === r);
    if (n === undefined) return { reason: MetaRefusal.UnknownNode, message: `replica ${r} is not a registered node` };
    if (n.state === NodeState.Removed) return { reason: MetaRefusal.NodeRemoved, message: `replica ${r} is a removed node` };
  }
  return undefined;
}

function setReplicas(s: MetaState, id: PartitionId, replicas: readonly NodeId[]): { state: MetaState; result: MetaResult } {
  const p = s.partitions.find((x) => x.id === id);
  if (p === undefined) return refuse(s, MetaRefusal.UnknownPartition, `partition ${id} does not exist`);
  const bad = replicaProblem(s, replicas);
  if (bad) return refuse(s, bad.reason, bad.message);
  if (sameReplicas(p.replicas, replicas)) return unchanged(s);
  const next: MetaPartition = { ...p, replicas: [...replicas], generation: p.generation + 1n };
  return changed(
    s,
    s.partitions.map((x) => (x.id === id ? next : x)),
    s.nodes,
  );
}

function split(s: MetaState, id: PartitionId, at: bigint, newId: PartitionId): { state: MetaState; result: MetaResult } {
  const p = s.partitions.find((x) => x.id === id);
  if (p === undefined) return refuse(s, MetaRefusal.UnknownPartition, `partition ${id} does not exist`);
  if (at <= p.start || at >= p.end)
    return refuse(s, MetaRefusal.BadSplitPoint, `split point ${at} is not strictly inside partition ${id}'s range [${p.start}, ${p.end})`);
  if (s.partitions.some((x) => x.id === newId)) return refuse(s, MetaRefusal.PartitionIdTaken, `partition id ${newId} is in use`);
  if (newId < (s.idFloor ?? 0))
    return refuse(s, MetaRefusal.PartitionIdTaken, `partition id ${newId} belonged to a merged partition; new ids start at ${s.idFloor}`);
  if (s.partitions.length >= PARTITIONS_MAX) return refuse(s, MetaRefusal.Limit, `the map holds ${PARTITIONS_MAX} partitions already`);
  const generation = p.generation + 1n;
  const left: MetaPartition = { ...p, end: at, generation };
  const right: MetaPartition = { id: newId, start: at, end: p.end, generation, replicas: p.replicas };
  return changed(s, sortPartitions([...s.partitions.filter((x) => x.id !== id), left, right]), s.nodes);
}

function merge(s: MetaState, leftId: PartitionId, rightId: PartitionId): { state: MetaState; result: MetaResult } {
  const l = s.partitions.find((x) => x.id === leftId);
  const r = s.partitions.find((x) => x.id === rightId);
  if (l === undefined || r === undefined) return refuse(s, MetaRefusal.UnknownPartition, `partition ${l === undefined ? leftId : rightId} does not exist`);
  if (l.end !== r.start)
    return refuse(s, MetaRefusal.NotAdjacent, `partition ${leftId} [${l.start}, ${l.end}) is not directly below partition ${rightId} [${r.start}, ${r.end})`);
  if (!sameReplicaSet(l.replicas, r.replicas))
    return refuse(
      s,
      MetaRefusal.ReplicasDiffer,
      `partitions ${leftId} and ${rightId} are on different replicas (${l.replicas.join(',')} / ${r.replicas.join(',')}); move replicas first`,
    );
  // (bigints: no Math.max)
  const newer = l.generation > r.generation ? l : r;
  const generation = newer.generation + 1n;
  const merged: MetaPartition = { ...l, end: r.end, generation };
  let floor = s.idFloor ?? 0;
  for (const p of s.partitions) if (p.id + 1 > floor) floor = p.id + 1;
  return changed(
    s,
    s.partitions.filter((x) => x.id !== rightId).map((x) => (x.id === leftId ? merged : x)),
    s.nodes,
    floor,
  );
}

/**
 * The initial map: `count` equal ranges with `nodes` registered active. Each partition lives on
 * `replicationFactor` (RF) of `replicas` (default: all of them), dealt round-robin over the
 * replicas sorted by id: partition p takes the slots p*RF .. p*RF+RF-1, slot k being node
 * sorted[k mod n] (RF <= n consecutive slots are distinct nodes). Deterministic (every founder
 * computes the same map) and balanced: replica counts per node differ by at most one. Each list
 * is rotated by p mod RF so the first-listed replica varies (with RF = n it is sorted[p mod n]).
 */
export function initialMap(
  count: number,
  nodes: readonly NodeAddresses[],
  replicas: readonly NodeId[],
  replicationFactor: number = replicas.length,
): Extract<MetaCommand, { kind: 'bootstrap' }> {
  const sorted = [...new Set(replicas)].sort();
  // No replicas at all (a joining node's placeholder before it learns the map): partitions on none.
  if (sorted.length > 0 && (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > sorted.length))
    throw new Error(`initial map: replication factor ${replicationFactor} needs 1 to ${sorted.length} replicas (${sorted.length} given)`);
  const n = BigInt(count);
  const partitions: MetaPartition[] = Array.from({ length: count }, (_, i) => ({
    id: i as PartitionId,
    start: (BigInt(i) * HASH_SPACE_END) / n,
    end: (BigInt(i + 1) * HASH_SPACE_END) / n,
    generation: 1n,
    replicas: placeReplicas(sorted, i, Math.min(replicationFactor, sorted.length)),
  }));
  return { kind: 'bootstrap', partitions, nodes: nodes.map((a) => ({ ...a, state: NodeState.Active })) };
}

function placeReplicas(sorted: readonly NodeId[], partition: number, rf: number): NodeId[] {
  const set = Array.from({ length: rf }, (_, r) => sorted[(partition * rf + r) % sorted.length] as NodeId);
  const shift = rf === 0 ? 0 : partition % rf;
  return [...set.slice(shift), ...set.slice(0, shift)];
}
