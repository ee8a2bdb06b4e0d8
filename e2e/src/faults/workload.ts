/**
 * Concurrent SDK clients for a linearizability test: each is its own KeyVa.connect instance
 * (its own channels, its own "process" in the history) running get/put/delete/CAS on a small
 * key set until stopped. Every operation is recorded with its outcome: a write error is "fail"
 * only when the SDK knows the request did not apply, otherwise "unknown" (returns at infinity);
 * a CAS that finds another value (CONDITION_FAILED) is a valid answer, ok=false.
 */
import { type ClientOptions, type Entry, isKeyVaError, KeyVa, writeOutcome } from '@keyva/client';
import type { History, HistoryOp, Outcome } from '../lincheck/history.ts';
import { prng } from './prng.ts';

export interface WorkloadOptions {
  readonly endpoints: readonly string[];
  readonly history: History;
  readonly keys: readonly string[];
  readonly clients: number;
  readonly seed: number;
  /** Overall budget of one SDK call, retries included. */
  readonly deadlineMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** KeyVa.connect, retried for up to `boundMs` (loading the map fails while groups elect or the machine is loaded). */
export async function connectRetrying(options: ClientOptions, boundMs = 30_000): Promise<KeyVa> {
  const end = performance.now() + boundMs;
  for (;;) {
    try {
      return await KeyVa.connect(options);
    } catch (e) {
      if (performance.now() > end) throw e;
      await sleep(200);
    }
  }
}

/** How a failed write ends up in the history. */
export function writeErrorOutcome(error: unknown): Outcome {
  const note = errorNote(error);
  return isKeyVaError(error) && writeOutcome(error) === 'not-applied' ? { status: 'fail', note } : { status: 'unknown', note };
}

/** The error an operation ended with, for the history file. */
export function errorNote(error: unknown): string {
  return isKeyVaError(error) ? `${error.code} (${writeOutcome(error)}): ${error.message}` : String(error);
}

const writeOutcomeOf = ({ error }: { error?: unknown }): Outcome => (error === undefined ? { status: 'ok' } : writeErrorOutcome(error));

/** Records one linearizable get (an error is unknown: the checker drops it). */
export function recordGet(h: History, kv: KeyVa, client: number, key: string): Promise<{ value: Entry | undefined; op: HistoryOp }> {
  return h.run(
    { client, op: 'get', key },
    () => kv.get(key),
    ({ value: e, error }) =>
      error === undefined ? { status: 'ok', found: e !== undefined, output: e?.value.toString() ?? '' } : { status: 'unknown', note: errorNote(error) },
  );
}

export function recordPut(h: History, kv: KeyVa, client: number, key: string, value: string): Promise<{ value: unknown; op: HistoryOp }> {
  return h.run({ client, op: 'put', key, value }, () => kv.put(key, value), writeOutcomeOf);
}

export class Workload {
  private readonly o: WorkloadOptions;
  private readonly clients: KeyVa[] = [];
  private loops: Promise<void>[] = [];
  private stopping = false;
  private counter = 0;

  constructor(o: WorkloadOptions) {
    this.o = o;
  }

  async start(): Promise<void> {
    for (let c = 0; c < this.o.clients; c++)
      this.clients.push(await connectRetrying({ endpoints: this.o.endpoints, deadlineMs: this.o.deadlineMs ?? 2000, retry: { attemptsMax: 4 } }));
    this.loops = this.clients.map((kv, c) => this.loop(kv, c));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((kv) => kv.close()));
  }

  private async loop(kv: KeyVa, c: number): Promise<void> {
    const h = this.o.history;
    const rnd = prng(this.o.seed * 1009 + c);
    while (!this.stopping) {
      const key = this.o.keys[Math.floor(rnd() * this.o.keys.length)] as string;
      const value = `${c}-${this.counter++}`;
      const r = rnd();
      let op: HistoryOp;
      if (r < 0.35) op = (await recordGet(h, kv, c, key)).op;
      else if (r < 0.65) op = (await recordPut(h, kv, c, key, value)).op;
      else if (r < 0.75) op = (await h.run({ client: c, op: 'delete', key }, () => kv.delete(key), writeOutcomeOf)).op;
      else {
        // CAS from the value this client just read (the read is part of the history too).
        const seen = await recordGet(h, kv, c, key);
        op = seen.op;
        if (op.status === 'ok') {
          const expected = seen.value?.value.toString();
          op = (
            await h.run(
              { client: c, op: 'cas', key, value, expected: expected ?? '', expectedAbsent: expected === undefined },
              () => kv.cas(key, expected === undefined ? { absent: true } : { value: expected }, value),
              ({ value: res, error }) => (error === undefined ? { status: 'ok', ok: res?.ok ?? false } : writeErrorOutcome(error)),
            )
          ).op;
        }
      }
      if (op.status !== 'ok') await sleep(50); // back off while the cluster is unavailable
    }
  }
}
