/**
 * The static peer list of a replicated cluster (`--peers id=host:port,...`, this node included).
 * The founders place each partition on `--replication-factor` of them (`initialMap` in
 * node/src/meta/meta-state.ts); the meta group lives on every founder.
 */

export interface Peer {
  readonly id: string;
  /** gRPC address `host:port` other nodes dial for Raft and clients for KV. */
  readonly grpcAddress: string;
}

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Parses `id=host:port,...`; throws an Error naming every problem. */
export function parsePeers(text: string): Peer[] {
  const problems: string[] = [];
  const peers: Peer[] = [];
  const ids = new Set<string>();
  const addresses = new Set<string>();
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) problems.push('no peer given (expected id=host:port,...)');
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      problems.push(`'${item}' is not id=host:port`);
      continue;
    }
    const id = item.slice(0, eq);
    const address = item.slice(eq + 1);
    if (!ID.test(id)) problems.push(`peer id '${id}': lowercase letters, digits and dashes, 1-63 chars`);
    const colon = address.lastIndexOf(':');
    const host = colon > 0 ? address.slice(0, colon) : '';
    const portText = colon > 0 ? address.slice(colon + 1) : '';
    const port = Number(portText);
    if (host === '' || !/^\d+$/.test(portText) || port < 1 || port > 65535) problems.push(`peer '${id}': address '${address}' is not host:port (port 1-65535)`);
    if (ids.has(id)) problems.push(`peer id '${id}' appears twice`);
    if (addresses.has(address)) problems.push(`address '${address}' appears twice`);
    ids.add(id);
    addresses.add(address);
    peers.push({ id, grpcAddress: address });
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return peers;
}

/** Replication factors the cluster supports. */
export const REPLICATION_FACTORS: readonly number[] = [1, 3, 5];
export const DEFAULT_REPLICATION_FACTOR = 3;

/**
 * Problems of a replicated configuration (empty when fine): the node must name itself among
 * the peers and, when founding, the peers must be at least as many as the replication factor
 * (each partition is placed on `replicationFactor` of them).
 */
export function replicationProblems(peersText: string, nodeId: string | undefined, replicationFactor: number | undefined, join = false): string[] {
  let peers: Peer[];
  try {
    peers = parsePeers(peersText);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  if (nodeId === undefined) problems.push('--node-id is required with --peers (it names this node in the peer list)');
  else if (!peers.some((p) => p.id === nodeId))
    problems.push(`--node-id '${nodeId}' is not in --peers (${peers.map((p) => p.id).join(', ')}); list every member, this node included`);
  const rf = replicationFactor ?? DEFAULT_REPLICATION_FACTOR;
  if (!REPLICATION_FACTORS.includes(rf)) problems.push(`--replication-factor ${rf}: must be 1, 3 or 5`);
  // A joining node (--join) lists the members it contacts plus itself: any count.
  else if (!join && rf > peers.length)
    problems.push(
      `--replication-factor ${rf} needs at least ${rf} peers, --peers lists ${peers.length}: each partition is placed on ${rf} founders (pass --replication-factor ${Math.max(...REPLICATION_FACTORS.filter((f) => f <= peers.length))} or list more peers)`,
    );
  return problems;
}

/**
 * Problems of `--raft-dial id=host:port,...` (empty when fine): per-node overrides of the address
 * this node dials for another peer's Raft traffic (a proxy or sidecar in between); every id must
 * be another member of `--peers`.
 */
export function raftDialProblems(dialText: string, peersText: string, nodeId: string | undefined): string[] {
  let dial: Peer[];
  let peers: Peer[];
  try {
    dial = parsePeers(dialText);
    peers = parsePeers(peersText);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  for (const d of dial) {
    if (d.id === nodeId) problems.push(`'${d.id}' is this node: --raft-dial only names other peers`);
    else if (!peers.some((p) => p.id === d.id)) problems.push(`'${d.id}' is not in --peers (${peers.map((p) => p.id).join(', ')})`);
  }
  return problems;
}
