/**
 * Test helper: a real node in this process on loopback ports picked by the OS, with a temp
 * data dir (RocksDB) or the memory engine, plus raw gRPC clients and the REST base URL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type AdminClient, type KVClient, keyvaV1 } from '@keyva/proto';
import { ERROR_METADATA } from '@keyva/proto/errors';
import { pino } from 'pino';
import { type NodeConfigInput, validateNodeConfig } from '../config/config.ts';
import { type RunningNode, startNode } from '../node.ts';

export interface TestNode {
  readonly node: RunningNode;
  readonly kv: KVClient;
  readonly admin: AdminClient;
  readonly http: string;
  readonly dataDir: string;
  close(): Promise<void>;
}

export async function startTestNode(engine: 'memory' | 'rocksdb', overrides: NodeConfigInput = {}, dataDir?: string): Promise<TestNode> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'keyva-test-'));
  const config = validateNodeConfig({ engine, dataDir: dir, grpcPort: 0, httpPort: 0, logLevel: 'silent', ...overrides });
  const node = await startNode(config, { logger: pino({ level: 'silent' }) });
  const creds = grpc.credentials.createInsecure();
  // A local subchannel pool: grpc-js otherwise shares one connection per address across the
  // process, so these clients would inherit the reconnect backoff of the in-process peers' own
  // connections to a restarted node and fail fast with "No connection established".
  const opts = {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.use_local_subchannel_pool': 1,
  };
  const kv = new keyvaV1.KV(node.grpcAddress, creds, opts) as unknown as KVClient;
  const admin = new keyvaV1.Admin(node.grpcAddress, creds, opts) as unknown as AdminClient;
  return {
    node,
    kv,
    admin,
    http: `http://${node.httpAddress}`,
    dataDir: dir,
    async close() {
      kv.close();
      admin.close();
      await node.stop();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CallError extends Error {
  code: number;
  keyvaCode: string | undefined;
  details: string;
  /** The error's KeyVa details (`keyva-error-details` trailer), e.g. `reason`, `leaderHint`. */
  meta: Record<string, string>;
}

function asCallError(err: grpc.ServiceError): CallError {
  const e = err as unknown as CallError;
  e.keyvaCode = err.metadata?.get(ERROR_METADATA.code)[0]?.toString();
  const raw = err.metadata?.get(ERROR_METADATA.details)[0];
  e.meta = raw === undefined ? {} : JSON.parse(String(raw));
  return e;
}

/** Awaits a call that must fail; returns its error (throws if it succeeded). */
export async function failure(p: Promise<unknown>): Promise<CallError> {
  try {
    await p;
  } catch (e) {
    return e as CallError;
  }
  throw new Error('expected the call to fail');
}

/** Promise form of a unary call on a generated client; errors expose the KeyVa code. */
export function unary<Req, Res>(client: KVClient | AdminClient, method: string, req: Req, deadlineMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[method];
    if (!fn) throw new Error(`no method ${method}`);
    fn.call(client, req, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Res) => {
      if (err) reject(asCallError(err));
      else resolve(res);
    });
  });
}

/** Collects a server-streaming Scan. */
export function scanAll<Res>(client: KVClient, req: Record<string, unknown>): Promise<Res[]> {
  return new Promise((resolve, reject) => {
    const out: Res[] = [];
    const call = (client as unknown as { scan(r: unknown): grpc.ClientReadableStream<Res> }).scan(req);
    call.on('data', (d: Res) => out.push(d));
    call.on('end', () => resolve(out));
    call.on('error', (err: grpc.ServiceError) => reject(asCallError(err)));
  });
}
