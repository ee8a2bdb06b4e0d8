/**
 * The fault schedule of a fault test: a seeded, printable list of steps (one fault each, then a
 * heal), and the code that applies one step to a FaultCluster. The same seed gives the same
 * schedule (the thread interleaving of a real cluster never replays exactly).
 */
import type { KeyVa } from '@keyva/client';
import { FaultCluster } from './cluster.ts';
import { prng } from './prng.ts';

export const FAULTS = ['kill-leader', 'pause', 'blackhole', 'one-way', 'resets', 'delay'] as const;
export type Fault = (typeof FAULTS)[number];

/** Target meaning "the node leading the most partitions when the step starts". */
export const LEADER = 'leader';

export interface Step {
  readonly fault: Fault;
  /** The node hit, or LEADER (kill-leader always hits the busiest leader). */
  readonly target: string;
  /** How long the fault lasts before the heal. */
  readonly ms: number;
}

/** Every fault once, in a seeded order, each on a seeded node (or the busiest leader) for 2.5-4 s. */
export function schedule(seed: number, ids: readonly string[]): Step[] {
  const rnd = prng(seed);
  const order = [...FAULTS];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j] as Fault, order[i] as Fault];
  }
  const targets = [...ids, LEADER];
  return order.map((fault) => {
    const target = targets[Math.floor(rnd() * targets.length)] as string;
    return { fault, target: fault === 'kill-leader' ? LEADER : target, ms: 2500 + Math.round(rnd() * 1500) };
  });
}

export function describeSchedule(steps: readonly Step[]): string {
  return steps.map((s) => `${s.fault}(${s.target === LEADER ? 'busiest leader' : s.target}, ${s.ms} ms)`).join(' → ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Applies one step, waits its duration, heals (restarting a killed node on its data dir) and
 * returns a line for the event log.
 */
export async function runStep(cluster: FaultCluster, kv: KeyVa, step: Step): Promise<string> {
  let t = step.target;
  if (t === LEADER) {
    const map = await kv.partitionMap({ refresh: true }).catch(() => undefined);
    const busiest = map && FaultCluster.busiestLeader(map);
    t = busiest?.node ?? (cluster.ids[0] as string);
  }
  const who = step.target === LEADER ? `${t} (leader of the most partitions)` : t;
  switch (step.fault) {
    case 'kill-leader': {
      await cluster.kill(t);
      await sleep(step.ms);
      await cluster.start(t);
      return `kill -9 ${who}, restarted after ${step.ms} ms`;
    }
    case 'pause':
      cluster.pause(t);
      await sleep(step.ms);
      cluster.resume(t);
      return `SIGSTOP ${who} for ${step.ms} ms, then SIGCONT`;
    case 'blackhole':
      cluster.setLinksOf(t, { kind: 'blackhole' });
      await sleep(step.ms);
      cluster.heal();
      return `blackhole every link to and from ${who} for ${step.ms} ms`;
    case 'one-way':
      // t hears the others but nothing it sends arrives: a leader keeps believing it leads.
      cluster.setLinksOf(t, { kind: 'drop', direction: 'forward' }, 'out');
      await sleep(step.ms);
      cluster.heal();
      return `drop everything ${who} sends (it still receives) for ${step.ms} ms`;
    case 'resets': {
      // Flapping links: reset every 400 ms, passing in between.
      const end = performance.now() + step.ms;
      let n = 0;
      while (performance.now() < end) {
        cluster.setLinksOf(t, { kind: 'reset' });
        await sleep(150);
        cluster.setLinksOf(t, { kind: 'pass' });
        await sleep(250);
        n++;
      }
      return `reset every link of ${who} ${n} times over ${step.ms} ms`;
    }
    case 'delay':
      cluster.setAllLinks({ kind: 'delay', ms: 80, jitterMs: 150 });
      await sleep(step.ms);
      cluster.heal();
      return `delay every link by 80 ms + up to 150 ms jitter for ${step.ms} ms`;
  }
}
