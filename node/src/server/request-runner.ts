/**
 * Every request, whatever its transport, runs through here: refused while draining, a SERVER
 * span under the caller's trace context (only when a tracer provider is registered: with tracing
 * off no span or context is made at all), metrics, and the slow-operation log. Shutdown waits
 * on `drained()` for in-flight work to finish.
 */

import { KeyVaError } from '@keyva/proto/errors';
import { type Context, context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Logger } from '../observability/logger.ts';
import type { NodeMetrics } from '../observability/metrics.ts';
import { tracer, tracingActive } from '../observability/tracing.ts';
import { asKeyVaError } from './grpc-errors.ts';
import { SlowOpLog } from './slow-op-log.ts';

export type Transport = 'grpc' | 'stream' | 'http';

export class RequestRunner {
  private inflight = 0;
  private draining = false;
  private waiters: (() => void)[] = [];
  private readonly metrics: NodeMetrics;
  private readonly log: Logger;
  private readonly slowOpMs: number;
  private readonly slowOps: SlowOpLog;

  constructor(metrics: NodeMetrics, log: Logger, slowOpMs: number) {
    this.metrics = metrics;
    this.log = log;
    this.slowOpMs = slowOpMs;
    this.slowOps = new SlowOpLog(log);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Stops accepting new requests. */
  drain(): void {
    this.draining = true;
  }

  /** Resolves when no request is in flight (after drain()). */
  drained(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Runs `fn` as one request; the promise rejects with a KeyVaError. */
  run<T>(method: string, transport: Transport, parent: Context, fn: () => Promise<T>): Promise<T> {
    if (this.draining) return Promise.reject(new KeyVaError('UNAVAILABLE', 'node is shutting down; retry on another node', {}));
    const start = performance.now();
    this.inflight++;
    this.metrics.inflightOf(transport).inc();
    if (!tracingActive()) return this.runUntraced(method, transport, start, fn);
    return this.runTraced(method, transport, parent, start, fn);
  }

  private async runTraced<T>(method: string, transport: Transport, parent: Context, start: number, fn: () => Promise<T>): Promise<T> {
    const span = tracer.startSpan(
      `keyva.KV/${method}`,
      { kind: SpanKind.SERVER, attributes: { 'rpc.system': transport === 'http' ? 'http' : 'grpc', 'rpc.method': method } },
      parent,
    );
    let code = 'OK';
    try {
      return await context.with(trace.setSpan(parent, span), fn);
    } catch (e) {
      const err = asKeyVaError(e);
      code = err.code;
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.code });
      span.setAttribute('keyva.error.code', err.code);
      if (err.code === 'INTERNAL' || err.code === 'STORAGE_ERROR') this.log.error({ err: err.cause ?? err, method, transport }, 'request failed');
      throw err;
    } finally {
      span.end();
      this.finish(method, transport, code, start);
    }
  }

  /**
   * `run` with tracing off: no span, no `context.with`, no async wrapper (one `then` on `fn`'s
   * promise: this is every request's path); the same metrics, logs and draining.
   */
  private runUntraced<T>(method: string, transport: Transport, start: number, fn: () => Promise<T>): Promise<T> {
    let result: Promise<T>;
    try {
      result = fn();
    } catch (e) {
      result = Promise.reject(e);
    }
    return result.then(
      (v) => {
        this.finish(method, transport, 'OK', start);
        return v;
      },
      (e: unknown) => {
        const err = asKeyVaError(e);
        if (err.code === 'INTERNAL' || err.code === 'STORAGE_ERROR') this.log.error({ err: err.cause ?? err, method, transport }, 'request failed');
        this.finish(method, transport, err.code, start);
        throw err;
      },
    );
  }

  private finish(method: string, transport: Transport, code: string, start: number): void {
    const seconds = (performance.now() - start) / 1000;
    this.metrics.observe(method, transport, code, seconds);
    this.metrics.inflightOf(transport).dec();
    if (seconds * 1000 >= this.slowOpMs) this.slowOps.record({ method, transport, code, ms: Math.round(seconds * 1000) });
    if (--this.inflight === 0 && this.waiters.length > 0) for (const w of this.waiters.splice(0)) w();
  }
}
