import { ROOT_CONTEXT } from '@opentelemetry/api';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { NodeMetrics } from '../observability/metrics.ts';
import { RequestRunner } from './request-runner.ts';

function setup(slowOpMs: number) {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  const metrics = new NodeMetrics(new MemoryEngine(), { defaultMetrics: false });
  return { lines, metrics, runner: new RequestRunner(metrics, log, slowOpMs) };
}

describe('RequestRunner', () => {
  it('logs slow operations with method, transport and duration', async () => {
    const { lines, runner } = setup(20);
    await runner.run('Get', 'grpc', ROOT_CONTEXT, async () => 1);
    await runner.run('Put', 'grpc', ROOT_CONTEXT, () => new Promise((r) => setTimeout(r, 40)));
    const slow = lines.filter((l) => l.msg === 'slow operation');
    expect(slow).toHaveLength(1);
    expect(slow[0]).toMatchObject({ method: 'Put', transport: 'grpc', code: 'OK', level: 40 });
    expect(slow[0]?.ms as number).toBeGreaterThanOrEqual(20);
  });

  it('counts requests by method and error code', async () => {
    const { metrics, runner } = setup(1000);
    const { KeyVaError } = await import('@keyva/proto/errors');
    await runner.run('Get', 'http', ROOT_CONTEXT, async () => 1);
    await runner.run('Get', 'http', ROOT_CONTEXT, async () => Promise.reject(new KeyVaError('KEY_EMPTY'))).catch(() => undefined);
    const text = await metrics.registry.metrics();
    expect(text).toContain('keyva_requests_total{method="Get",code="OK",transport="http"} 1');
    expect(text).toContain('keyva_requests_total{method="Get",code="KEY_EMPTY",transport="http"} 1');
  });

  it('shows in-flight requests and keeps counting across scrapes; a function that throws is answered as a rejection', async () => {
    const { metrics, runner } = setup(1000);
    let release: () => void = () => undefined;
    const slow = runner.run('Get', 'stream', ROOT_CONTEXT, () => new Promise<void>((r) => (release = r)));
    expect(await metrics.registry.metrics()).toContain('keyva_inflight_requests{transport="stream"} 1');
    release();
    await slow;
    await runner.run('Get', 'stream', ROOT_CONTEXT, async () => 1);
    const first = await metrics.registry.metrics();
    expect(first).toContain('keyva_inflight_requests{transport="stream"} 0');
    expect(first).toContain('keyva_requests_total{method="Get",code="OK",transport="stream"} 2');
    await runner.run('Get', 'stream', ROOT_CONTEXT, async () => 1);
    await expect(
      runner.run('Get', 'stream', ROOT_CONTEXT, () => {
        throw new Error('sync');
      }),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
    const second = await metrics.registry.metrics();
    expect(second).toContain('keyva_requests_total{method="Get",code="OK",transport="stream"} 3');
    expect(second).toContain('keyva_requests_total{method="Get",code="INTERNAL",transport="stream"} 1');
    expect(second).toContain('keyva_request_duration_seconds_count{method="Get",transport="stream"} 4');
  });

  it('refuses new work while draining and resolves drained() when in-flight work ends', async () => {
    const { runner } = setup(1000);
    let release: () => void = () => undefined;
    const inflight = runner.run('Put', 'grpc', ROOT_CONTEXT, () => new Promise<void>((r) => (release = r)));
    runner.drain();
    await expect(runner.run('Get', 'grpc', ROOT_CONTEXT, async () => 1)).rejects.toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    let drained = false;
    const d = runner.drained().then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(drained).toBe(false);
    release();
    await inflight;
    await d;
    expect(drained).toBe(true);
  });
});
