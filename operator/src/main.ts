#!/usr/bin/env node
/**
 * keyva-operator: watches KeyVaClusters and runs them (see docs/operations.md).
 * Configuration: KEYVA_OPERATOR_* environment variables (config.ts), read once here; Kubernetes
 * credentials from KUBECONFIG or the in-cluster service account.
 */
import * as http from 'node:http';
import { pino } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { configHelp, loadOperatorConfig, OperatorConfigError } from './config.ts';
import { httpNodeProbe } from './dataplane/node-probe.ts';
import { Controller } from './kube/controller.ts';
import { kubeEventRecorder } from './kube/event-recorder.ts';
import { KubeClient } from './kube/kube-client.ts';
import { LeaderElector } from './kube/leader-election.ts';

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(
      `keyva-operator: the KeyVa Kubernetes operator.\n\nEnvironment:\n${configHelp()}\n  KUBECONFIG${' '.repeat(29)}kubeconfig file (default: ~/.kube/config, else in-cluster)\n`,
    );
    return;
  }
  let config: ReturnType<typeof loadOperatorConfig>;
  try {
    config = loadOperatorConfig(process.env);
  } catch (e) {
    if (e instanceof OperatorConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = pino({ level: config.logLevel, base: { component: 'keyva-operator', identity: config.identity } });
  const client = KubeClient.fromDefault();
  const now = () => performance.timeOrigin + performance.now();
  const elector = config.leaderElection
    ? new LeaderElector(
        client,
        {
          namespace: config.leaseNamespace,
          name: config.leaseName,
          identity: config.identity,
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
        },
        log,
        { monotonic: () => performance.now(), wall: () => new Date() },
      )
    : undefined;
  const isLeader = () => elector?.isLeader() ?? true;
  const controller = new Controller({
    client,
    log,
    events: kubeEventRecorder(client, config.identity, log, () => new Date()),
    probe: httpNodeProbe(config.probeTimeoutMs),
    watchNamespace: config.watchNamespace,
    workers: config.workers,
    isLeader,
    now,
    backoffBaseMs: config.backoffBaseMs,
    backoffMaxMs: config.backoffMaxMs,
    quorumLossGraceMs: config.quorumLossGraceMs,
  });

  const registry = new Registry();
  new Gauge({
    name: 'keyva_operator_leader',
    help: '1 while this replica holds the Lease',
    registers: [registry],
    collect() {
      this.set(isLeader() ? 1 : 0);
    },
  });
  new Counter({
    name: 'keyva_operator_reconciles_total',
    help: 'Passes over a cluster',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(controller.stats.reconciles);
    },
  });
  new Counter({
    name: 'keyva_operator_reconcile_errors_total',
    help: 'Failed passes',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(controller.stats.errors);
    },
  });
  new Counter({
    name: 'keyva_operator_writes_total',
    help: 'Writes to the API server',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(controller.stats.writes);
    },
  });
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    if (path === '/readyz')
      return void res.writeHead(controller.synced ? 200 : 503, { 'content-type': 'text/plain' }).end(controller.synced ? 'ok' : 'caches not synced');
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(config.httpPort, config.httpHost, resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.httpPort;

  const stop = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) process.exit(1);
    log.info({ signal: sig }, 'shutting down');
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  await controller.startInformers();
  log.info({ http: `${config.httpHost}:${port}`, watchNamespace: config.watchNamespace || '(all)', leaderElection: config.leaderElection }, 'operator started');
  // Tests and wrappers read this line.
  process.stdout.write(`${JSON.stringify({ event: 'ready', identity: config.identity, http: `${config.httpHost}:${port}` })}\n`);

  if (elector) await elector.run(stop.signal, (s) => controller.runWorkers(s));
  else await controller.runWorkers(stop.signal);

  await controller.stopInformers();
  client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  log.info('stopped');
  log.flush();
}

main().catch((e: unknown) => {
  process.stderr.write(`keyva-operator failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
