/**
 * Ctrl-C in the terminal running `keyva dev` stops every node gracefully. A terminal sends SIGINT
 * to the whole foreground process group, so the nodes get it together with their supervisor,
 * which then forwards its own graceful stop (SIGTERM) a moment later; a node used to take that as
 * a second, impatient request and exit at once with code 1 (node/src/stop-signals.ts). Here the
 * real CLI runs in a process group of its own and the group gets SIGINT, as from a terminal.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DevClusterHarness } from './dev-cluster-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'keyva-ctrl-c-'));
let dev: DevClusterHarness | undefined;
afterAll(async () => {
  await dev?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('a Ctrl-C (SIGINT to the process group) stops keyva dev and its nodes gracefully, exit code 0', { timeout: 90_000 }, async () => {
  dev = await DevClusterHarness.start({ nodes: 3, partitions: 4, dataDir: dir, ownProcessGroup: true });
  expect(await dev.interrupt()).toBe(0);
  for (const node of ['node-1', 'node-2', 'node-3']) {
    const log = readFileSync(join(dir, node, 'node.log'), 'utf8');
    expect(log).toContain('"msg":"shutting down"');
    expect(log).not.toContain('second signal: exiting now');
  }
});
