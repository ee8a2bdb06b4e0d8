import * as grpc from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, test } from 'vitest';
import { KeyVa } from './client.ts';
import { type FakeHook, startFakeNode } from './testing/fake-node.ts';
import { installRecordingOtel } from './testing/fake-otel.ts';
import { rejection } from './testing/rejection.ts';
import { injectContext, startCallSpan, TRACER_NAME } from './tracing.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(hook?: FakeHook) {
  const node = await startFakeNode({ hook });
  cleanups.push(() => node.close());
  const kv = await KeyVa.connect({ endpoints: [node.address] });
  cleanups.push(() => kv.close());
  return { node, kv };
}

describe('without an OpenTelemetry SDK', () => {
  test('spans are no-ops, nothing is injected, and single-key calls use the stream', async () => {
    const t = startCallSpan('Get');
    expect(t.recording).toBe(false);
    const md = injectContext(t, new grpc.Metadata());
    expect(md.get('traceparent')).toEqual([]);
    const { node, kv } = await setup();
    await kv.put('k', 'v');
    expect(node.count('Put', 'stream')).toBe(1);
    expect(node.metadata.every((m) => m.get('traceparent').length === 0)).toBe(true);
  });
});

describe('with a recording tracer', () => {
  test('each call is a CLIENT span keyva.<Method> with db attributes, and its context reaches the node', async () => {
    const otel = installRecordingOtel();
    cleanups.push(otel.uninstall);
    const { node, kv } = await setup();
    await kv.put('user:1', 'v');
    const span = otel.provider.spans.find((s) => s.name === 'keyva.Put');
    expect(span).toBeDefined();
    expect(otel.provider.tracerNames).toContain(TRACER_NAME);
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.attributes['db.system.name']).toBe('keyva');
    expect(span?.attributes['db.operation.name']).toBe('Put');
    expect(span?.attributes['keyva.partition.id']).toBe(0);
    expect(span?.attributes['keyva.attempts']).toBe(1);
    expect(span?.ended).toBe(true);
    // A traced call goes unary so its trace context travels in the request metadata.
    expect(node.count('Put')).toBe(1);
    const tp = node.metadata.at(-1)?.get('traceparent')[0];
    expect(tp).toBe(`00-${span?.spanContext().traceId}-${span?.spanContext().spanId}-01`);
  });

  test('the call span is a child of the active span', async () => {
    const otel = installRecordingOtel();
    cleanups.push(otel.uninstall);
    const { kv } = await setup();
    const parent = trace.getTracer('app').startSpan('handler');
    await context.with(trace.setSpan(context.active(), parent), () => kv.get('k'));
    const span = otel.provider.spans.find((s) => s.name === 'keyva.Get');
    expect(span?.parent?.spanId).toBe(parent.spanContext().spanId);
    expect(span?.spanContext().traceId).toBe(parent.spanContext().traceId);
  });

  test('a failed call records the error code, status and retries', async () => {
    const otel = installRecordingOtel();
    cleanups.push(otel.uninstall);
    let n = 0;
    const { kv } = await setup((op) =>
      op.method === 'Get' && n++ < 1
        ? { kind: 'error', code: 'UNAVAILABLE' }
        : op.method === 'Delete'
          ? { kind: 'error', code: 'INVALID_ARGUMENT' }
          : undefined,
    );
    await kv.get('k');
    const get = otel.provider.spans.find((s) => s.name === 'keyva.Get');
    expect(get?.events.map((e) => e.name)).toEqual(['keyva.retry']);
    expect(get?.attributes['keyva.attempts']).toBe(2);
    expect((await rejection(kv.delete('k'))).code).toBe('INVALID_ARGUMENT');
    const del = otel.provider.spans.find((s) => s.name === 'keyva.Delete');
    expect(del?.status.code).toBe(SpanStatusCode.ERROR);
    expect(del?.attributes['error.type']).toBe('INVALID_ARGUMENT');
    expect(del?.exceptions).toHaveLength(1);
  });

  test('a scan is one span, ended when the iteration ends', async () => {
    const otel = installRecordingOtel();
    cleanups.push(otel.uninstall);
    const { node, kv } = await setup();
    await kv.batchWrite([1, 2, 3].map((i) => ({ type: 'put' as const, key: `{t}${i}`, value: 'v' })));
    let count = 0;
    for await (const _ of kv.scan({ tag: 't' })) count++;
    expect(count).toBe(3);
    const span = otel.provider.spans.find((s) => s.name === 'keyva.Scan');
    expect(span?.ended).toBe(true);
    expect(span?.attributes['keyva.delivered']).toBe(3);
    expect(node.metadata.at(-1)?.get('traceparent')[0]).toContain(span?.spanContext().traceId);
  });
});
