import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SlowOpLog } from './slow-op-log.ts';

function setup(perSecond: number) {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  let now = 0;
  const slow = new SlowOpLog(log, perSecond, () => now);
  return { lines, slow, advance: (ms: number) => (now += ms) };
}

describe('SlowOpLog', () => {
  it('logs at most its budget per second and reports the rest in one summary line when the next second opens', () => {
    const { lines, slow, advance } = setup(3);
    for (let i = 0; i < 10; i++) slow.record({ method: 'Put', transport: 'stream', code: 'OK', ms: 100 + i });
    expect(lines.filter((l) => l.msg === 'slow operation')).toHaveLength(3);
    expect(lines[0]).toMatchObject({ method: 'Put', transport: 'stream', code: 'OK', ms: 100, level: 40 });
    advance(999);
    slow.record({ method: 'Get', transport: 'grpc', code: 'OK', ms: 500 });
    expect(lines).toHaveLength(3); // same window: counted, not logged
    advance(1);
    slow.record({ method: 'Get', transport: 'grpc', code: 'OK', ms: 200 });
    expect(lines).toHaveLength(5);
    expect(lines[3]).toMatchObject({ suppressed: 8, maxMs: 500, level: 40 });
    expect(lines[4]).toMatchObject({ msg: 'slow operation', method: 'Get', ms: 200 });
  });

  it('writes no summary after a window that stayed within the budget', () => {
    const { lines, slow, advance } = setup(2);
    slow.record({ method: 'Put', transport: 'grpc', code: 'OK', ms: 150 });
    advance(5000);
    slow.record({ method: 'Put', transport: 'grpc', code: 'OK', ms: 150 });
    expect(lines.map((l) => l.msg)).toEqual(['slow operation', 'slow operation']);
  });
});
