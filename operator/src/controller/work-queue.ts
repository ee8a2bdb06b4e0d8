/**
 * The controller's work queue (client-go workqueue semantics), as a pure data structure with an
 * injected clock: it never starts a timer itself. The driver asks `nextDueMs()` when to come back.
 *
 *  - de-duplicates: a key waiting in the queue is queued once, however often it is added;
 *  - never hands one key to two workers: a key being processed is not handed out again;
 *  - a key added while it is being processed is marked dirty and re-queued by `done()`;
 *  - per-key exponential backoff (`addRateLimited`) that `forget()` resets after a success;
 *  - delayed adds (`addAfter`) keep the earliest due time per key.
 */

export interface QueueClock {
  now(): number;
}

export interface WorkQueueOptions {
  /** First retry delay after a failure. Default 200 ms. */
  readonly backoffBaseMs?: number;
  /** Longest retry delay. Default 60 s. */
  readonly backoffMaxMs?: number;
}

export class WorkQueue<K extends string = string> {
  private readonly clock: QueueClock;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  /** FIFO of keys ready to be handed out. Each key at most once. */
  private readonly ready: K[] = [];
  /** Keys that need processing (in `ready`, or re-queued when their processing ends). */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  /** Delayed keys: key -> due time (ms on the injected clock). */
  private readonly waiting = new Map<K, number>();
  private readonly failures = new Map<K, number>();
  private shuttingDown = false;

  constructor(clock: QueueClock, o: WorkQueueOptions = {}) {
    this.clock = clock;
    this.backoffBaseMs = o.backoffBaseMs ?? 200;
    this.backoffMaxMs = o.backoffMaxMs ?? 60_000;
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.waiting.delete(key);
    if (!this.processing.has(key)) this.ready.push(key);
  }

  addAfter(key: K, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    if (this.dirty.has(key)) return; // already due now
    const due = this.clock.now() + delayMs;
    const current = this.waiting.get(key);
    if (current === undefined || due < current) this.waiting.set(key, due);
  }

  /** Re-queue after a failure with per-key exponential backoff. Returns the delay used. */
  addRateLimited(key: K): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = Math.min(this.backoffBaseMs * 2 ** Math.min(n - 1, 30), this.backoffMaxMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Forget a key's failure count (call after a successful pass). */
  forget(key: K): void {
    this.failures.delete(key);
  }

  failuresOf(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Hands out the next ready key, or undefined. The caller must call `done(key)` afterwards. */
  get(): K | undefined {
    this.promoteDue();
    const key = this.ready.shift();
    if (key === undefined) return undefined;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.ready.push(key);
  }

  /** Milliseconds until the earliest delayed key is due (0 if one is ready), or undefined if none waits. */
  nextDueMs(): number | undefined {
    this.promoteDue();
    if (this.ready.length > 0) return 0;
    let min: number | undefined;
    for (const due of this.waiting.values()) if (min === undefined || due < min) min = due;
    return min === undefined ? undefined : Math.max(0, min - this.clock.now());
  }

  /** Keys ready now (excluding those being processed and delayed ones). */
  get length(): number {
    this.promoteDue();
    return this.ready.length;
  }

  get processingCount(): number {
    return this.processing.size;
  }

  get waitingCount(): number {
    return this.waiting.size;
  }

  isProcessing(key: K): boolean {
    return this.processing.has(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    this.ready.length = 0;
    this.waiting.clear();
    this.dirty.clear();
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  private promoteDue(): void {
    if (this.waiting.size === 0) return;
    const now = this.clock.now();
    const due = [...this.waiting].filter(([, t]) => t <= now).sort((a, b) => a[1] - b[1]);
    for (const [key] of due) {
      this.waiting.delete(key);
      this.add(key);
    }
  }
}
