/**
 * Scan progress: what a scan has delivered, and the request that continues it — after a page
 * (the node's cursor) or after a failed stream (resume without repeating or losing entries).
 *
 * Nodes return scan entries in storage order: by partition hash, then by key bytes (DESIGN §4).
 * The scan remembers the position of the last entry delivered and skips every entry at or
 * before it. A resumed request starts from the newest cursor the node sent; without one, a tag
 * scan starts just after the last key, and the read is pinned to the snapshot the scan started
 * at (the first response's read_ts), so the resumed part sees the same data. Nodes bind cursors
 * to the scan's parameters, so once the start moves, later requests keep the moved start.
 */
import type { ScanRequest, ScanResponseOut } from '@keyva/proto';
import { keyHash } from './keyspace/index.ts';

export interface ScanPosition {
  readonly hash: bigint;
  readonly key: Buffer;
}

export function positionOf(key: Buffer): ScanPosition {
  return { hash: keyHash(key), key };
}

/** Storage order: hash, then key bytes. */
export function comparePositions(a: ScanPosition, b: ScanPosition): number {
  if (a.hash !== b.hash) return a.hash < b.hash ? -1 : 1;
  return Buffer.compare(a.key, b.key);
}

/** The smallest key greater than `key` in byte order. */
export function keySuccessor(key: Buffer): Buffer {
  return Buffer.concat([key, Buffer.from([0])]);
}

function bytes(b: ScanRequest['start']): Buffer {
  if (b === undefined) return Buffer.alloc(0);
  return typeof b === 'string' ? Buffer.from(b, 'base64') : Buffer.from(b);
}

export class ScanProgress {
  /** Entries delivered so far. */
  delivered = 0;
  /** Last delivered position. */
  last: ScanPosition | undefined;
  /** Newest cursor the node sent (a resume point at or before `last`); '' = none. */
  cursor: string;
  /** read_ts of the first response: the snapshot the scan reads. */
  readTs: string | undefined;
  private base: ScanRequest;
  /** Total entries asked for; 0 = no limit. */
  private readonly limit: number;

  constructor(request: ScanRequest) {
    this.base = { ...request, cursor: '' };
    this.cursor = request.cursor ?? '';
    this.limit = request.limit ?? 0;
  }

  get done(): boolean {
    return this.limit > 0 && this.delivered >= this.limit;
  }

  /** Records the cursor and snapshot of a response. */
  observe(msg: ScanResponseOut): void {
    if (msg.nextCursor !== '') this.cursor = msg.nextCursor;
    if (this.readTs === undefined && msg.readTs !== '' && msg.readTs !== '0') this.readTs = msg.readTs;
  }

  /** true when `key` is new (after the last delivered entry); records it as delivered. */
  accept(key: Buffer): boolean {
    const pos = positionOf(key);
    if (this.last !== undefined && comparePositions(pos, this.last) <= 0) return false;
    this.last = pos;
    this.delivered++;
    return true;
  }

  /** Prepares the next request after a failed stream (before `request()`). */
  afterFailure(): void {
    if (this.cursor !== '' || this.last === undefined) return;
    const next: ScanRequest = { ...this.base };
    // Inside one tag the keys are in key order: start after the last key delivered.
    if (bytes(this.base.tag).length > 0) {
      const after = keySuccessor(this.last.key);
      const start = bytes(this.base.start);
      next.start = Buffer.compare(after, start) > 0 ? after : start;
    }
    // Read the rest at the snapshot the delivered part came from.
    if (this.readTs !== undefined) next.read = { consistency: 'SNAPSHOT', snapshotTs: this.readTs };
    this.base = next;
  }

  /** The request for the next RPC: from the newest cursor, asking only for what remains. */
  request(): ScanRequest {
    return { ...this.base, cursor: this.cursor, limit: this.limit > 0 ? this.limit - this.delivered : 0 };
  }
}
