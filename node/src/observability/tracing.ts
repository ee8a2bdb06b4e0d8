/**
 * Tracing helpers over the OpenTelemetry API. The SDK itself is configured in `otel-sdk.ts` from
 * the standard OTEL_* vars. With no tracer provider registered (tracing off, the common case)
 * `withSpan` and the request runner skip span creation and `context.with` entirely: the API's
 * no-op path still costs a proxy lookup, a non-recording span, a context and closures per call
 * (about 5% of a busy node's CPU in the replicated benchmark's profile).
 */
import { type Context, context, INVALID_SPAN_CONTEXT, ProxyTracerProvider, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';

export const tracer: Tracer = trace.getTracer('@keyva/node');

/** What an unset global provider delegates to (the API's own no-op provider singleton). */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** A span that records nothing, for callers of `withSpan` while tracing is off. */
export const NON_RECORDING_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * Whether a tracer provider is registered (an SDK, or a test's provider). False only when the
 * global provider is this API copy's proxy still delegating to the no-op provider; any other
 * provider (another API copy's proxy included) counts as on, so spans are never lost.
 */
export function tracingActive(): boolean {
  const p = trace.getTracerProvider();
  return !(p instanceof ProxyTracerProvider) || p.getDelegate() !== NOOP_PROVIDER;
}

/** Runs `fn` inside an INTERNAL span that ends when `fn` settles; errors are recorded. Tracing off: just `fn`. */
export async function withSpan<T>(
  name: string,
  attrs: Record<string, string | number | boolean>,
  fn: (span: Span) => Promise<T>,
  parent?: Context,
): Promise<T> {
  if (!tracingActive()) return fn(NON_RECORDING_SPAN);
  const ctx = parent ?? context.active();
  return tracer.startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes: attrs }, ctx, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      span.recordException(e as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
      throw e;
    } finally {
      span.end();
    }
  });
}
