/**
 * `keyva status`: node health, identity, storage and partitions at a glance. Against a local
 * cluster (`keyva dev --nodes N`: its control endpoint is found via `--control` or the data
 * folder) it shows the placement view: nodes with their registry state, partitions and leaders
 * per node, moves done/total, what blocks progress and the invariant checker's findings;
 * `--watch` refreshes it with a progress bar until the change under way has finished.
 */
import type { DevStatus } from '../dev-cluster.ts';
import { type ControlOptions, controlRequest, findControl } from '../dev-control.ts';
import { printJson, style, table } from '../output.ts';
import { type ConnOptions, withClient } from './data.ts';

export interface StatusOptions extends ControlOptions {
  /** Refresh every second until no change is running. */
  readonly watch?: boolean | undefined;
  /** The -e/--endpoint flag was given: ask that node, not a local cluster's control endpoint. */
  readonly endpointGiven?: boolean | undefined;
}

const human = (n: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};

const duration = (ms: number) => {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${s % 60}s` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
};

export async function cmdStatus(o: ConnOptions, so: StatusOptions = {}): Promise<number> {
  const control = so.endpointGiven && so.control === undefined ? undefined : findControl(so);
  if (control !== undefined) {
    try {
      return await clusterStatus(o, control, so.watch === true);
    } catch (e) {
      // A control.json left by an earlier `keyva dev`: fall back to asking the node.
      if (so.control !== undefined || so.watch) throw e;
    }
  } else if (so.watch) {
    throw new Error('--watch needs a local cluster (keyva dev --nodes 3) or --control <host:port>');
  }
  return nodeStatus(o);
}

const bar = (done: number, total: number, width = 30) => {
  const filled = total <= 0 ? width : Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
};

export function renderClusterStatus(s: DevStatus): string {
  const l = s.loop;
  const out: string[] = [];
  out.push(
    `${style.bold('KeyVa local cluster')}  ${s.nodes.filter((n) => n.state !== 'removed').length} nodes, ${s.partitions} partitions, RF ${s.replicationFactor}, map epoch ${s.epoch ?? '?'}   control ${s.control}`,
  );
  out.push(
    table(
      ['node', 'state', 'health', 'process', 'gRPC', 'partitions', 'learners', 'leaders', 'storage'],
      s.nodes.map((n) => [
        n.id,
        n.state === 'active' ? n.state : style.yellow(n.state),
        n.health === 'up' ? style.green('up') : style.red(n.health),
        n.process,
        n.grpc,
        n.partitions,
        n.learners,
        n.leaders,
        n.storageBytes === undefined ? '' : human(Number(n.storageBytes)),
      ]),
    ),
  );
  if (s.meta !== undefined) out.push(`meta group  voters ${s.meta.voters.join(', ')}${s.meta.leader ? `, leader ${s.meta.leader}` : style.red(', no leader')}`);
  const draining = s.nodes.filter((n) => n.state === 'draining').map((n) => n.id);
  if (l.changing) {
    out.push(
      `${style.yellow('changing')}  moves ${bar(l.movesDone, l.movesTotal)} ${l.movesDone}/${l.movesTotal} done, ${l.movesInFlight} in flight${draining.length ? `; draining ${draining.join(', ')}` : ''}`,
    );
  } else {
    out.push(`${style.green('settled')}  no replica to move${l.movesTotal > 0 ? ` (${l.movesDone}/${l.movesTotal} done)` : ''}`);
  }
  if (l.partitionsBelowRF || l.partitionsWithoutLeader)
    out.push(`  ${l.partitionsBelowRF} partition(s) below RF, ${l.partitionsWithoutLeader} without a leader`);
  for (const st of l.currentSteps.slice(0, 8)) out.push(`  step ${st.key}: ${st.reason}`);
  if (l.currentSteps.length > 8) out.push(`  ... and ${l.currentSteps.length - 8} more step(s)`);
  if (l.blockers.length) {
    out.push(style.bold('blocked:'));
    for (const b of l.blockers.slice(0, 10)) out.push(`  ${style.red(b.code)} ${b.message}`);
    if (l.blockers.length > 10) out.push(`  ... and ${l.blockers.length - 10} more`);
  }
  if (l.violations.length) {
    out.push(style.bold('invariant violations:'));
    for (const v of l.violations.slice(0, 10)) out.push(`  ${style.red(v.code)} ${v.message}`);
    if (l.violations.length > 10) out.push(`  ... and ${l.violations.length - 10} more`);
  } else if (l.observedAtMs !== undefined)
    out.push(`invariants: ${style.green('ok')}${style.dim(` (replica contents compared ${l.digestsAudited ?? 0} time(s))`)}`);
  if (l.lastError) out.push(`${style.dim(`last error: ${l.lastError}`)}`);
  if (!l.running) out.push(style.red('the control loop is not running'));
  return `${out.join('\n')}\n`;
}

async function clusterStatus(o: ConnOptions, control: string, watch: boolean): Promise<number> {
  const get = () => controlRequest<DevStatus>(control, 'GET', '/v1/status', 5000);
  let s = await get();
  if (!watch) {
    if (o.json) printJson(s);
    else process.stdout.write(renderClusterStatus(s));
    return s.loop.violations.length === 0 ? 0 : 1;
  }
  // Watch: until a change has run to its end (or none is running after a few observations).
  const tty = process.stdout.isTTY === true && !o.json;
  let idle = 0;
  for (;;) {
    if (o.json) process.stdout.write(`${JSON.stringify(s)}\n`);
    else process.stdout.write(`${tty ? '\u001b[2J\u001b[H' : ''}${renderClusterStatus(s)}${tty ? '' : '\n'}`);
    idle = s.loop.changing ? 0 : idle + 1;
    if (idle >= 3) return s.loop.violations.length === 0 ? 0 : 1;
    await new Promise((r) => setTimeout(r, 1000));
    s = await get();
  }
}

async function nodeStatus(o: ConnOptions): Promise<number> {
  const { health, info, map, others } = await withClient(o, async (kv) => {
    const health = await kv.health();
    const info = await kv.nodeInfo();
    const map = await kv.partitionMap({ refresh: true });
    // The other nodes of a cluster answer for themselves (a node that does not is shown as down).
    const others = new Map<string, { health: typeof health; info: typeof info } | undefined>();
    await Promise.all(
      [...map.nodes.values()]
        .filter((n) => n.id !== info.nodeId && n.grpcAddress !== '')
        .map(async (n) => {
          const opts = { endpoint: n.grpcAddress, deadlineMs: 2000 };
          others.set(
            n.id,
            await Promise.all([kv.health(opts), kv.nodeInfo(opts)]).then(
              ([h, i]) => ({ health: h, info: i }),
              () => undefined,
            ),
          );
        }),
    );
    return { health, info, map, others };
  });
  const perNode = new Map<string, { replicas: number; leaders: number }>();
  for (const p of map.partitions) {
    for (const r of p.replicas) {
      const e = perNode.get(r) ?? { replicas: 0, leaders: 0 };
      e.replicas++;
      if (p.leaderHint === r) e.leaders++;
      perNode.set(r, e);
    }
  }
  if (o.json) {
    printJson({ health, node: info, partitionMap: { epoch: map.epoch.toString(), partitions: map.partitions.length, perNode: Object.fromEntries(perNode) } });
    return health.status === 'SERVING' ? 0 : 1;
  }
  const ok = health.status === 'SERVING';
  process.stdout.write(
    `${style.bold('KeyVa cluster')}  ${ok ? style.green('SERVING') : style.red(health.status)}   partition map epoch ${map.epoch}, ${map.partitions.length} partitions\n\n`,
  );
  process.stdout.write(
    `${table(
      ['node', 'status', 'gRPC', 'REST', 'engine', 'partitions', 'leaders', 'storage', 'keys (est.)', 'uptime', 'version'],
      [...map.nodes.values()].map((n) => {
        const counts = perNode.get(n.id) ?? { replicas: 0, leaders: 0 };
        const known = n.id === info.nodeId ? { health, info } : others.get(n.id);
        const up = known?.health.status === 'SERVING';
        return [
          n.id,
          known === undefined ? (others.has(n.id) ? 'down' : '?') : up ? 'up' : known.health.status,
          n.grpcAddress,
          known?.info.httpAddress || n.httpAddress,
          known?.info.engine ?? '',
          counts.replicas,
          counts.leaders,
          known ? human(known.info.storageBytes) : '',
          known?.info.keysEstimate ?? '',
          known ? duration(known.info.uptimeMs) : '',
          known?.info.version ?? '',
        ];
      }),
    )}\n`,
  );
  return ok ? 0 : 1;
}
