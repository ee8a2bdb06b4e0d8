/**
 * Tracing helpers over the OpenTelemetry API. With no SDK registered (tracing off) these are
 * cheap no-ops. The SDK itself is configured in `otel-sdk.ts` from the standard OTEL_* vars.
 */
import { type Context, context, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';

export const tracer: Tracer = trace.getTracer('@keyva/node');

/** Runs `fn` inside an INTERNAL span that ends when `fn` settles; errors are recorded. */
export async function withSpan<T>(
  name: string,
  attrs: Record<string, string | number | boolean>,
  fn: (span: Span) => Promise<T>,
  parent?: Context,
): Promise<T> {
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
