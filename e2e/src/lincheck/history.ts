/**
 * Records a concurrent client history for the linearizability checker: one JSON line per
 * operation with call and return times on ONE monotonic clock (process.hrtime). An operation
 * whose answer never came (timeout, broken connection after sending) is recorded as "unknown",
 * never as failed; "fail" is only for errors that prove the operation had no effect.
 */
import { writeFileSync } from 'node:fs';

export type OpKind = 'get' | 'put' | 'delete' | 'cas';
export type OpStatus = 'ok' | 'fail' | 'unknown';

export interface HistoryOp {
  readonly client: number;
  readonly op: OpKind;
  readonly key: string;
  readonly value?: string;
  readonly expected?: string;
  readonly expectedAbsent?: boolean;
  readonly call: number;
  readonly return: number | null;
  readonly status: OpStatus;
  readonly found?: boolean;
  readonly output?: string;
  readonly ok?: boolean;
  /** Free text for a post-mortem (e.g. the error an operation ended with); the checker ignores it. */
  readonly note?: string;
}

export type Outcome =
  | { readonly status: 'ok'; readonly found?: boolean; readonly output?: string; readonly ok?: boolean }
  | { readonly status: 'fail'; readonly note?: string }
  | { readonly status: 'unknown'; readonly note?: string };

const now = () => Number(process.hrtime.bigint());

export class History {
  readonly ops: HistoryOp[] = [];

  /** Runs `fn` as one operation and records it with the outcome `classify` gives. */
  async record<T>(
    base: Omit<HistoryOp, 'call' | 'return' | 'status'>,
    fn: () => Promise<T>,
    classify: (r: { value?: T; error?: unknown }) => Outcome,
  ): Promise<T | undefined> {
    return (await this.run(base, fn, classify)).value;
  }

  /** Like `record`, also returning the recorded operation (its status says what happened). */
  async run<T>(
    base: Omit<HistoryOp, 'call' | 'return' | 'status'>,
    fn: () => Promise<T>,
    classify: (r: { value?: T; error?: unknown }) => Outcome,
  ): Promise<{ value: T | undefined; op: HistoryOp }> {
    const call = now();
    let outcome: Outcome;
    let value: T | undefined;
    try {
      value = await fn();
      outcome = classify({ value });
    } catch (error) {
      outcome = classify({ error });
    }
    const ret = outcome.status === 'unknown' ? null : now();
    const op: HistoryOp = { ...base, call, return: ret, ...outcome };
    this.ops.push(op);
    return { value, op };
  }

  counts(): Record<OpStatus, number> {
    const c = { ok: 0, fail: 0, unknown: 0 };
    for (const o of this.ops) c[o.status]++;
    return c;
  }

  write(path: string): void {
    History.writeOps(path, this.ops);
  }

  /** Writes any list of operations in the checker's format (e.g. a deliberately broken copy). */
  static writeOps(path: string, ops: readonly HistoryOp[]): void {
    writeFileSync(path, `${ops.map((o) => JSON.stringify(o)).join('\n')}\n`);
  }
}
