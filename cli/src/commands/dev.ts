/** `keyva dev`: a local KeyVa node of real processes on this machine, no Kubernetes. */
import { resolve } from 'node:path';
import { startLocalNode } from '../local-node.ts';
import { style } from '../output.ts';

export interface DevOptions {
  dataDir: string;
  memory: boolean;
  grpcPort: number;
  httpPort: number;
  json: boolean;
}

export async function runDev(o: DevOptions): Promise<void> {
  const dataDir = resolve(o.dataDir, 'node-1');
  if (!o.json) process.stderr.write(`Starting KeyVa (${o.memory ? 'memory engine, nothing kept' : `RocksDB in ${dataDir}`})...\n`);
  let node: Awaited<ReturnType<typeof startLocalNode>>;
  try {
    node = await startLocalNode({ dataDir, engine: o.memory ? 'memory' : 'rocksdb', grpcPort: o.grpcPort, httpPort: o.httpPort });
  } catch (e) {
    const msg = (e as Error).message;
    const hint = /EADDRINUSE|address already in use|No address added/i.test(msg)
      ? `\nA port is taken: is another 'keyva dev' running? Pick others with --grpc-port and --http-port.`
      : '';
    throw new Error(`could not start the node: ${msg}${hint}`);
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ nodes: [{ id: node.nodeId, grpc: node.grpc, http: node.http, dataDir, log: node.logFile }] })}\n`);
  } else {
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
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    if (!o.json) process.stderr.write(`\n${sig}: stopping the node gracefully...\n`);
    node.stop().then((code) => {
      if (!o.json) process.stderr.write(`stopped (exit code ${code}).\n`);
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const code = await node.exited;
  if (!stopping) {
    process.stderr.write(`the node exited unexpectedly with code ${code}; see ${node.logFile}\n`);
    process.exit(1);
  }
}
