import { runEngineCompliance } from './compliance.ts';
import { MemoryEngine } from './memory-engine.ts';

runEngineCompliance('memory', async () => {
  const engine = new MemoryEngine();
  await engine.open();
  return { engine, cleanup: () => engine.close() };
});
