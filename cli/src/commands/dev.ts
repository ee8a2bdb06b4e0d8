/** `keyva dev`: a local KeyVa of real node processes on this machine, no Kubernetes. */
import { resolve } from 'node:path';
import { type LocalNode, startLocalNode } from '../local-node.ts';
import { style } from '../output.ts';

export interface DevOptions {
  dataDir: string;
  memory: boolean;
  grpcPort: number;
  httpPort: number;
  json: boolean;
  /** Node processes: 1 (a lone node, no Raft) or 3/5 (a replicated cluster, every partition on every node). */
  nodes?: number;
}

/** Ports of node `i` (0-based) of a dev cluster: base + 10*i, so 7379/7389/7399 and 7380/7390/7400. */
export function devPorts(o: { grpcPort: number; httpPort: number }, i: number): { grpcPort: number; httpPort: number } {
  return { grpcPort: o.grpcPort + 10 * i, httpPort: o.httpPort + 10 * i };
}

/** The `--peers` value of a dev cluster of `n` nodes on 127.0.0.1. */
export function devPeers(o: { grpcPort: number; httpPort: number }, n: number): string {
  return Array.from({ length: n }, (_, i) => `node-${i + 1}=127.0.0.1:${devPorts(o, i).grpcPort}`).join(',');
}

export async function runDev(o: DevOptions): Promise<void> {
  const count = o.nodes ?? 1;
  if (![1, 3, 5].includes(count)) throw new Error(`--nodes ${count}: use 1, 3 or 5`);
  if (count > 1 && (o.grpcPort === 0 || o.httpPort === 0)) throw new Error('--nodes > 1 needs fixed ports (the peers must know each other)');
  const replicated = count > 1;
  const peers = replicated ? devPeers(o, count) : undefined;
  const specs = Array.from({ length: count }, (_, i) => ({ id: `node-${i + 1}`, dataDir: resolve(o.dataDir, `node-${i + 1}`), ...devPorts(o, i) }));
  if (!o.json)
    process.stderr.write(
      `Starting KeyVa: ${count} node${count > 1 ? 's' : ''} (${o.memory ? 'memory engine, nothing kept' : `RocksDB in ${resolve(o.dataDir)}`})...\n`,
    );
  const nodes: LocalNode[] = [];
  try {
    // Replicated nodes start together: each waits for a quorum only after it reports ready.
    const started = await Promise.allSettled(
      specs.map((s) =>
        startLocalNode({
          dataDir: s.dataDir,
          engine: o.memory ? 'memory' : 'rocksdb',
          grpcPort: s.grpcPort,
          httpPort: s.httpPort,
          ...(replicated ? { nodeId: s.id, extraArgs: ['--peers', peers as string, '--replication-factor', String(count)] } : {}),
        }),
      ),
    );
    for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  } catch (e) {
    await Promise.all(nodes.map((n) => n.stop()));
    const msg = (e as Error).message;
    const hint = /EADDRINUSE|address already in use|No address added/i.test(msg)
      ? `\nA port is taken: is another 'keyva dev' running? Pick others with --grpc-port and --http-port.`
      : '';
    throw new Error(`could not start the node${count > 1 ? 's' : ''}: ${msg}${hint}`);
  }
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ nodes: nodes.map((n, i) => ({ id: n.nodeId, grpc: n.grpc, http: n.http, dataDir: specs[i]?.dataDir, log: n.logFile })) })}\n`,
    );
  } else if (!replicated) {
    const node = nodes[0] as LocalNode;
    const dataDir = specs[0]?.dataDir;
    const lines = [
      '',
      style.bold(`KeyVa is running: 1 node (${node.nodeId}), 64 partitions`),
      `  gRPC  ${node.grpc}        grpcurl -plaintext ${node.grpc} list`,
      `  REST  http://${node.http}  curl http://${node.http}/v1/kv/hello`,
      `  data  ${o.memory ? '(memory: lost on exit)' : dataDir}`,
      `  logs  ${node.logFile}`,
      '',
      'Try, in another terminal:',
      '  ./keyva put hello world',
      '  ./keyva get hello',
      '  ./keyva scan',
      '  ./keyva status',
      '',
      style.dim(
        o.memory ? 'Ctrl-C stops the node (memory engine: the data goes with it).' : 'Ctrl-C stops the node; the data stays in its folder for the next start.',
      ),
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } else {
    const endpoints = nodes.map((n) => n.grpc).join(',');
    const lines = [
      '',
      style.bold(`KeyVa is running: ${count} nodes, 64 partitions, each replicated on all ${count} (Raft)`),
      `  ${'node'.padEnd(8)} ${'gRPC'.padEnd(18)} ${'REST'.padEnd(18)} data / logs`,
      ...nodes.map((n, i) => `  ${n.nodeId.padEnd(8)} ${n.grpc.padEnd(18)} ${n.http.padEnd(18)} ${o.memory ? '(memory)' : specs[i]?.dataDir} / ${n.logFile}`),
      '',
      'Try, in another terminal:',
      `  ./keyva put hello world --endpoint ${nodes[0]?.grpc}`,
      `  ./keyva get hello --endpoint ${nodes[1]?.grpc}`,
      `  ./keyva status --endpoint ${nodes[0]?.grpc}`,
      `  SDK: KeyVa.connect({ endpoints: '${endpoints}'.split(',') })`,
      '',
      style.dim('Ctrl-C stops every node; the data stays in their folders for the next start.'),
      '',
    ];
    process.stdout.write(lines.join('\n'));
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    if (!o.json) process.stderr.write(`\n${sig}: stopping ${count > 1 ? 'the nodes' : 'the node'} gracefully...\n`);
    Promise.all(nodes.map((n) => n.stop())).then((codes) => {
      if (!o.json) process.stderr.write(`stopped (exit code${codes.length > 1 ? 's' : ''} ${codes.join(', ')}).\n`);
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const first = await Promise.race(nodes.map((n) => n.exited.then((code) => ({ n, code }))));
  if (!stopping) {
    process.stderr.write(`node ${first.n.nodeId} exited unexpectedly with code ${first.code}; see ${first.n.logFile}\n`);
    await Promise.all(nodes.map((n) => n.stop()));
    process.exit(1);
  }
}
