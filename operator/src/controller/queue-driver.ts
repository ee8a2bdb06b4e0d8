/** Async driver of the pure WorkQueue: workers await `next()`; one timer for the earliest delayed key. */
import { type QueueClock, WorkQueue, type WorkQueueOptions } from './work-queue.ts';

export class AsyncWorkQueue {
  readonly q: WorkQueue;
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private readonly clock: QueueClock;

  constructor(clock: QueueClock, o?: WorkQueueOptions) {
    this.clock = clock;
    this.q = new WorkQueue(clock, o);
  }

  add(key: string): void {
    this.q.add(key);
    this.wake();
  }

  addAfter(key: string, ms: number): void {
    this.q.addAfter(key, ms);
    this.wake();
  }

  addRateLimited(key: string): number {
    const d = this.q.addRateLimited(key);
    this.wake();
    return d;
  }

  forget(key: string): void {
    this.q.forget(key);
  }

  done(key: string): void {
    this.q.done(key);
    this.wake();
  }

  /** The next key, or undefined once `signal` aborts. */
  async next(signal: AbortSignal): Promise<string | undefined> {
    for (;;) {
      if (signal.aborted || this.q.isShuttingDown) return undefined;
      const k = this.q.get();
      if (k !== undefined) return k;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
        this.arm();
      });
    }
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
    if (ws.length === 0) this.arm();
  }

  private arm(): void {
    const due = this.q.nextDueMs();
    if (due === undefined) return;
    const at = this.clock.now() + due;
    if (this.timer && at >= this.timerDue) return;
    clearTimeout(this.timer);
    this.timerDue = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Number.POSITIVE_INFINITY;
      this.wake();
    }, due);
    this.timer.unref?.();
  }

  shutDown(): void {
    this.q.shutDown();
    clearTimeout(this.timer);
    this.wake();
  }
}
