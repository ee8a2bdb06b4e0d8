/** `keyva dev`: a local KeyVa of real node processes on this machine, no Kubernetes. */
import { resolve } from 'node:path';
import { DevCluster } from '../dev-cluster.ts';
import { type LocalNode, startLocalNode } from '../local-node.ts';
import { style } from '../output.ts';

export interface DevOptions {
  dataDir: string;
  memory: boolean;
  grpcPort: number;
  httpPort: number;
  json: boolean;
  /** Node processes: 1 (a lone node, no Raft) or 3/5 (a replicated cluster with the placement control loop). */
  nodes?: number;
  /** Partitions at first start (the node's default: 64). */
  partitions?: number | undefined;
  /** Port of the loopback control endpoint (`keyva node add|remove`, `keyva status`); 0: any free port. */
  controlPort?: number | undefined;
  /** A partition holding at least this many bytes is split by the control loop (default 512 MiB). */
  splitSizeBytes?: number | undefined;
  /** A partition serving at least this many keys per second is split by the control loop (default 5000). */
  splitQps?: number | undefined;
  /** Merges on, below this many bytes per neighbouring pair (docs/adr/0010-splits.md "Merges"). */
  mergeSizeBytes?: number | undefined;
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
  if (count > 1) return runDevCluster(o, count);
  const dataDir = resolve(o.dataDir, 'node-1');
  if (!o.json) process.stderr.write(`Starting KeyVa: 1 node (${o.memory ? 'memory engine, nothing kept' : `RocksDB in ${resolve(o.dataDir)}`})...\n`);
  let node: LocalNode;
  try {
    node = await startLocalNode({
      dataDir,
      engine: o.memory ? 'memory' : 'rocksdb',
      grpcPort: o.grpcPort,
      httpPort: o.httpPort,
      ...(o.partitions ? { extraArgs: ['--partitions', String(o.partitions)] } : {}),
    });
  } catch (e) {
    throw startError(e, 1);
  }
  // Before the ready output: whoever reads it may send a signal at once (a test harness does).
  const signals = stopOnSignals('the node', o.json, async () => `stopped (exit code ${await node.stop()}).`);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ nodes: [{ id: node.nodeId, grpc: node.grpc, http: node.http, dataDir, log: node.logFile }] })}\n`);
  } else {
    const lines = [
      '',
      style.bold(`KeyVa is running: 1 node (${node.nodeId}), ${o.partitions ?? 64} partitions`),
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
  }
  const code = await node.exited;
  if (!signals.stopping) {
    process.stderr.write(`node ${node.nodeId} exited unexpectedly with code ${code}; see ${node.logFile}\n`);
    process.exit(1);
  }
}

/**
 * On the first SIGINT/SIGTERM: says what stops (unless `json`), runs `stop`, prints what it
 * answers and exits 0. `stopping` tells an exit the signal caused from an unexpected one.
 */
function stopOnSignals(what: string, json: boolean, stop: () => Promise<string>): { readonly stopping: boolean } {
  const state = { stopping: false };
  const onSignal = (sig: string) => {
    if (state.stopping) return;
    state.stopping = true;
    if (!json) process.stderr.write(`\n${sig}: stopping ${what} gracefully...\n`);
    stop().then((done) => {
      if (!json) process.stderr.write(`${done}\n`);
      process.exit(0);
    });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  return state;
}

function startError(e: unknown, count: number): Error {
  const msg = (e as Error).message;
  const hint = /EADDRINUSE|address already in use|No address added/i.test(msg)
    ? `\nA port is taken: is another 'keyva dev' running? Pick others with --grpc-port and --http-port.`
    : '';
  return new Error(`could not start the node${count > 1 ? 's' : ''}: ${msg}${hint}`);
}

/** `keyva dev --nodes 3|5`: founders, the placement control loop and its control endpoint. */
async function runDevCluster(o: DevOptions, count: number): Promise<void> {
  if (!o.json) process.stderr.write(`Starting KeyVa: ${count} nodes (${o.memory ? 'memory engine, nothing kept' : `RocksDB in ${resolve(o.dataDir)}`})...\n`);
  const cluster = new DevCluster({
    dataDir: o.dataDir,
    memory: o.memory,
    grpcPort: o.grpcPort,
    httpPort: o.httpPort,
    founders: count,
    partitions: o.partitions,
    controlPort: o.controlPort,
    splitSizeBytes: o.splitSizeBytes,
    splitQps: o.splitQps,
    mergeSizeBytes: o.mergeSizeBytes,
    log: o.json ? undefined : (msg) => process.stderr.write(`${style.dim(`[placement] ${msg}`)}\n`),
  });
  try {
    await cluster.start();
  } catch (e) {
    throw startError(e, count);
  }
  // Before the ready output: whoever reads it may send a signal at once (a test harness does).
  const signals = stopOnSignals('the nodes', o.json, async () => {
    await cluster.stop();
    return 'stopped.';
  });
  const nodes = cluster.nodes();
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ control: cluster.control, nodes: nodes.map((n) => ({ id: n.nodeId, grpc: n.grpc, http: n.http, dataDir: resolve(o.dataDir, n.nodeId), log: n.logFile })) })}\n`,
    );
  } else {
    const endpoints = nodes.map((n) => n.grpc).join(',');
    const lines = [
      '',
      style.bold(`KeyVa is running: ${nodes.length} nodes, replication factor ${count}, placement control loop on`),
      `  ${'node'.padEnd(8)} ${'gRPC'.padEnd(18)} ${'REST'.padEnd(18)} data / logs`,
      ...nodes.map(
        (n) => `  ${n.nodeId.padEnd(8)} ${n.grpc.padEnd(18)} ${n.http.padEnd(18)} ${o.memory ? '(memory)' : resolve(o.dataDir, n.nodeId)} / ${n.logFile}`,
      ),
      `  control ${cluster.control} (keyva node add | node remove <id> | status)`,
      '',
      'Try, in another terminal:',
      `  ./keyva put hello world --endpoint ${nodes[0]?.grpc}`,
      `  ./keyva get hello --endpoint ${nodes[1]?.grpc}`,
      '  ./keyva status --watch',
      '  ./keyva node add',
      '  ./keyva node remove node-1',
      `  SDK: KeyVa.connect({ endpoints: '${endpoints}'.split(',') })`,
      '',
      style.dim('Ctrl-C stops every node; the data stays in their folders for the next start.'),
      '',
    ];
    process.stdout.write(lines.join('\n'));
  }
  const first = await cluster.unexpectedExit;
  if (!signals.stopping) {
    process.stderr.write(`node ${first.id} exited unexpectedly with code ${first.code}; see ${first.log}\n`);
    await cluster.stop();
    process.exit(1);
  }
}
