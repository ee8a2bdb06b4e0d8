/**
 * LESSONS #11 on Kubernetes: "Ship a documented, gated quorum-loss runbook in the operator: detect
 * permanent loss, then run it only after an approval annotation" (runbook "Lost quorum" in
 * docs/operations.md, ADR 0012). A REAL control plane (etcd + kube-apiserver), the real operator
 * process with the chart's RBAC only, REAL node processes behind the pods (fake-kubelet.ts).
 *
 * A 3-member cluster (RF 3) with data loses two members for good: their volumes are deleted, their
 * pods killed at once, their host folders wiped. Status then says Degraded/QuorumLost with the
 * exact approval to set; without it the operator changes nothing. The test then follows what
 * status says, one group at a time (the meta group first, then each partition), and the operator
 * recovers each on the survivor. The SDK reads every write made before the loss and writes again.
 *
 * Not a test file of its own: `kube.test.ts` imports it, so the two control planes never run at
 * the same time (on a 2-core machine two at once starve each other's nodes), and its hooks live
 * inside its describe block so its control plane runs only for its own test.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KeyVa } from '@keyva/client';
import { ANNOTATIONS } from '@keyva/operator/api';
import { GrpcAdminCaller } from '@keyva/operator/dataplane';
import { type KubeClient, RESOURCES } from '@keyva/operator/kube';
import type { LocalReplicaResponseOut } from '@keyva/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyManifests, renderChart } from './chart.ts';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { FakeKubelet } from './fake-kubelet.ts';
import { condition, events, eventually, getCluster, keyvaCluster, pods, pvcs, sleep, waitReady } from './helpers.ts';
import { type OperatorProcess, startOperator } from './operator-process.ts';

const SYSTEM_NS = 'keyva-system';
const NS = 'kv-quorum';
const NAME = 'omega';
const CONSUMED = 'keyva.io/unsafe-recovery-consumed';
/** Short grace so the test does not wait the production 60 s before status reports the loss. */
const GRACE_MS = 3000;

let cp: ControlPlane;
let admin: KubeClient;
let kubelet: FakeKubelet;
let operator: OperatorProcess | undefined;
const nodes = new GrpcAdminCaller();

async function annotate(key: string, value: string): Promise<void> {
  await admin.mergePatch(RESOURCES.KeyVaCluster, NS, NAME, { metadata: { annotations: { [key]: value } } }, undefined, 'kubectl');
}

async function metaReplica(address: string): Promise<LocalReplicaResponseOut> {
  return nodes.call<LocalReplicaResponseOut>(address, 'LocalReplica', { partitionId: 0, metaGroup: true }, 2000);
}

describe('LESSONS #11: a lost quorum is reported, and recovered only after the approval annotation', { timeout: 300_000 }, () => {
  beforeAll(async () => {
    cp = await startControlPlane();
    admin = cp.adminClient;
    const workDir = join(cp.dir, 'work');
    mkdirSync(workDir, { recursive: true });
    await admin.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NS } }, { fieldManager: 'kubectl' });
    await applyManifests(admin, await renderChart('keyva', SYSTEM_NS));
    await admin.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }, { fieldManager: 'kubectl' });
    const id = await cp.identity(`system:serviceaccount:${SYSTEM_NS}:keyva-operator`);
    kubelet = new FakeKubelet(admin, join(cp.dir, 'kubelet'), [NS]);
    await kubelet.start();
    operator = await startOperator({
      kubeconfigPath: id.kubeconfigPath,
      identity: 'op-q',
      dir: workDir,
      leaseNamespace: SYSTEM_NS,
      leaseName: 'keyva-operator',
      env: { KEYVA_OPERATOR_QUORUM_LOSS_GRACE_MS: String(GRACE_MS) },
    });
  }, 180_000);

  afterAll(async () => {
    nodes.close();
    await operator?.stop('SIGKILL');
    await kubelet?.stop();
    await cp?.stop();
  }, 60_000);

  it('two of three members gone for good: Degraded/QuorumLost, nothing done until approved; then meta and each partition are recovered and every earlier write reads back', async () => {
    await admin.apply(keyvaCluster(NS, NAME, { nodes: 3, replicationFactor: 3, partitions: 2 }), { fieldManager: 'kubectl' });
    const k = await waitReady(admin, NS, NAME, 3);
    await eventually('3 replicas per partition', async () => (await getCluster(admin, NS, NAME))?.status?.underReplicatedPartitions === 0);
    const members = k.status?.members ?? [];
    const [survivor, ...lost] = members.map((m) => m.id) as [string, string, string];
    const survivorIP = members[0]?.podIP as string;
    const survivorAddr = `${survivorIP}:7379`;
    const survivorPod = (await pods(admin, NS, NAME)).find((p) => p.metadata?.name === survivor);

    // Data, acknowledged by a quorum of 3 replicas.
    const written = new Map(Array.from({ length: 20 }, (_, i) => [`q:${i}`, `v${i}`]));
    const kv = await KeyVa.connect({ endpoints: members.map((m) => `${m.podIP}:7379`) });
    try {
      for (const [key, value] of written) {
        await eventually(
          `put ${key}`,
          async () =>
            kv.put(key, value).then(
              () => true,
              () => undefined,
            ),
          30_000,
        );
      }
    } finally {
      await kv.close();
    }

    // Two members are lost for good: volumes deleted, pods killed at once (grace 0), disks wiped.
    for (const id of lost) await admin.delete(RESOURCES.PersistentVolumeClaim, NS, `data-${id}`);
    await eventually('the lost members show VolumeLost', async () => {
      const x = await getCluster(admin, NS, NAME);
      return lost.every((id) => x?.status?.members?.find((m) => m.id === id)?.state === 'VolumeLost');
    });
    for (const id of lost) await admin.delete(RESOURCES.Pod, NS, id, { gracePeriodSeconds: 0 });
    await eventually('the lost pods and volumes are gone', async () => {
      const names = (await pvcs(admin, NS, NAME)).map((v) => v.metadata?.name);
      return kubelet.runningPods().every((p) => !lost.includes(p)) && lost.every((id) => !names.includes(`data-${id}`));
    });
    for (const id of lost) rmSync(kubelet.volumeDir(NS, `data-${id}`), { recursive: true, force: true });
    expect(kubelet.runningPods()).toEqual([survivor]);

    // Status says what happened and what to do, naming the meta group first. (A partition whose
    // leader died shows up sooner: the survivor's leases keep the other groups led for a moment.)
    const degraded = await eventually(
      'Degraded=QuorumLost naming the meta group',
      async () => {
        const x = await getCluster(admin, NS, NAME);
        const d = condition(x, 'Degraded');
        return d?.reason === 'QuorumLost' && d.message?.startsWith('the meta group') ? x : undefined;
      },
      60_000,
    );
    const message = condition(degraded, 'Degraded')?.message ?? '';
    expect(condition(degraded, 'Degraded')?.status).toBe('True');
    expect(message).toMatch(/^the meta group has had no leader since/);
    expect(message).toContain(`kubectl annotate keyvacluster ${NAME} ${ANNOTATIONS.approveUnsafeRecovery}=meta`);
    expect(message).toContain('runbook "Lost quorum"');
    // The lost volumes are reported on their own, with their own approval (not given here).
    expect(degraded.status?.currentOperation?.blockedBy).toContain(ANNOTATIONS.approveReplaceMembers);

    // Without the approval nothing destructive happens: no recovery call, the survivor untouched.
    await sleep(2 * GRACE_MS);
    const before = await getCluster(admin, NS, NAME);
    expect(condition(before, 'QuorumRecovery')).toBeUndefined();
    expect((await events(admin, NS, NAME)).filter((e) => e.reason.startsWith('UnsafeRecovery'))).toEqual([]);
    const meta = await metaReplica(survivorAddr);
    expect(meta.leader).toBe('');
    expect([...meta.voters].sort()).toEqual([survivor, ...lost].sort());
    const podNow = (await pods(admin, NS, NAME)).find((p) => p.metadata?.name === survivor);
    expect(podNow?.metadata?.uid).toBe(survivorPod?.metadata?.uid);
    expect(podNow?.metadata?.deletionTimestamp).toBeUndefined();
    expect((await pvcs(admin, NS, NAME)).map((v) => v.metadata?.name)).toEqual([`data-${survivor}`]);

    // Follow status: approve the group it names, one at a time (the meta group, then each partition).
    const total = degraded.status?.partitions?.total ?? 0;
    expect(total).toBe(2);
    const approved: string[] = [];
    while (approved.length < 1 + total) {
      const group = await eventually(
        'status names the next group to approve',
        async () => {
          const d = condition(await getCluster(admin, NS, NAME), 'Degraded');
          if (d?.reason !== 'QuorumLost') return undefined; // a recovered meta group: partitions wait out their grace first
          const g = new RegExp(`${ANNOTATIONS.approveUnsafeRecovery}=(meta|\\d+) `).exec(d.message ?? '')?.[1];
          return g !== undefined && !approved.includes(g) ? g : undefined;
        },
        60_000,
      );
      approved.push(group);
      await annotate(ANNOTATIONS.approveUnsafeRecovery, group);
      const done = await eventually(
        `the recovery of ${group}`,
        async () => {
          const y = await getCluster(admin, NS, NAME);
          const consumed = y?.metadata.annotations?.[CONSUMED] ?? '';
          return y?.metadata.annotations?.[ANNOTATIONS.approveUnsafeRecovery] === undefined && consumed.startsWith(`${group}: `) ? y : undefined;
        },
        60_000,
      );
      expect(done.metadata.annotations?.[CONSUMED]).toMatch(new RegExp(`^${group}: recovered on ${survivor} `));
      expect(condition(done, 'QuorumRecovery')).toMatchObject({ status: 'True', reason: 'Recovered' });
    }
    // The runbook's order: the meta group first, then every partition, each once.
    expect(approved[0]).toBe('meta');
    expect(approved.slice(1).sort()).toEqual(['0', '1']);
    const recovered = await eventually('QuorumLost cleared', async () => {
      const y = await getCluster(admin, NS, NAME);
      return condition(y, 'Degraded')?.reason !== 'QuorumLost' ? y : undefined;
    });
    // Still degraded for the lost volumes (RF is restored only after replacing them), not for quorum.
    expect(condition(recovered, 'Degraded')?.reason).toBe('MemberVolumeLost');
    expect(
      (await events(admin, NS, NAME))
        .filter((e) => e.reason === 'UnsafeRecoveryDone')
        .map((e) => e.type)
        .sort(),
    ).toEqual(['Warning', 'Warning', 'Warning']);
    expect((await metaReplica(survivorAddr)).leader).toBe(survivor);

    // The SDK, through the survivor: every write from before the loss, and new writes.
    const after = await KeyVa.connect({ endpoints: [survivorAddr] });
    try {
      for (const [key, value] of written) {
        const v = await eventually(
          `get ${key}`,
          async () =>
            after.get(key).then(
              (e) => e ?? false,
              () => undefined,
            ),
          30_000,
        );
        expect(v.value.toString()).toBe(value);
      }
      await eventually(
        'a new write is acknowledged',
        async () =>
          after.put('q:after', 'recovered').then(
            () => true,
            () => undefined,
          ),
        30_000,
      );
      expect((await after.get('q:after'))?.value.toString()).toBe('recovered');
    } finally {
      await after.close();
    }
  });
});
