/**
 * Runs a background pass (a reconcile) at most once at a time: a request while a pass runs
 * coalesces into one more pass right after it. Errors go to `onError` (the next request retries).
 * The split and merge coordinators run their reconcilers through it.
 */
export class CoalescedRun {
  private readonly pass: () => Promise<void>;
  private readonly onError: (e: unknown) => void;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(pass: () => Promise<void>, onError: (e: unknown) => void) {
    this.pass = pass;
    this.onError = onError;
  }

  /** Runs a pass soon: now, or right after the one under way (coalesced). */
  request(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch(this.onError)
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.request();
        }
      });
  }

  /** Resolves once no pass runs (the one under way, if any, finished). */
  async idle(): Promise<void> {
    await this.running;
  }

  /** No more passes; resolves once the one under way finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}
