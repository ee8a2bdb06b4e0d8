/** The checker itself: it must accept linearizable histories and catch non-linearizable ones. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { HistoryOp } from './history.ts';
import { checkHistory } from './lincheck.ts';

const dir = mkdtempSync(join(tmpdir(), 'keyva-lincheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const run = (ops: Partial<HistoryOp>[], viz = false) => {
  const p = join(dir, `h${n++}.jsonl`);
  writeFileSync(p, ops.map((o) => JSON.stringify({ client: 0, key: 'k', status: 'ok', ...o })).join('\n'));
  return checkHistory(p, viz ? join(dir, `viz${n}.html`) : undefined);
};

describe('linearizability checker (porcupine)', () => {
  it('accepts a sequential history and overlapping ops in either order', async () => {
    expect(
      (
        await run([
          { op: 'put', value: '1', call: 0, return: 10 },
          { op: 'get', call: 20, return: 30, found: true, output: '1' },
          { client: 1, op: 'put', value: '2', call: 40, return: 60 },
          { client: 2, op: 'get', call: 45, return: 55, found: true, output: '1' }, // concurrent: may miss the put
          { op: 'cas', expected: '2', value: '3', call: 70, return: 80, ok: true },
          { op: 'delete', call: 90, return: 95 },
          { op: 'get', call: 100, return: 110, found: false },
        ])
      ).result,
    ).toBe('Ok');
  });

  it('rejects a stale read after an acknowledged write (and writes a visualisation)', async () => {
    const v = await run(
      [
        { op: 'put', value: '1', call: 0, return: 10 },
        { client: 1, op: 'put', value: '2', call: 20, return: 30 },
        { client: 2, op: 'get', call: 40, return: 50, found: true, output: '1' },
      ],
      true,
    );
    expect(v.result).toBe('Illegal');
    expect(v.visualization).toMatch(/viz\d+\.html$/);
  });

  it('rejects a lost acknowledged write and a CAS that lies', async () => {
    expect(
      (
        await run([
          { op: 'put', value: '1', call: 0, return: 10 },
          { op: 'get', call: 20, return: 30, found: false },
        ])
      ).result,
    ).toBe('Illegal');
    expect(
      (
        await run([
          { op: 'put', value: '1', call: 0, return: 10 },
          { op: 'cas', expected: '1', value: '2', call: 20, return: 30, ok: false },
        ])
      ).result,
    ).toBe('Illegal');
  });

  it('treats unknown outcomes as maybe-applied and drops certain failures', async () => {
    const maybe = [
      { op: 'put' as const, value: '1', call: 0, return: 10 },
      { client: 1, op: 'put' as const, value: '2', call: 20, return: null, status: 'unknown' as const },
    ];
    expect((await run([...maybe, { op: 'get', call: 100, return: 110, found: true, output: '1' }])).result).toBe('Ok');
    expect((await run([...maybe, { op: 'get', call: 100, return: 110, found: true, output: '2' }])).result).toBe('Ok');
    expect((await run([...maybe, { op: 'get', call: 100, return: 110, found: true, output: '3' }])).result).toBe('Illegal');
    // A certainly-failed write may not show up at all.
    expect(
      (
        await run([
          { op: 'put', value: '9', call: 0, return: 5, status: 'fail' },
          { op: 'get', call: 10, return: 20, found: false },
        ])
      ).result,
    ).toBe('Ok');
  });
});
