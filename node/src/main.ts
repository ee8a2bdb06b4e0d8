#!/usr/bin/env node
/**
 * keyva-node: runs one storage node. Configuration: flags, KEYVA_* environment variables and
 * an optional JSON file (see config/config.ts and docs/configuration.md).
 */
import { enableNodeCompileCache } from './compile-cache.ts';

// Before the node's modules load (hence the dynamic imports below): a cached start compiles
// none of them again (compile-cache.ts).
enableNodeCompileCache();
const { ConfigError, configDocs, loadNodeConfig } = await import('./config/config.ts');
const { startNode } = await import('./node.ts');
const { wantsTracing } = await import('./observability/tracing-env.ts');
const { stopSignalHandler } = await import('./stop-signals.ts');

function printHelp(): void {
  const rows = configDocs().map((d) => `  ${d.flag.padEnd(24)} ${d.env.padEnd(28)} ${d.default.padEnd(14)} ${d.description}`);
  process.stdout.write(
    `keyva-node: one KeyVa storage node.\n\nUsage: node node/src/main.ts [--config file.json] [--flag value ...]\n\n  ${'flag'.padEnd(24)} ${'environment'.padEnd(28)} ${'default'.padEnd(14)} meaning\n${rows.join('\n')}\n\nSee docs/configuration.md.\n`,
  );
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) return printHelp();
  let config: ReturnType<typeof loadNodeConfig>;
  try {
    config = loadNodeConfig({ argv: process.argv.slice(2), env: process.env });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  let tracing: { shutdown(): Promise<void> } | undefined;
  if (config.tracing && wantsTracing(process.env)) {
    // Loaded only when asked for: the SDK adds a second to start-up.
    const { startTracing } = await import('./observability/otel-sdk.ts');
    tracing = startTracing(process.env.OTEL_SERVICE_NAME ?? 'keyva-node');
  }
  const node = await startNode(config, { defaultMetrics: true });
  const onSignal = stopSignalHandler({
    stop: (sig) => {
      node.log.info({ signal: sig }, 'shutting down');
      node
        .stop()
        .then(() => tracing?.shutdown())
        .then(
          () => process.exit(0),
          (e) => {
            node.log.error({ err: e }, 'shutdown failed');
            process.exit(1);
          },
        );
    },
    repeated: (sig) => node.log.info({ signal: sig }, 'already shutting down (the same stop request)'),
    force: (sig) => {
      node.log.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(1);
    },
  });
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // The parent (keyva dev, the e2e harness) reads this line to learn the addresses.
  process.stdout.write(`${JSON.stringify({ event: 'ready', nodeId: node.nodeId, grpc: node.grpcAddress, http: node.httpAddress })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`keyva-node failed to start: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
