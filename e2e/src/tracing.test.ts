/**
 * One SDK call yields one connected trace across processes: the client span (this process)
 * -> the node's server span -> its storage span (a real node process exporting over OTLP/HTTP,
 * configured only by the standard OTEL_* variables).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { KeyVa } from '@keyva/client';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OtlpReceiver, startOtlpReceiver } from './otlp-receiver.ts';

describe('distributed tracing', () => {
  const exporter = new InMemorySpanExporter();
  let receiver: OtlpReceiver;
  let node: LocalNode;
  let dir: string;

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
    receiver = await startOtlpReceiver();
    dir = mkdtempSync(join(tmpdir(), 'keyva-trace-'));
    node = await startLocalNode({
      dataDir: dir,
      engine: 'rocksdb',
      grpcPort: 0,
      httpPort: 0,
      env: {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.endpoint}/v1/traces`,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'keyva-node-under-test',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
    });
  });

  afterAll(async () => {
    await node?.stop();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects client span -> server span -> storage span in one trace', async () => {
    const kv = await KeyVa.connect({ endpoints: [node.grpc], useStream: false });
    await kv.put('traced-key', 'v');
    await kv.close();

    const clientSpan = exporter.getFinishedSpans().find((s) => s.name === 'keyva.Put');
    expect(clientSpan, 'client span keyva.Put').toBeDefined();
    expect(clientSpan?.kind).toBe(SpanKind.CLIENT);
    const traceId = clientSpan?.spanContext().traceId as string;

    await receiver.waitFor((spans) => spans.some((s) => s.traceId === traceId && s.name === 'keyva.storage.write'), 15_000);
    const nodeSpans = receiver.spans.filter((s) => s.traceId === traceId);
    const server = nodeSpans.find((s) => s.name === 'keyva.KV/Put');
    const storage = nodeSpans.find((s) => s.name === 'keyva.storage.write');
    expect(server?.service).toBe('keyva-node-under-test');
    expect(server?.kind).toBe(2); // OTLP SPAN_KIND_SERVER
    expect(server?.parentSpanId).toBe(clientSpan?.spanContext().spanId);
    expect(storage?.parentSpanId).toBe(server?.spanId);
    // Nothing of this call landed in another trace.
    expect(receiver.spans.filter((s) => s.name === 'keyva.KV/Put' && s.traceId !== traceId)).toHaveLength(0);
  });
});
