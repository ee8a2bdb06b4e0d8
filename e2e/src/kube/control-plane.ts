/**
 * A real Kubernetes control plane for tests: etcd + kube-apiserver built from Go modules
 * (scripts/go-tools.sh, cached), on loopback with random free ports, throwaway openssl
 * certificates and a temp dir — started the way scripts/kube-smoke.sh does (its flags are the
 * reference). No scheduler, no kubelet, no controller-manager: see fake-kubelet.ts.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { stopProcess } from '@keyva/cli/stop-process';
import { freePort } from '@keyva/node/net/free-port';
import { KubeClient } from '@keyva/operator/kube';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..', '..');

export interface Identity {
  /** Common name = user name (e.g. system:serviceaccount:keyva-system:keyva-operator). */
  readonly user: string;
  readonly groups: readonly string[];
  readonly kubeconfig: string;
  readonly kubeconfigPath: string;
}

export interface ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly admin: Identity;
  readonly adminClient: KubeClient;
  /** A client-certificate identity with no permissions until RBAC grants some. */
  identity(user: string, groups?: readonly string[]): Promise<Identity>;
  clientFor(id: Identity): KubeClient;
  stop(): Promise<void>;
}

export async function goTool(tool: string): Promise<string> {
  const { stdout } = await run('bash', [join(REPO, 'scripts', 'go-tools.sh'), 'path', tool], { maxBuffer: 1 << 20, timeout: 40 * 60_000 });
  return stdout.trim().split('\n').pop() ?? '';
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd });
}

async function signClientCert(pki: string, name: string, subject: string): Promise<void> {
  writeFileSync(join(pki, `${name}.ext`), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  await openssl(pki, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  await openssl(pki, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '1',
    '-sha256',
    '-extfile',
    `${name}.ext`,
  ]);
}

function kubeconfigText(server: string, ca: string, cert: string, key: string): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: test`,
    `  cluster: {server: "${server}", certificate-authority-data: "${b64(ca)}"}`,
    'users:',
    '- name: user',
    `  user: {client-certificate-data: "${b64(cert)}", client-key-data: "${b64(key)}"}`,
    'contexts:',
    '- name: test',
    '  context: {cluster: test, user: user}',
    'current-context: test',
    '',
  ].join('\n');
}

async function waitFor(what: string, proc: ChildProcess, logFile: string, timeoutMs: number, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what} exited during startup; see ${logFile}:\n${tail(logFile)}`);
    if (await ok().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms; see ${logFile}:\n${tail(logFile)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

export async function startControlPlane(o: { keepDir?: boolean } = {}): Promise<ControlPlane> {
  const [etcdBin, apiserverBin] = await Promise.all([goTool('etcd'), goTool('kube-apiserver')]);
  const dir = mkdtempSync(join(tmpdir(), 'keyva-kube-'));
  const pki = join(dir, 'pki');
  mkdirSync(pki);
  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  const cleanup = async () => {
    await stopProcess(apiserver);
    await stopProcess(etcd);
    if (!o.keepDir && !process.env.KEYVA_KEEP_KUBE_DIR) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await openssl(pki, [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=keyva-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    writeFileSync(
      join(pki, 'apiserver.ext'),
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
    );
    await openssl(pki, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver']);
    await openssl(pki, [
      'x509',
      '-req',
      '-in',
      'apiserver.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'apiserver.crt',
      '-days',
      '1',
      '-sha256',
      '-extfile',
      'apiserver.ext',
    ]);
    await signClientCert(pki, 'admin', '/O=system:masters/CN=keyva-test-admin');
    await openssl(pki, ['genrsa', '-out', 'sa.key', '2048']);
    await openssl(pki, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);

    const [etcdClientPort, etcdPeerPort, apiPort] = await distinctPorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcdLog = join(dir, 'etcd.log');
    etcd = spawnLogged(
      etcdBin,
      [
        '--name=test',
        `--data-dir=${join(dir, 'etcd-data')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        '--initial-cluster-state=new',
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      etcdLog,
    );
    await waitFor('etcd', etcd, etcdLog, 60_000, async () => (await fetch(`${etcdUrl}/readyz`)).ok);

    const server = `https://127.0.0.1:${apiPort}`;
    const apiLog = join(dir, 'kube-apiserver.log');
    mkdirSync(join(dir, 'apiserver-certs'));
    apiserver = spawnLogged(
      apiserverBin,
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        '--endpoint-reconciler-type=none',
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
        `--client-ca-file=${join(pki, 'ca.crt')}`,
        '--authorization-mode=RBAC',
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${join(pki, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
        '-v=0',
      ],
      apiLog,
    );

    const adminKubeconfigPath = join(dir, 'admin.kubeconfig');
    const adminText = kubeconfigText(server, join(pki, 'ca.crt'), join(pki, 'admin.crt'), join(pki, 'admin.key'));
    writeFileSync(adminKubeconfigPath, adminText);
    const admin: Identity = { user: 'keyva-test-admin', groups: ['system:masters'], kubeconfig: adminText, kubeconfigPath: adminKubeconfigPath };
    const adminClient = KubeClient.fromKubeConfigString(adminText, { requestTimeoutMs: 15_000 });
    await waitFor('kube-apiserver', apiserver, apiLog, 120_000, () => readyz(adminClient));

    const clients: KubeClient[] = [adminClient];
    let n = 0;
    return {
      dir,
      server,
      admin,
      adminClient,
      async identity(user, groups = []) {
        const name = `id${++n}`;
        const subject = `${groups.map((g) => `/O=${g}`).join('')}/CN=${user}`;
        await signClientCert(pki, name, subject);
        const text = kubeconfigText(server, join(pki, 'ca.crt'), join(pki, `${name}.crt`), join(pki, `${name}.key`));
        const path = join(dir, `${name}.kubeconfig`);
        writeFileSync(path, text);
        return { user, groups, kubeconfig: text, kubeconfigPath: path };
      },
      clientFor(id) {
        const c = KubeClient.fromKubeConfigString(id.kubeconfig, { requestTimeoutMs: 15_000 });
        clients.push(c);
        return c;
      },
      async stop() {
        for (const c of clients) c.close();
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** /readyz answers text/plain "ok", which the JSON client does not parse. */
async function readyz(c: KubeClient): Promise<boolean> {
  try {
    await c.request('GET', '/readyz', { timeoutMs: 2000 });
    return true;
  } catch {
    return false;
  }
}

async function distinctPorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

/** Spawns a control-plane binary with its stdout and stderr appended to a log file. */
function spawnLogged(bin: string, args: string[], logPath: string): ChildProcess {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logPath);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}
