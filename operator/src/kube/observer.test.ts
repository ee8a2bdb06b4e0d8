/** The kube observer's new views: removed members' volumes and member zones (from cached objects; no API server needed). */
import { describe, expect, it } from 'vitest';
import { ANNOTATIONS, LABELS } from '../api/constants.ts';
import type { KeyVaCluster } from '../api/keyva-cluster.ts';
import { httpNodeProbe } from '../dataplane/node-probe.ts';
import type { KubeObject } from './kube-client.ts';
import { Observer, pvcView, removedPvcView } from './observer.ts';

const kv: KeyVaCluster = {
  apiVersion: 'keyva.io/v1alpha1',
  kind: 'KeyVaCluster',
  metadata: { name: 'kv', namespace: 'ns', uid: 'u1' },
  spec: { topology: { zoneKey: 'example.com/zone', spread: 'Preferred' } },
};
const labels = (extra: Record<string, string>) => ({ [LABELS.cluster]: 'kv', [LABELS.managedBy]: 'keyva-operator', ...extra });

const memberPvc: KubeObject = { metadata: { name: 'data-kv-aaaaa', uid: 'p1', namespace: 'ns', labels: labels({ [LABELS.member]: 'kv-aaaaa' }) } };
const removedPvc: KubeObject = {
  metadata: {
    name: 'data-kv-bbbbb',
    uid: 'p2',
    namespace: 'ns',
    labels: labels({ [LABELS.removedMember]: 'kv-bbbbb' }),
    annotations: { [ANNOTATIONS.removedAt]: '2026-01-01T00:00:00.000Z' },
    ownerReferences: [{ apiVersion: 'keyva.io/v1alpha1', kind: 'KeyVaCluster', name: 'kv', uid: 'u1' }],
  },
};
const pod = (member: string, nodeName?: string): KubeObject =>
  ({ metadata: { name: member, uid: `pod-${member}`, namespace: 'ns', labels: labels({ [LABELS.member]: member }) }, spec: { nodeName } }) as KubeObject;

describe('kube observer', () => {
  it("a removed member's volume is seen as such (never as a member's), with its removal time and ownership", () => {
    expect(pvcView(removedPvc, 'u1')).toBeUndefined();
    expect(removedPvcView(memberPvc, 'u1')).toBeUndefined();
    expect(removedPvcView(removedPvc, 'u1')).toEqual({
      name: 'data-kv-bbbbb',
      uid: 'p2',
      memberId: 'kv-bbbbb',
      deleting: false,
      ownedByCluster: true,
      removedAt: '2026-01-01T00:00:00.000Z',
    });
    expect(removedPvcView(removedPvc, 'other-uid')?.ownedByCluster).toBe(false);
  });

  it("member zones come from the label spec.topology.zoneKey of each pod's node; unknown nodes give no zone", async () => {
    const asked: string[] = [];
    const nodes: Record<string, Record<string, string>> = { 'node-a': { 'example.com/zone': 'z1' }, 'node-b': { 'other/zone': 'z2' } };
    const o = new Observer(
      {
        pods: { list: () => [pod('kv-aaaaa', 'node-a'), pod('kv-ccccc', 'node-b'), pod('kv-ddddd')] },
        pvcs: { list: () => [memberPvc, removedPvc] },
        children: [],
      },
      {
        probe: httpNodeProbe(100),
        probeTtlMs: 0,
        mapTtlMs: 0,
        now: () => 0,
        nodeLabels: async (n) => {
          asked.push(n);
          return nodes[n];
        },
      },
    );
    const seen = await o.observe(kv, undefined);
    expect(seen.memberZones).toEqual({ 'kv-aaaaa': 'z1' });
    expect(asked.sort()).toEqual(['node-a', 'node-b']);
    expect(seen.pvcs.map((v) => v.memberId)).toEqual(['kv-aaaaa']);
    expect(seen.removedPvcs?.map((v) => v.memberId)).toEqual(['kv-bbbbb']);
  });
});
