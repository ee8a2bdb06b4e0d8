import { expect, it } from 'vitest';
import { stopSignalHandler } from './stop-signals.ts';

function harness() {
  const calls: string[] = [];
  let now = 0;
  const onSignal = stopSignalHandler({
    stop: (s) => calls.push(`stop ${s}`),
    force: (s) => calls.push(`force ${s}`),
    repeated: (s) => calls.push(`repeated ${s}`),
    nowMs: () => now,
  });
  return { calls, onSignal, advance: (ms: number) => (now += ms) };
}

it('takes a signal right after the first (Ctrl-C reaching node and supervisor) as the same graceful stop', () => {
  const h = harness();
  h.onSignal('SIGINT');
  h.advance(8);
  h.onSignal('SIGTERM');
  expect(h.calls).toEqual(['stop SIGINT', 'repeated SIGTERM']);
});

it('stops at once on a second request later than the window', () => {
  const h = harness();
  h.onSignal('SIGTERM');
  h.advance(1_000);
  h.onSignal('SIGINT');
  expect(h.calls).toEqual(['stop SIGTERM', 'force SIGINT']);
});
