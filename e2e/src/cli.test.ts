/** The `keyva` CLI against a real node process: tables for people, JSON for scripts, exit codes, errors that say what to do. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalNode, startLocalNode } from '@keyva/cli/local-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './dev-cluster-harness.ts';

const run = runCli;

describe('keyva CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyva-cli-'));
  let node: LocalNode;
  let e: string[];
  beforeAll(async () => {
    node = await startLocalNode({ dataDir: dir, engine: 'rocksdb', grpcPort: 0, httpPort: 0, logLevel: 'warn' });
    e = ['--endpoint', node.grpc];
  });
  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('puts, gets and deletes, with exit codes for missing keys', async () => {
    const put = await run('put', 'greeting', 'hello world', ...e);
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/^OK version \d+/);
    const get = await run('get', 'greeting', ...e);
    expect(get.stdout).toBe('hello world\n');
    const json = JSON.parse((await run('get', 'greeting', '--json', ...e)).stdout) as { found: boolean; value: string; version: string };
    expect(json).toMatchObject({ found: true, value: 'hello world' });
    expect(json.version).toMatch(/^\d+$/);
    expect((await run('del', 'greeting', ...e)).stdout).toContain("deleted 'greeting'");
    const missing = await run('get', 'greeting', ...e);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("key 'greeting' not found");
  });

  it('scans a hash tag as a table and as JSON, with TTLs shown', async () => {
    await run('put', '{team}:bob', 'b', ...e);
    await run('put', '{team}:alice', 'a', '--ttl', '1h', ...e);
    const table = await run('scan', '--tag', 'team', ...e);
    expect(table.stdout).toMatch(/key\s+│\s+value\s+│\s+version\s+│\s+expires/);
    expect(table.stdout.indexOf('{team}:alice')).toBeLessThan(table.stdout.indexOf('{team}:bob'));
    const json = JSON.parse((await run('scan', '--tag', 'team', '--json', ...e)).stdout) as { items: { key: string; expiresAtMs: number }[] };
    expect(json.items.map((i) => i.key)).toEqual(['{team}:alice', '{team}:bob']);
    expect(json.items[0]?.expiresAtMs).toBeGreaterThan(Date.now());
  });

  it('shows status, refuses bad input clearly, and explains an unreachable node', async () => {
    const status = JSON.parse((await run('status', '--json', ...e)).stdout) as { health: { status: string }; node: { engine: string; partitions: number } };
    expect(status.health.status).toBe('SERVING');
    expect(status.node).toMatchObject({ engine: 'rocksdb', partitions: 64 });
    const badTtl = await run('put', 'k', 'v', '--ttl', 'soon', ...e);
    expect(badTtl.code).toBe(2);
    expect(badTtl.stderr).toContain("'soon' is not a duration");
    const down = await run('get', 'k', '--endpoint', '127.0.0.1:1', '--deadline', '1500');
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED/);
    expect(down.stderr).toContain('Start one with: ./keyva dev');
  });
});
