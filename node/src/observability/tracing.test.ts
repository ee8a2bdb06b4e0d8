/**
 * The tracing fast path: with no provider registered nothing is created; once one is, spans
 * are (a recording provider stands in for the SDK here; e2e/src/tracing.test.ts runs the real one).
 */
import { ROOT_CONTEXT, type Span, type SpanOptions, type Tracer, type TracerProvider, trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { RequestRunner } from '../server/request-runner.ts';
import { NodeMetrics } from './metrics.ts';
import { NON_RECORDING_SPAN, tracingActive, withSpan } from './tracing.ts';

/** Records the names of the spans started through it (and hands out non-recording spans). */
class RecordingProvider implements TracerProvider {
  readonly started: string[] = [];
  getTracer(): Tracer {
    const started = this.started;
    const start = (name: string): Span => {
      started.push(name);
      return trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 });
    };
    return {
      startSpan: (name: string, _o?: SpanOptions) => start(name),
      startActiveSpan: ((name: string, ...rest: unknown[]) => (rest[rest.length - 1] as (s: Span) => unknown)(start(name))) as Tracer['startActiveSpan'],
    };
  }
}

function runner(): RequestRunner {
  return new RequestRunner(new NodeMetrics(new MemoryEngine(), { defaultMetrics: false }), pino({ level: 'silent' }), 1000);
}

describe('tracing fast path', () => {
  // Not between tests: disable() replaces the API's proxy provider that `tracer` holds.
  afterAll(() => trace.disable());

  it('with no provider: inactive, withSpan hands a non-recording span, the runner still answers', async () => {
    expect(tracingActive()).toBe(false);
    let seen: Span | undefined;
    await expect(
      withSpan('x', { a: 1 }, async (s) => {
        seen = s;
        return 42;
      }),
    ).resolves.toBe(42);
    expect(seen).toBe(NON_RECORDING_SPAN);
    expect(seen?.isRecording()).toBe(false);
    await expect(runner().run('Get', 'grpc', ROOT_CONTEXT, async () => 'ok')).resolves.toBe('ok');
    await expect(withSpan('x', {}, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });

  it('with a provider registered: spans are created by withSpan and the runner', async () => {
    const p = new RecordingProvider();
    expect(trace.setGlobalTracerProvider(p)).toBe(true);
    expect(tracingActive()).toBe(true);
    await withSpan('keyva.storage.get', { 'keyva.partition': 1 }, async () => 1);
    await runner().run('Get', 'grpc', ROOT_CONTEXT, async () => 'ok');
    expect(p.started).toEqual(['keyva.storage.get', 'keyva.KV/Get']);
  });
});
