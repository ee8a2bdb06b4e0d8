import { describe, expect, test } from 'vitest';
import { MemoryEngine } from '../engine/memory-engine.ts';
import { NodeMetrics } from './metrics.ts';

describe('storage engine gauges', () => {
  test('one engine.stats() per scrape, fresh on the next; a failing read shows NaN, not an error', async () => {
    const engine = new MemoryEngine();
    let calls = 0;
    let fail = false;
    const stats = engine.stats.bind(engine);
    engine.stats = () => {
      calls++;
      if (fail) throw new Error('closed');
      return { ...stats(), level0Files: calls };
    };
    const metrics = new NodeMetrics(engine, { defaultMetrics: false });
    const first = await metrics.registry.metrics();
    expect(calls).toBe(1);
    expect(first).toMatch(/^keyva_rocksdb_level0_files 1$/m);
    expect(first).toMatch(/^keyva_rocksdb_compactions_running Nan$/m); // absent on this engine
    await new Promise((r) => setImmediate(r));
    const second = await metrics.registry.metrics();
    expect(calls).toBe(2);
    expect(second).toMatch(/^keyva_rocksdb_level0_files 2$/m);
    await new Promise((r) => setImmediate(r));
    fail = true;
    expect(await metrics.registry.metrics()).toMatch(/^keyva_storage_bytes Nan$/m);
  });
});
