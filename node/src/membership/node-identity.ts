/**
 * A node's durable identity: its node id (configured, or generated at first start) and the
 * **incarnation** of its data directory, a random 64-bit id written once, when the directory is
 * first used. Both live in the data directory, so a data directory never changes owner, and a node
 * whose disk was wiped or replaced comes back with the same id but a new incarnation.
 *
 * Why that matters (docs/adr/0008, "Wiped data directories"): a Raft replica's votes and the log
 * entries it acknowledged rest on its disk. A founder that restarts on an empty disk would
 * bootstrap its groups again with an empty log: it could vote a second time in a term it already
 * voted in, and a leader could be elected without writes that only its old disk held — acknowledged
 * writes lost. So the node registers its incarnation in the meta group's registry, and before it
 * opens any Raft group it asks its peers for their registry (`checkIncarnation`): if the registry
 * lists its id with another incarnation, it refuses to start and says what to do.
 */
import type { NodeId } from '@keyva/client/keyspace';
import type { GetPartitionMapResponseOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import type { HybridClock } from '../clock/hybrid-clock.ts';
import { metaKey } from '../engine/key-codec.ts';
import type { StorageEngine } from '../engine/types.ts';
import { INCARNATION_PATTERN, incarnationConflict } from '../meta/meta-state.ts';
import type { PeerAdmin } from './peer-admin.ts';

const NODE_ID_KEY = metaKey('node-id');
const INCARNATION_KEY = metaKey('incarnation');

/** How long the start-up check waits for each peer's answer (peers that are down do not answer). */
export const INCARNATION_CHECK_DEADLINE_MS = 2_000;

export interface NodeIdentity {
  readonly id: NodeId;
  /** 16 lowercase hex digits, random, written once per data directory. */
  readonly incarnation: string;
}

/**
 * The node id and incarnation stored in the data directory, written (synced) on first use. The
 * configured id must match a stored one. A data directory from before incarnations gets one now.
 */
export async function loadNodeIdentity(
  engine: StorageEngine,
  configured: string | undefined,
  clock: HybridClock,
  random: (bytes: number) => Buffer,
): Promise<NodeIdentity> {
  const stored = (await engine.getRaw(NODE_ID_KEY))?.toString('utf8');
  if (stored && configured && stored !== configured)
    throw new Error(`data dir belongs to node '${stored}' but --node-id is '${configured}': refusing to start with another node's data`);
  const id = stored ?? configured ?? `n-${random(4).toString('hex')}`;
  const storedIncarnation = (await engine.getRaw(INCARNATION_KEY))?.toString('utf8');
  if (storedIncarnation !== undefined && !INCARNATION_PATTERN.test(storedIncarnation))
    throw new KeyVaError('STORAGE_ERROR', `corrupt data directory: incarnation ${JSON.stringify(storedIncarnation)} is not 16 hex digits`);
  const incarnation = storedIncarnation ?? random(8).toString('hex');
  const mutations = [
    ...(stored ? [] : [{ type: 'rawPut' as const, key: NODE_ID_KEY, value: Buffer.from(id) }]),
    ...(storedIncarnation ? [] : [{ type: 'rawPut' as const, key: INCARNATION_KEY, value: Buffer.from(incarnation) }]),
  ];
  if (mutations.length > 0) await engine.write({ mutations, commitTs: clock.now(), nowMs: clock.nowMs(), sync: true });
  return { id: id as NodeId, incarnation };
}

/**
 * Asks every peer (in parallel, `deadlineMs` each) for its partition map and throws if one's
 * registry lists `self` with an incarnation other than this data directory's. Peers that do not
 * answer prove nothing (at a cluster's first start none may be up yet), so this check is best
 * effort: a node whose peers are all down when it starts on a wiped disk is not stopped here; its
 * peers refuse its Raft streams once they are back (`incarnationGuard`).
 */
export async function checkIncarnation(
  self: NodeIdentity,
  peers: readonly { readonly id: string; readonly grpcAddress: string }[],
  admin: PeerAdmin,
  deadlineMs: number = INCARNATION_CHECK_DEADLINE_MS,
): Promise<void> {
  const answers = await Promise.allSettled(
    peers.filter((p) => p.id !== self.id).map((p) => admin.call<object, GetPartitionMapResponseOut>(p.grpcAddress, 'GetPartitionMap', {}, deadlineMs)),
  );
  for (const a of answers) {
    if (a.status !== 'fulfilled') continue;
    const registered = a.value.map?.nodes.find((n) => n.id === self.id)?.incarnation;
    const conflict = incarnationConflict(self.id, registered === '' ? undefined : registered, self.incarnation);
    if (conflict !== undefined) throw new Error(conflict);
  }
}

/** How often a refused node is logged, at most. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/**
 * The Raft transport's `refuses` check: traffic from a node that the registry knows under another
 * incarnation is refused (and logged once a minute per node). A node the registry does not know
 * yet, or without an incarnation (a memory engine, or not registered yet), is taken.
 */
export function incarnationGuard(
  registered: (id: string) => string | undefined,
  warn: (from: string, message: string) => void,
  nowMs: () => number = Date.now,
): (from: string, incarnation: string | undefined) => string | undefined {
  const logged = new Map<string, number>();
  return (from, incarnation) => {
    const message = incarnationConflict(from, registered(from), incarnation);
    if (message === undefined) return undefined;
    const last = logged.get(from);
    if (last === undefined || nowMs() - last >= REFUSAL_LOG_INTERVAL_MS) {
      logged.set(from, nowMs());
      warn(from, message);
    }
    return message;
  };
}
