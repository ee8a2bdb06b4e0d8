/**
 * Routing (DESIGN §3): keeps the cluster's partition map, sends a key to its partition's leader
 * (by the map's `leaderHint`), and falls back to the seed endpoints when the map is missing or
 * names no reachable leader. A node answering NOT_LEADER / WRONG_PARTITION (details: `epoch`,
 * `leaderHint`) makes the router follow the hint at once and refresh the map; concurrent
 * refreshes share one request (single flight). A map never replaces a newer one.
 */
import { KeyVaError } from '@keyva/proto/errors';
import { keyHash, type NodeId, type PartitionId, type PartitionMap, tagHash } from './keyspace/index.ts';

/** Where one attempt goes. */
export interface Route {
  readonly address: string;
  /** Undefined when the router has no map (seed-endpoint routing). */
  readonly partitionId: PartitionId | undefined;
}

export interface RouterOptions {
  /** Seed endpoints (host:port), at least one. */
  readonly seeds: readonly string[];
  /** Fetches the map from one node; rejects with a KeyVaError when that node cannot answer. */
  readonly fetchMap: (address: string, deadlineMs: number) => Promise<PartitionMap>;
  /** Budget of one refresh when the caller gives none (epoch ms deadlines are computed from it). */
  readonly refreshTimeoutMs: number;
}

/**
 * Leader hints a call follows without a backoff; later ones back off first. Two nodes can point
 * at each other for a moment while leadership and the map move (the old leader names the new
 * one; the new one, whose copy of the map does not list it yet, names the old replicas): followed
 * at once, they would burn the call's attempts in milliseconds.
 */
export const REDIRECTS_AT_ONCE_MAX = 3;

export class Router {
  private readonly options: RouterOptions;
  private current: PartitionMap | undefined;
  /** Leaders learnt from NOT_LEADER hints, newer than the map; cleared by a newer map. */
  private readonly leaderOverrides = new Map<PartitionId, NodeId>();
  private refreshing: Promise<PartitionMap | undefined> | undefined;
  private seedNext = 0;
  private replicaNext = 0;

  constructor(options: RouterOptions) {
    if (options.seeds.length === 0) throw new KeyVaError('INVALID_ARGUMENT', 'at least one endpoint is needed', { field: 'endpoints' });
    this.options = options;
  }

  get map(): PartitionMap | undefined {
    return this.current;
  }

  /** Route of a key: its partition's leader. */
  route(key: Uint8Array): Route {
    return this.routeHash(keyHash(key));
  }

  /** Route of a hash tag's keys (tag scans). */
  routeTag(tag: Uint8Array): Route {
    return this.routeHash(tagHash(tag));
  }

  routeHash(hash: bigint): Route {
    const map = this.current;
    if (map === undefined) return { address: this.anyAddress(), partitionId: undefined };
    const p = map.locate(hash);
    const leader = this.leaderOverrides.get(p.id) ?? p.leaderHint;
    // No leader known (the node that served the map hosts no replica of p): one of p's replicas,
    // rotating, since a replica names its leader while other nodes may hold none of p's data.
    const address = this.addressOf(leader) ?? this.replicaAddress(p.replicas);
    return { address: address ?? this.anyAddress(), partitionId: p.id };
  }

  /** A seed endpoint, rotating, for calls any node can answer. */
  anyAddress(): string {
    const seeds = this.options.seeds;
    const a = seeds[this.seedNext % seeds.length] as string;
    this.seedNext = (this.seedNext + 1) % seeds.length;
    return a;
  }

  /** Installs `map` unless the router already holds a newer one. Returns the map in force. */
  install(map: PartitionMap): PartitionMap {
    // The same epoch may carry fresher leader hints (a leader change is not an epoch change).
    if (this.current === undefined || map.epoch >= this.current.epoch) {
      this.current = map;
      this.leaderOverrides.clear();
    }
    return this.current;
  }

  /**
   * Fetches the map from the known nodes (map nodes first, then seeds) until one answers.
   * Single flight: callers arriving during a refresh share it. Resolves undefined when no node
   * answered (the previous map, if any, stays in force); `throwOnFailure` rejects instead.
   */
  refresh(deadlineMs?: number, throwOnFailure = false): Promise<PartitionMap | undefined> {
    if (this.refreshing === undefined) {
      const deadline = deadlineMs ?? Date.now() + this.options.refreshTimeoutMs;
      this.refreshing = this.fetchFromAny(deadline).finally(() => {
        this.refreshing = undefined;
      });
    }
    const p = this.refreshing;
    return throwOnFailure
      ? p
      : p.then(
          (m) => m,
          () => undefined,
        );
  }

  /**
   * Reacts to the error of retry number `retry` (1 = the first) of a call, sent along `route`.
   * Resolves true when the next attempt can go out at once (a different leader is now known),
   * false when it should back off. A leader hint names the partition in `details.partitionId`;
   * without it the hint is applied to the routed partition only for single-key requests (a batch
   * refreshes the map instead). A call follows at most `REDIRECTS_AT_ONCE_MAX` hints at once.
   */
  async onError(err: KeyVaError, route: Route, deadlineMs: number, singleKey = true, retry = 1): Promise<boolean> {
    if (err.code === 'UNAVAILABLE') {
      // The node may be down and leadership moving: refresh in the background, back off meanwhile.
      if (this.current !== undefined) void this.refresh(deadlineMs);
      return false;
    }
    if (err.code !== 'NOT_LEADER' && err.code !== 'WRONG_PARTITION') return false;
    const map = this.current;
    const epoch = parseEpoch(err.details.epoch);
    // A node behind our map knows less than we do: back off and ask again.
    if (map !== undefined && epoch !== undefined && epoch < map.epoch) return false;
    const hint = err.details.leaderHint as NodeId | undefined;
    // The hint is about the partition named in the details, else (single-key requests) the one routed to.
    const partitionId = parsePartitionId(err.details.partitionId) ?? (singleKey ? route.partitionId : undefined);
    if (err.code === 'NOT_LEADER' && map !== undefined && partitionId !== undefined && hint !== undefined && (epoch === undefined || epoch === map.epoch)) {
      const address = this.addressOf(hint);
      if (address !== undefined && map.byId(partitionId) !== undefined) {
        this.leaderOverrides.set(partitionId, hint);
        return address !== route.address && retry <= REDIRECTS_AT_ONCE_MAX;
      }
    }
    // Unknown leader, newer epoch or a stale range: wait for a fresh map before retrying.
    const before = this.current;
    const after = await this.refresh(deadlineMs);
    if (after === undefined || after === before) return false;
    if (before === undefined || after.epoch > before.epoch) return true;
    // The same epoch again (a refresh replaces the map object every time): retry at once only if
    // it now routes elsewhere, else back off (a merge or split in progress answers
    // WRONG_PARTITION for a moment, and immediate retries would burn the retry budget).
    return route.partitionId !== undefined && this.routeHash(after.byId(route.partitionId)?.start ?? 0n).address !== route.address;
  }

  private replicaAddress(replicas: readonly NodeId[]): string | undefined {
    for (let i = 0; i < replicas.length; i++) {
      const a = this.addressOf(replicas[(this.replicaNext + i) % replicas.length]);
      if (a !== undefined) {
        this.replicaNext = (this.replicaNext + i + 1) % 1_000_000;
        return a;
      }
    }
    return undefined;
  }

  private addressOf(node: NodeId | undefined): string | undefined {
    if (node === undefined || this.current === undefined) return undefined;
    const a = this.current.nodes.get(node)?.grpcAddress;
    return a === undefined || a === '' ? undefined : a;
  }

  private candidates(): string[] {
    const out = new Set<string>();
    // Start from a rotating seed so a dead first endpoint does not slow every refresh.
    const seeds = this.options.seeds;
    const start = this.seedNext;
    if (this.current !== undefined) for (const n of this.current.nodes.values()) if (n.grpcAddress !== '') out.add(n.grpcAddress);
    for (let i = 0; i < seeds.length; i++) out.add(seeds[(start + i) % seeds.length] as string);
    return [...out];
  }

  /** Asks the candidates in turn; each gets an equal share of what remains of the budget. */
  private async fetchFromAny(deadlineMs: number): Promise<PartitionMap> {
    let last: unknown;
    const candidates = this.candidates();
    for (let i = 0; i < candidates.length; i++) {
      const now = Date.now();
      if (now >= deadlineMs) break;
      const share = now + Math.ceil((deadlineMs - now) / (candidates.length - i));
      try {
        return this.install(await this.options.fetchMap(candidates[i] as string, share));
      } catch (e) {
        last = e;
      }
    }
    throw last ?? new KeyVaError('DEADLINE_EXCEEDED', 'no node answered GetPartitionMap before the deadline');
  }
}

function parseEpoch(s: string | undefined): bigint | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  return BigInt(s);
}

function parsePartitionId(s: string | undefined): PartitionId | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  return Number(s) as PartitionId;
}
