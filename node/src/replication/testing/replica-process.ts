/**
 * Child process of the kill -9 replication test (`multi-raft-crash.test.ts`): one replication
 * node on RocksDB, serving the Raft service on 127.0.0.1. argv[2] is a JSON `ReplicaProcessConfig`.
 * Prints `ready <port>` once serving, then runs until killed. Used as a follower it proposes
 * nothing: it is the replica whose durable log must hold every entry it acknowledged. With
 * `puts`, it also reads `put <group> <i>` lines on stdin and proposes `crashPut(i)` there,
 * answering `ack <i> <commitTs> <index>` or `fail <i>` (the leader-crash test).
 */

import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import type { NodeId } from '@keyva/client/keyspace';
import { keyvaV1 } from '@keyva/proto';
import { HybridClock } from '../../clock/hybrid-clock.ts';
import { RocksDbEngine } from '../../engine/rocksdb-engine.ts';
import { MultiRaft } from '../multi-raft.ts';
import { RaftTransport } from '../raft-transport.ts';
import { crashPut } from './crash-writes.ts';

export interface ReplicaProcessConfig {
  readonly nodeId: string;
  readonly dir: string;
  readonly peers: Record<string, string>;
  readonly groups: readonly { group: number; start: string; end: string; bootstrap?: string[] }[];
  readonly tickMs: number;
  /** Take proposals on stdin (see the file comment). */
  readonly puts?: boolean;
}

const arg = process.argv[2];
if (arg === undefined) throw new Error('usage: replica-process.ts <config json>');
const config = JSON.parse(arg) as ReplicaProcessConfig;

const engine = new RocksDbEngine({ path: config.dir, compression: 'none', bloomBitsPerKey: 10, blockCacheBytes: 1 << 20 });
await engine.open();
let runtime: MultiRaft | undefined;
const transport = new RaftTransport({
  self: config.nodeId,
  addressOf: (peer) => config.peers[peer],
  onReceive: (from, group, m) => runtime?.receive(from, group, m),
  reconnectBackoffMs: 50,
});
runtime = new MultiRaft({
  nodeId: config.nodeId as NodeId,
  engine,
  transport,
  clock: new HybridClock(),
  tickMs: config.tickMs,
  onFatal: (e) => process.stderr.write(`fatal: ${e.message}\n`),
});
for (const g of config.groups) {
  await runtime.addGroup({ group: g.group, range: { start: BigInt(g.start), end: BigInt(g.end) }, bootstrap: g.bootstrap as NodeId[] | undefined });
}
const server = new grpc.Server();
server.addService(keyvaV1.Raft.service, transport.handlers());
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
);
runtime.start();
process.stdout.write(`ready ${port}\n`);
if (config.puts) {
  const r = runtime;
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, group, i] = line.split(' ');
    if (cmd !== 'put') return;
    r.propose(Number(group), [crashPut(Number(i))]).then(
      (res) => process.stdout.write(res.ok ? `ack ${i} ${res.commitTs} ${res.index}\n` : `fail ${i}\n`),
      () => process.stdout.write(`fail ${i}\n`),
    );
  });
}
