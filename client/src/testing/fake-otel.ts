/**
 * A minimal in-memory OpenTelemetry setup for tests, built on @opentelemetry/api alone (the SDK
 * has no OTel SDK dependency): a tracer provider that records spans, an AsyncLocalStorage
 * context manager and a `traceparent` propagator.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import {
  type Attributes,
  type Context,
  type ContextManager,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanAttributeValue,
  type SpanContext,
  type SpanKind,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  type TextMapPropagator,
  TraceFlags,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';

export class RecordedSpan implements Span {
  readonly name: string;
  readonly kind: SpanKind | undefined;
  readonly parent: SpanContext | undefined;
  readonly attributes: Attributes;
  readonly events: { name: string; attributes: Attributes }[] = [];
  readonly exceptions: unknown[] = [];
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  ended = false;
  private readonly ctx: SpanContext;

  constructor(name: string, options: SpanOptions, parent: SpanContext | undefined) {
    this.name = name;
    this.kind = options.kind;
    this.parent = parent;
    this.attributes = { ...(options.attributes ?? {}) };
    this.ctx = {
      traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      traceFlags: TraceFlags.SAMPLED,
    };
  }

  spanContext(): SpanContext {
    return this.ctx;
  }
  setAttribute(key: string, value: SpanAttributeValue): this {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent(name: string, attributes?: unknown): this {
    this.events.push({ name, attributes: (attributes ?? {}) as Attributes });
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(): this {
    return this;
  }
  end(): void {
    this.ended = true;
  }
  isRecording(): boolean {
    return !this.ended;
  }
  recordException(exception: unknown): void {
    this.exceptions.push(exception);
  }
}

export class RecordingTracerProvider implements TracerProvider {
  readonly spans: RecordedSpan[] = [];
  readonly tracerNames: string[] = [];

  getTracer(name: string): Tracer {
    this.tracerNames.push(name);
    const spans = this.spans;
    const startSpan = (spanName: string, options: SpanOptions = {}, ctx: Context = context.active()): Span => {
      const s = new RecordedSpan(spanName, options, trace.getSpanContext(ctx));
      spans.push(s);
      return s;
    };
    return {
      startSpan,
      startActiveSpan: ((spanName: string, ...rest: unknown[]) => {
        const fn = rest[rest.length - 1] as (s: Span) => unknown;
        const s = startSpan(spanName);
        return context.with(trace.setSpan(context.active(), s), () => fn(s));
      }) as Tracer['startActiveSpan'],
    };
  }
}

export class AlsContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.als.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.als.disable();
    return this;
  }
}

/** W3C traceparent only: `00-<trace id>-<span id>-<flags>`. */
export const traceparentPropagator: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (sc === undefined) return;
    setter.set(carrier, 'traceparent', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`);
  },
  extract(ctx) {
    return ctx;
  },
  fields() {
    return ['traceparent'];
  },
};

/** Registers the recording setup globally; returns the provider and an uninstall function. */
export function installRecordingOtel(): { provider: RecordingTracerProvider; uninstall: () => void } {
  const provider = new RecordingTracerProvider();
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AlsContextManager());
  propagation.setGlobalPropagator(traceparentPropagator);
  return {
    provider,
    uninstall: () => {
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
