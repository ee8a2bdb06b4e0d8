/**
 * Decides which versions garbage collection removes, fed the data key space in storage order
 * (possibly across several bounded chunks). Pure logic; shared by every engine.
 *
 * Per user key, versions arrive newest first. With watermark W and wall clock `nowMs`:
 * - the newest version <= W (the "base") is what a read at W sees: kept when live, removed when
 *   it is a tombstone or expired; every older version is removed (no read >= W can see it);
 * - above W, dead versions (tombstones, expired values) that are older than every live version
 *   above W are removed too when the base is removed or absent: nothing older remains for them
 *   to shadow, so every read >= W answers the same. Live versions above W are always kept.
 * Expiry is monotonic in wall-clock time, so a value expired at `nowMs` stays expired.
 *
 * A removed base is emitted only when its key ends (with the dead run above it), after every
 * older version: when GC is split into chunks, a read in between never finds an older version
 * uncovered. When a key's newest seen version is removed, the key is reported by
 * `takeLatestRechecks()` so the engine re-derives its latest entry (`latest-space.ts`) in the
 * same write as those deletes.
 */
import { commitTsOf, isDeadValue, versionsPrefixOf } from './key-codec.ts';
import type { Timestamp } from './types.ts';

/** Dead versions above the watermark remembered per key; beyond this they are conservatively kept. */
export const GC_DEAD_RUN_MAX = 4096;

export class GcPlanner {
  readonly #watermark: Timestamp;
  readonly #nowMs: number;
  #prefix: Buffer | undefined;
  #baseSeen = false;
  #baseKept = false;
  #run: Buffer[] = [];
  #runOverflow = false;
  /** The dead base, removed when the key ends. */
  #deadBase: Buffer | undefined;
  /** Whether the key's first (newest seen) row is the dead base / in the dead run. */
  #firstIsDeadBase = false;
  #firstInRun = false;
  #rechecks: Buffer[] = [];
  #removed = 0;

  constructor(watermark: Timestamp, nowMs: number) {
    this.#watermark = watermark;
    this.#nowMs = nowMs;
  }

  /** Versions removed so far (deletes returned by feed/finish). */
  get removed(): number {
    return this.#removed;
  }

  /** Feeds the next data row in storage order; returns storage keys to delete now. */
  feed(key: Buffer, value: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const prefix = versionsPrefixOf(key);
    let first = false;
    if (this.#prefix === undefined || !prefix.equals(this.#prefix)) {
      this.#endKey(out);
      this.#prefix = Buffer.from(prefix);
      first = true;
    }
    const dead = isDeadValue(value, this.#nowMs);
    if (commitTsOf(key) > this.#watermark) {
      if (!dead) {
        this.#run = [];
        this.#runOverflow = false;
        this.#firstInRun = false;
      } else if (this.#run.length < GC_DEAD_RUN_MAX && !this.#runOverflow) {
        this.#run.push(Buffer.from(key));
        if (first) this.#firstInRun = true;
      } else {
        this.#run = [];
        this.#runOverflow = true;
        this.#firstInRun = false;
      }
    } else if (!this.#baseSeen) {
      this.#baseSeen = true;
      this.#baseKept = !dead;
      if (dead) {
        this.#deadBase = Buffer.from(key);
        this.#firstIsDeadBase = first;
      }
    } else {
      out.push(Buffer.from(key));
    }
    this.#removed += out.length;
    return out;
  }

  /**
   * Versions prefixes of the keys whose newest seen version was among the deletes returned so
   * far (since the last call): their latest entries must be re-derived after those deletes.
   */
  takeLatestRechecks(): Buffer[] {
    const out = this.#rechecks;
    this.#rechecks = [];
    return out;
  }

  /** Ends the last key; returns its remaining deletes. */
  finish(): Buffer[] {
    const out: Buffer[] = [];
    this.#endKey(out);
    this.#prefix = undefined;
    this.#removed += out.length;
    return out;
  }

  #endKey(out: Buffer[]): void {
    if (this.#prefix !== undefined) {
      let firstRemoved = false;
      if (!this.#baseKept && !this.#runOverflow) {
        for (const k of this.#run) out.push(k);
        firstRemoved = this.#firstInRun;
      }
      if (this.#deadBase !== undefined) {
        out.push(this.#deadBase);
        firstRemoved ||= this.#firstIsDeadBase;
      }
      if (firstRemoved) this.#rechecks.push(this.#prefix);
    }
    this.#baseSeen = false;
    this.#baseKept = false;
    this.#run = [];
    this.#runOverflow = false;
    this.#deadBase = undefined;
    this.#firstIsDeadBase = false;
    this.#firstInRun = false;
  }
}
