/** `keyva status`: node health, identity, storage and partitions at a glance. */
import { printJson, style, table } from '../output.ts';
import { type ConnOptions, withClient } from './data.ts';

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

export async function cmdStatus(o: ConnOptions): Promise<number> {
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
