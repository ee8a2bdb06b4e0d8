/**
 * A test-only scheduler + kubelet + container runtime for the real API server (there is none:
 * only etcd + kube-apiserver run). It watches the pods of the test namespaces and, for each:
 *
 *  - binds it to a fake node (pods/binding), like the scheduler;
 *  - "runs the container": a REAL KeyVa node process (`node node/src/main.ts`, whatever the
 *    image — the image only shows in status), with the container's args and env as the kubelet
 *    would resolve them (env fieldRefs, `$(VAR)` expansion), volumes mapped to host folders
 *    (a PVC -> <root>/volumes/<ns>/<claim>, kept across pods, so a recreated pod finds its data;
 *    a ConfigMap -> files; emptyDir -> a temp folder);
 *  - gives it its own pod IP 127.X.Y.n (network namespace emulation: a bind to 0.0.0.0 inside
 *    the pod means the pod's IP), so nodes use their fixed container ports without clashing and
 *    the operator can only reach them by pod IP; the IP is stable per pod name, and args naming
 *    <pod>.<service>.<ns>.svc (a headless Service's DNS name) get that IP (DNS emulation);
 *  - writes pod status (podIP, Running, Ready from the readiness probe's HTTP GET);
 *  - on deletion: SIGTERM, wait, then delete the pod with grace 0 (as the kubelet does);
 *  - restarts a container that exits (restartPolicy Always).
 *
 * It also plays the pvc-protection controller: a terminating PVC loses its
 * kubernetes.io/pvc-protection finalizer once no pod uses it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isNotFound, type KubeClient, type KubeObject, RESOURCES, resourcePath, SupervisedInformer } from '@keyva/operator/kube';
import { pino } from 'pino';

const NODE_MAIN = resolve(import.meta.dirname, '..', '..', '..', 'node', 'src', 'main.ts');
const FIELD_MANAGER = 'fake-kubelet';

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface Pod extends KubeObject {
  spec?: {
    nodeName?: string;
    containers: Container[];
    volumes?: { name: string; persistentVolumeClaim?: { claimName: string }; configMap?: { name: string }; emptyDir?: object }[];
    terminationGracePeriodSeconds?: number;
  };
  status?: { phase?: string; podIP?: string };
}

interface Running {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly ip: string;
  proc: ChildProcess | undefined;
  ready: boolean;
  restarts: number;
  stopping: boolean;
  readonly startedAt: string;
  readonly image: string;
  readonly claims: string[];
  probeTimer?: NodeJS.Timeout;
  statusWritten: string;
  exited?: Promise<void>;
}

export interface KubeletEvent {
  readonly t: number;
  readonly pod: string;
  readonly event: 'started' | 'ready' | 'notReady' | 'stopped' | 'exited';
  readonly ip?: string;
}

export class FakeKubelet {
  private readonly client: KubeClient;
  private readonly root: string;
  private readonly namespaces: Set<string>;
  private readonly running = new Map<string, Running>();
  private readonly busy = new Map<string, Promise<void>>();
  private pods: SupervisedInformer<Pod> | undefined;
  private pvcs: SupervisedInformer<KubeObject> | undefined;
  private nextHost = 2;
  /** namespace/pod name -> its IP: stable across restarts, so `<pod>.<service>.<ns>.svc` names resolve (DNS emulation). */
  private readonly ipByName = new Map<string, string>();
  private readonly ipPrefix: string;
  private stopped = false;
  /** Everything that happened, in order (tests check e.g. "at most one member down"). */
  readonly events: KubeletEvent[] = [];

  constructor(client: KubeClient, root: string, namespaces: string[]) {
    this.client = client;
    this.root = root;
    this.namespaces = new Set(namespaces);
    // A random /16 inside 127/8 so that parallel test runs on one machine do not collide.
    this.ipPrefix = `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
  }

  watchNamespace(ns: string): void {
    this.namespaces.add(ns);
  }

  async start(): Promise<void> {
    const log = pino({ level: 'silent' });
    this.pods = new SupervisedInformer<Pod>({
      client: this.client,
      resource: RESOURCES.Pod,
      log,
      onEvent: (_e, obj) => this.schedule(obj as Pod),
    });
    this.pvcs = new SupervisedInformer<KubeObject>({
      client: this.client,
      resource: RESOURCES.PersistentVolumeClaim,
      log,
      onEvent: (_e, obj) => void this.pvcProtection(obj),
    });
    await Promise.all([this.pods.start(), this.pvcs.start()]);
  }

  /** The host folder backing a PVC (stable across pods). */
  volumeDir(namespace: string, claim: string): string {
    return join(this.root, 'volumes', namespace, claim);
  }

  ipOf(podName: string): string | undefined {
    return [...this.running.values()].find((r) => r.name === podName && !r.stopping)?.ip;
  }

  runningPods(): string[] {
    return [...this.running.values()].filter((r) => !r.stopping).map((r) => r.name);
  }

  /** Problems go to <root>/kubelet.log (a test never sees them otherwise). */
  private note(line: string): void {
    mkdirSync(this.root, { recursive: true });
    appendFileSync(join(this.root, 'kubelet.log'), `${new Date().toISOString()} ${line}\n`);
  }

  private schedule(pod: Pod): void {
    const ns = pod.metadata?.namespace ?? '';
    const uid = pod.metadata?.uid ?? '';
    if (!this.namespaces.has(ns) || this.stopped) return;
    // One sync at a time per pod uid; always against the latest cached object.
    const prev = this.busy.get(uid) ?? Promise.resolve();
    const next = prev
      .then(() => this.sync(ns, pod.metadata?.name ?? '', uid))
      .catch((e: unknown) => this.note(`sync ${ns}/${pod.metadata?.name}: ${(e as Error).message}`))
      .finally(() => {
        if (this.busy.get(uid) === next) this.busy.delete(uid);
      });
    this.busy.set(uid, next);
  }

  private async sync(ns: string, name: string, uid: string): Promise<void> {
    if (this.stopped) return;
    const pod = this.pods?.get(name, ns) as Pod | undefined;
    const r = this.running.get(uid);
    if (!pod || pod.metadata?.uid !== uid) {
      if (r) await this.stopContainer(r, 0);
      return;
    }
    if (pod.metadata?.deletionTimestamp) {
      if (r) await this.stopContainer(r, (pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
      await this.client.delete(RESOURCES.Pod, ns, name, { uid, gracePeriodSeconds: 0 }).catch((e) => {
        if (!isNotFound(e)) throw e;
      });
      return;
    }
    if (!pod.spec?.nodeName) {
      await this.client.request('POST', resourcePath(RESOURCES.Pod, ns, name, 'binding'), {
        body: { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace: ns }, target: { apiVersion: 'v1', kind: 'Node', name: 'fake-node' } },
      });
      return; // the update event brings us back
    }
    if (!r) await this.startContainer(pod);
  }

  private async startContainer(pod: Pod): Promise<void> {
    const ns = pod.metadata?.namespace as string;
    const name = pod.metadata?.name as string;
    const uid = pod.metadata?.uid as string;
    const c = pod.spec?.containers[0] as Container;
    const ip = this.ipFor(ns, name);
    const podDir = join(this.root, 'pods', `${name}-${uid.slice(0, 8)}`);
    mkdirSync(podDir, { recursive: true });
    // Volumes -> host folders.
    const hostPathOf = new Map<string, string>();
    const claims: string[] = [];
    for (const v of pod.spec?.volumes ?? []) {
      let dir: string;
      if (v.persistentVolumeClaim) {
        dir = this.volumeDir(ns, v.persistentVolumeClaim.claimName);
        claims.push(v.persistentVolumeClaim.claimName);
      } else if (v.configMap) {
        dir = join(podDir, 'configmaps', v.name);
        mkdirSync(dir, { recursive: true });
        const cm = await this.client.get<KubeObject & { data?: Record<string, string> }>(RESOURCES.ConfigMap, ns, v.configMap.name);
        for (const [file, text] of Object.entries(cm.data ?? {})) writeFileSync(join(dir, file), text);
      } else dir = join(podDir, 'empty', v.name);
      mkdirSync(dir, { recursive: true });
      hostPathOf.set(v.name, dir);
    }
    const mounts = (c.volumeMounts ?? [])
      .map((m) => ({ path: m.mountPath, host: hostPathOf.get(m.name) as string }))
      .sort((a, b) => b.path.length - a.path.length);
    const toHost = (arg: string) => {
      for (const m of mounts) if (arg === m.path || arg.startsWith(`${m.path}/`)) return m.host + arg.slice(m.path.length);
      return arg;
    };
    // Env as the kubelet resolves it.
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      const f = e.valueFrom?.fieldRef?.fieldPath;
      if (f === 'status.podIP') env[e.name] = ip;
      else if (f === 'metadata.name') env[e.name] = name;
      else if (f === 'metadata.namespace') env[e.name] = ns;
      else env[e.name] = expand(e.value ?? '', env);
    }
    // DNS emulation: a pod's hostname under a headless Service (<pod>.<service>.<ns>.svc) is its IP.
    const resolveDns = (a: string) =>
      a.replace(/\b([a-z0-9][-a-z0-9]*)\.[a-z0-9][-a-z0-9]*\.([a-z0-9][-a-z0-9]*)\.svc(\.cluster\.local)?\b/g, (_m, pod: string, podNs: string) =>
        this.ipFor(podNs, pod),
      );
    const args = (c.args ?? []).map((a) => toHost(resolveDns(expand(a, env))));
    // Network namespace emulation: listening on every interface of the pod = on its IP.
    for (let i = 0; i + 1 < args.length; i++) if ((args[i] === '--grpc-host' || args[i] === '--http-host') && args[i + 1] === '0.0.0.0') args[i + 1] = ip;
    const r: Running = {
      uid,
      name,
      namespace: ns,
      ip,
      proc: undefined,
      ready: false,
      restarts: 0,
      stopping: false,
      startedAt: new Date().toISOString(),
      image: c.image ?? '',
      claims,
      statusWritten: '',
    };
    this.running.set(uid, r);
    const log = createWriteStream(join(podDir, 'container.log'), { flags: 'a' });
    const launch = () => {
      const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEYVA_') && !k.startsWith('OTEL_')));
      const proc = spawn(process.execPath, [NODE_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...baseEnv, ...env } });
      proc.stdout?.pipe(log, { end: false });
      proc.stderr?.pipe(log, { end: false });
      r.proc = proc;
      r.exited = new Promise((res) => proc.once('exit', () => res()));
      this.events.push({ t: Date.now(), pod: name, event: 'started', ip });
      proc.once('exit', (code, sig) => {
        log.write(`\n[fake-kubelet] container exited code=${code} signal=${sig}\n`);
        if (r.stopping || this.stopped) return;
        this.events.push({ t: Date.now(), pod: name, event: 'exited', ip });
        r.ready = false;
        r.restarts++;
        void this.writeStatus(r);
        setTimeout(() => {
          if (!r.stopping && !this.stopped) launch();
        }, 500);
      });
    };
    launch();
    await this.writeStatus(r);
    const probe = c.readinessProbe?.httpGet;
    const port = probe ? (typeof probe.port === 'number' ? probe.port : (c.ports?.find((p) => p.name === probe.port)?.containerPort ?? 0)) : 0;
    const tick = async () => {
      if (r.stopping || this.stopped) return;
      let ok = false;
      if (probe) {
        try {
          ok = (await fetch(`http://${ip}:${port}${probe.path}`, { signal: AbortSignal.timeout(1000) })).ok;
        } catch {
          ok = false;
        }
      } else ok = r.proc?.exitCode === null;
      if (ok !== r.ready && !r.stopping) {
        r.ready = ok;
        this.events.push({ t: Date.now(), pod: name, event: ok ? 'ready' : 'notReady', ip });
        await this.writeStatus(r).catch(() => {});
      }
      if (!r.stopping && !this.stopped) r.probeTimer = setTimeout(tick, 250);
    };
    r.probeTimer = setTimeout(tick, 200);
  }

  private ipFor(ns: string, name: string): string {
    const key = `${ns}/${name}`;
    let ip = this.ipByName.get(key);
    if (ip === undefined) {
      ip = `${this.ipPrefix}.${this.nextHost++}`;
      if (this.nextHost > 250) this.nextHost = 2;
      this.ipByName.set(key, ip);
    }
    return ip;
  }

  private async writeStatus(r: Running): Promise<void> {
    const now = new Date().toISOString();
    const cond = (type: string, ok: boolean) => ({ type, status: ok ? 'True' : 'False', lastTransitionTime: now });
    const status = {
      phase: 'Running',
      hostIP: '127.0.0.1',
      podIP: r.ip,
      podIPs: [{ ip: r.ip }],
      startTime: r.startedAt,
      conditions: [cond('PodScheduled', true), cond('Initialized', true), cond('ContainersReady', r.ready), cond('Ready', r.ready)],
      containerStatuses: [
        {
          name: 'keyva',
          image: r.image,
          imageID: `fake://${r.image}`,
          ready: r.ready,
          started: true,
          restartCount: r.restarts,
          state: { running: { startedAt: r.startedAt } },
        },
      ],
    };
    const key = JSON.stringify([r.ready, r.restarts]);
    if (key === r.statusWritten) return;
    try {
      await this.client.mergePatch(RESOURCES.Pod, r.namespace, r.name, { metadata: { uid: r.uid }, status }, 'status', FIELD_MANAGER);
      r.statusWritten = key;
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private async stopContainer(r: Running, graceMs: number): Promise<void> {
    if (r.stopping) return r.exited;
    r.stopping = true;
    clearTimeout(r.probeTimer);
    const p = r.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const t = setTimeout(() => p.kill('SIGKILL'), Math.max(graceMs, 100));
      p.kill('SIGTERM');
      await r.exited;
      clearTimeout(t);
    }
    this.events.push({ t: Date.now(), pod: r.name, event: 'stopped', ip: r.ip });
    this.running.delete(r.uid);
    // A PVC this pod used may now be free to go.
    for (const claim of r.claims) {
      const pvc = this.pvcs?.get(claim, r.namespace);
      if (pvc) await this.pvcProtection(pvc);
    }
  }

  /** Kill -9 the container of a pod (a crash; the kubelet restarts it). */
  crash(podName: string): void {
    const r = [...this.running.values()].find((x) => x.name === podName && !x.stopping);
    r?.proc?.kill('SIGKILL');
  }

  private async pvcProtection(pvc: KubeObject): Promise<void> {
    const m = pvc.metadata;
    if (!m?.deletionTimestamp || !m.namespace || !this.namespaces.has(m.namespace)) return;
    const fins = m.finalizers ?? [];
    const i = fins.indexOf('kubernetes.io/pvc-protection');
    if (i < 0) return;
    const inUse = [...this.running.values()].some((r) => r.namespace === m.namespace && r.claims.includes(m.name as string));
    if (inUse) return;
    await this.client
      .jsonPatch(RESOURCES.PersistentVolumeClaim, m.namespace, m.name as string, [
        { op: 'test', path: `/metadata/finalizers/${i}`, value: 'kubernetes.io/pvc-protection' },
        { op: 'remove', path: `/metadata/finalizers/${i}` },
      ])
      .catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.pods?.stop(), this.pvcs?.stop()]);
    await Promise.all([...this.running.values()].map((r) => this.stopContainer(r, 5000)));
  }
}

/** Kubernetes `$(VAR)` expansion ($$ escapes). */
function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string | undefined) =>
    m === '$$' ? '$' : v !== undefined && v in env ? (env[v] as string) : m,
  );
}
