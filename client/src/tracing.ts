/**
 * OpenTelemetry for SDK calls (DESIGN §8). Each call runs in a CLIENT span `keyva.<Method>`
 * from the `@keyva/client` tracer, and every gRPC request it sends carries the span's context in
 * its metadata (W3C `traceparent`/`tracestate` with the usual propagator), so the node's spans
 * join the caller's trace. Without a registered OpenTelemetry SDK every call here is a no-op.
 */
import type * as grpc from '@grpc/grpc-js';
import { isKeyVaError } from '@keyva/proto/errors';
import { type Attributes, type Context, context, propagation, type Span, SpanKind, SpanStatusCode, type TextMapSetter, trace } from '@opentelemetry/api';

export const TRACER_NAME = '@keyva/client';

export const SpanAttr = {
  dbSystem: 'db.system.name',
  operation: 'db.operation.name',
  partition: 'keyva.partition.id',
  attempts: 'keyva.attempts',
  errorType: 'error.type',
  serverAddress: 'server.address',
} as const;

const metadataSetter: TextMapSetter<grpc.Metadata> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

/** A running call: its span and the context to propagate. */
export interface CallTrace {
  readonly span: Span;
  readonly context: Context;
  /** true when the span is recorded (sampled): its context is worth sending to the node. */
  readonly recording: boolean;
}

export function startCallSpan(method: string, attributes: Attributes = {}): CallTrace {
  const parent = context.active();
  const span = trace
    .getTracer(TRACER_NAME)
    .startSpan(`keyva.${method}`, { kind: SpanKind.CLIENT, attributes: { [SpanAttr.dbSystem]: 'keyva', [SpanAttr.operation]: method, ...attributes } }, parent);
  return { span, context: trace.setSpan(parent, span), recording: span.isRecording() };
}

/** Writes the call's trace context into gRPC metadata. */
export function injectContext(t: CallTrace, metadata: grpc.Metadata): grpc.Metadata {
  propagation.inject(t.context, metadata, metadataSetter);
  return metadata;
}

/** Ends the span, recording the error (if any) by its stable code. */
export function endCallSpan(t: CallTrace, err?: unknown): void {
  if (err !== undefined) {
    const code = isKeyVaError(err) ? err.code : 'INTERNAL';
    t.span.setAttribute(SpanAttr.errorType, code);
    if (err instanceof Error) t.span.recordException(err);
    t.span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }
  t.span.end();
}

/** Runs `fn` inside a call span (made active for `fn`), ending it when `fn` settles. */
export async function withCallSpan<T>(method: string, attributes: Attributes, fn: (t: CallTrace) => Promise<T>): Promise<T> {
  const t = startCallSpan(method, attributes);
  try {
    const out = await context.with(t.context, () => fn(t));
    endCallSpan(t);
    return out;
  } catch (e) {
    endCallSpan(t, e);
    throw e;
  }
}
